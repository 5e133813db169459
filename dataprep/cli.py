"""The data pipeline's sub-commands of `v2s`: `features` (one video's features as the pipeline computes them) and
`synthfoley` (the built-in data set). experiments/cli.py adds them to the command; the modules that load PyAV
and torch are imported when a command runs (`# lazy:`), so `v2s --help` stays instant."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _cmd_features(args: argparse.Namespace) -> int:
    from dataprep.single import video_features  # lazy: PyAV and torch
    from v2s_models.media.probe import MediaError  # lazy: PyAV

    params = (
        args.params
        if args.params is not None
        else (Path("params.yaml") if Path("params.yaml").is_file() else None)
    )
    try:
        video_features(args.video, args.preset, args.out, params_path=params)
    except MediaError as e:
        print(f"error: {args.video}: {e.reason}: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_synthfoley(args: argparse.Namespace) -> int:
    from dataprep import synthfoley  # lazy: SciPy and PyAV

    try:
        paths = synthfoley.generate(
            args.out,
            size=None if args.num_clips else args.size,
            num_clips=args.num_clips,
            seed=args.seed,
            workers=args.workers,
            progress=True,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(paths)} clips in {args.out}", file=sys.stderr)
    return 0


def add_features(sub: Any) -> None:
    """`v2s features`."""
    f = sub.add_parser(
        "features", help="write one video's features (as the pipeline computes them) to a folder"
    )
    f.add_argument("video", type=Path)
    f.add_argument(
        "--preset", default="regnet", help="data convention: regnet | zhou (or one in params.yaml)"
    )
    f.add_argument("--out", type=Path, required=True)
    f.add_argument(
        "--params",
        type=Path,
        default=None,
        help="params.yaml to read presets and feature settings from (default: ./params.yaml if present)",
    )
    f.set_defaults(func=_cmd_features)


def add_synthfoley(sub: Any) -> None:
    """`v2s synthfoley`."""
    s = sub.add_parser("synthfoley", help="generate the built-in SynthFoley data set into a folder")
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--size", default="tiny", choices=["tiny", "demo"])
    s.add_argument("--num-clips", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=2)
    s.set_defaults(func=_cmd_synthfoley)
