"""`v2s listening-test build|score`: added to the `v2s` command by `register(subparsers)`.

Heavy libraries are imported inside each command, so `v2s --help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_build(args: argparse.Namespace) -> int:
    from v2s_models.listening.build import build_test  # lazy: PyAV and NumPy

    systems = [s.strip() for s in args.systems.split(",") if s.strip()] if args.systems else None
    try:
        result = build_test(
            args.eval_dirs,
            args.out,
            clips=args.clips,
            seed=args.seed,
            systems=systems,
            questions=args.questions,
            reference_system=args.reference_system,
            hide_systems=args.hide_systems,
            max_height=args.max_height,
            title=args.title,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for source, why in result.reencoded.items():
        print(f"{source}: re-encoded to H.264 + AAC ({why})", file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"{result.html}: {len(result.items)} videos ({len(result.clips)} clips x {len(result.systems)} systems: "
        f"{', '.join(result.systems)}), questions {', '.join(result.questions)}, "
        f"{result.size_bytes / 2**20:.1f} MB; key in {result.key}",
        file=sys.stderr,
    )
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from v2s_models.listening.score import (  # lazy: PyAV and NumPy (through listening.build)
        AnswerError,
        markdown_table,
        read_answers,
        read_key,
        summarize,
        write_summary,
    )

    try:
        key, systems = read_key(args.key)
        answers, duplicates = read_answers(args.csv, key)
        stats = summarize(answers, systems)
        if args.out is not None:
            write_summary(stats, args.out)
    except (AnswerError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown_table(stats, systems), end="")
    raters = len({a.rater for a in answers})
    note = f"; {duplicates} repeated answer(s) counted once (latest kept)" if duplicates else ""
    print(
        f"{len(answers)} answers from {raters} rater(s) in {len(args.csv)} file(s){note}. "
        "MOS: mean ± 95 % Student-t half-width; real: % judged real [95 % Wilson interval].",
        file=sys.stderr,
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds `listening-test` (with `build` and `score`) to the `v2s` sub-commands; returns its parser.

    Each leaf sets `func`, which takes the parsed namespace and returns the exit status, as the other
    `v2s` commands do.
    """
    lt = subparsers.add_parser(
        "listening-test",
        help="build a self-contained listening-test page from evaluations, and score the answers",
        description="Build a listening test (one HTML page, videos inline) from evaluation folders, "
        "and score the CSV answers raters export from it (docs/listening_test.md).",
    )
    sub = lt.add_subparsers(dest="listening_command", required=True)

    b = sub.add_parser(
        "build",
        help="write the test page (one HTML file) and its answer key (<page>.key.json beside it)",
    )
    b.add_argument(
        "eval_dirs", type=Path, nargs="+", metavar="EVAL_DIR", help="holds samples/<system>/<clip>.mp4"
    )
    b.add_argument("--out", type=Path, required=True, help="the page, e.g. test.html")
    b.add_argument("--clips", type=int, default=None, help="clips drawn at random (default: all)")
    b.add_argument("--seed", type=int, default=0, help="seeds the clip draw, the order and the item ids")
    b.add_argument("--systems", default=None, help="comma-separated systems (default: every samples/ folder)")
    b.add_argument(
        "--questions",
        default=None,
        help="comma-separated among realism, alignment, real_or_fake, timbre (default: all)",
    )
    b.add_argument(
        "--reference-system",
        default="real",
        help="the system whose sound is the target of the timbre question (default: real)",
    )
    b.add_argument(
        "--hide-systems",
        action="store_true",
        help="leave the item -> system map out of the page (the CSV then names no system; score uses the key)",
    )
    b.add_argument(
        "--max-height",
        type=int,
        default=None,
        help="re-encode taller videos to this many lines (a smaller page)",
    )
    b.add_argument("--title", default="Listening test: sound for silent videos")
    b.set_defaults(func=_cmd_build)

    s = sub.add_parser("score", help="MOS and real-or-fake rate per system from the raters' CSV files")
    s.add_argument("csv", type=Path, nargs="+", metavar="CSV", help="answers exported from the page")
    s.add_argument(
        "--key",
        type=Path,
        required=True,
        action="append",
        help="the test's key file (repeat for several pages)",
    )
    s.add_argument("--out", type=Path, default=None, help="also write the numbers to a .json or .csv file")
    s.set_defaults(func=_cmd_score)
    return lt
