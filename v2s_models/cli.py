"""The library's sub-commands of `v2s` (generate, promote, evaluate, compare, listening-test, ui).

The `v2s` command itself is experiments/cli.py, which adds the data pipeline's and Ray's sub-commands. Modules
that load torch, PyAV or MLflow are imported inside each sub-command (marked `# lazy:`), so `v2s --help` is
instant.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from v2s_models import model_card, progress
from v2s_models.listening.cli import register as register_listening_test
from v2s_models.tracking import default_tracking_uri


def _cmd_generate(args: argparse.Namespace) -> int:
    progress.enable(sys.stderr, prefix="generate")  # a line per stage, and every few seconds within one
    with progress.stage("loading libraries"):  # a cold start spends most of its time here
        from tqdm import tqdm

        from v2s_models.media.mux import output_format, prepare_outputs  # lazy: PyAV
        from v2s_models.media.probe import MediaError, probe  # lazy: PyAV
        from v2s_models.video_to_sound import GenerationResult, VideoToSound  # lazy: torch

    def report(video: Path, item: GenerationResult | Exception) -> None:
        if isinstance(item, Exception):
            tqdm.write(f"error: {item}", file=sys.stderr)
            return
        how = "video copied" if item.mux.video_copied else f"video re-encoded to H.264 ({item.mux.note})"
        tqdm.write(
            f"{item.out}: {item.audio.duration:.2f} s, {item.audio.num_windows} window(s), {how}; "
            f"sound also in {item.wav_path}",
            file=sys.stderr,
        )

    try:
        out = args.out
        if not args.video.is_dir():  # a bad input or output name fails before the model loads
            probe(args.video)
            if out.is_dir():
                out = out / f"{args.video.stem}.mp4"
            output_format(out)
            prepare_outputs(args.video, [out, out.with_suffix(".wav")], overwrite=args.overwrite)
        with progress.stage("loading model"):
            v2s = VideoToSound.from_uri(
                args.model,
                device=args.device,
                vocoder=args.vocoder,
                reference=args.reference,
                overlap_s=args.overlap,
                seed=args.seed,
                extractor_weights=args.extractor_weights,
            )
        card = model_card.card_of_package(v2s.package.extra)
        progress.say(
            f"model card: {model_card.summary(card)}" if card else "model card: none (an older package)"
        )
        warning = model_card.real_video_warning(card, args.video)
        if warning:
            print(warning, file=sys.stderr)
        if args.video.is_dir():
            results = v2s.generate_folder(
                args.video, out, seed=args.seed, on_result=report, overwrite=args.overwrite
            )
            failed = [video for video, item in results if isinstance(item, Exception)]
            print(
                f"{len(results) - len(failed)} of {len(results)} videos written to {out}",
                file=sys.stderr,
            )
            return 1 if failed else 0
        report(args.video, v2s.generate_file(args.video, out, seed=args.seed, overwrite=args.overwrite))
    except MediaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def _cmd_promote(args: argparse.Namespace) -> int:
    from v2s_models.registry import promote  # lazy: MLflow

    uri = args.tracking_uri or default_tracking_uri(args.root)
    try:
        out = promote(args.model, name=args.name, alias=args.alias, tracking_uri=uri)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 (MlflowException: an unknown run, model or alias)
        print(f"error: {args.model}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    where = f"alias {out['alias']!r} -> " if out["alias"] else ""
    print(f"{out['name']}: {where}version {out['version']} ({out['source']})", file=sys.stderr)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from v2s_models.evaluation import evaluate, log_to_mlflow  # lazy: torch
    from v2s_models.evaluation.stage import standard_settings  # lazy: torch
    from v2s_models.media.probe import MediaError  # lazy: PyAV

    root = args.root.resolve()
    out = args.out or root / "evaluations" / _safe_name(args.model)
    try:
        result = evaluate(
            args.model,
            root=root,
            out=out,
            split=args.split,
            vocoder=args.vocoder,
            max_clips=args.max_clips,
            samples=args.samples,
            seed=args.seed,
            device=args.device,
            generate_seconds=args.generate_seconds,
            excerpt_seconds=args.excerpt_seconds,
            retrieval_clips=args.retrieval_clips,
            retrieval_seconds=args.retrieval_seconds,
            background=args.background,
            retrieval_baseline=args.retrieval_baseline,
            bootstrap=args.bootstrap,
            standard_settings=standard_settings(root),
            cluster=args.cluster,
        )
    except (ValueError, FileNotFoundError, KeyError, MediaError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print((out / "table.md").read_text())
    run_id = result.run_id
    if run_id and not args.no_log:
        uri = args.tracking_uri or default_tracking_uri(root)
        try:
            eval_run = log_to_mlflow(
                result, run_id, tracking_uri=uri, max_clips=args.max_clips, model_uri=args.model
            )
            print(
                f"logged as MLflow run {eval_run} in experiment 'evaluation' (the model's training run "
                f"{run_id} is left as it is; {uri})",
                file=sys.stderr,
            )
        except Exception as e:  # noqa: BLE001 (the files are written; say why the log failed)
            print(
                f"warning: the evaluation is in {out} but logging to MLflow run {run_id} failed: {e}",
                file=sys.stderr,
            )
    print(f"evaluation written to {out}", file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from v2s_models.evaluation import compare_evaluations, comparison_markdown  # lazy: torch

    try:
        rows = compare_evaluations(args.eval_a, args.eval_b, n_boot=args.bootstrap, seed=args.seed)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{**r, "difference": r["difference"].as_dict()} for r in rows], indent=2))
    else:
        print(comparison_markdown(rows))
    return 0


def _safe_name(model: str) -> str:
    name = model.rstrip("/").split("/")[-1] if "://" not in model and ":/" not in model else model
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name).strip("_") or "model"


def _cmd_ui(args: argparse.Namespace) -> int:
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_remote:
        # the UI has no authentication: whoever reaches the port can register models and move aliases
        raise SystemExit(
            f"v2s ui: --host {args.host} would expose the MLflow UI, which has no authentication, beyond this "
            "machine; pass --allow-remote to opt in, or use an SSH tunnel (docs/cluster.md)"
        )
    root = args.root.resolve()
    store = default_tracking_uri(root)
    if store.startswith(("http://", "https://")):
        print(f"MLFLOW_TRACKING_URI points at a server: open {store}", file=sys.stderr)
        return 0
    cmd = [
        sys.executable, "-m", "mlflow", "ui",
        "--backend-store-uri", store,
        "--default-artifact-root", (root / "mlartifacts").as_uri(),
        "--host", args.host, "--port", str(args.port),
        "--workers", "1",
    ]  # fmt: skip
    # One worker and no job consumers: 0.4 GB instead of 1.9 GB (STACK.md).
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true"}
    print(f"MLflow UI at http://{args.host}:{args.port} over {store} (Ctrl-C stops it)", file=sys.stderr)
    # MLflow 3 opens in its GenAI mode (a browser setting); this link switches the browser to model training
    print(
        f"runs and models: http://{args.host}:{args.port}/#/experiments?workflowType=machine_learning",
        file=sys.stderr,
    )
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)  # mlflow replaces this process: signals reach it directly
    return 0  # not reached


def new_parser() -> tuple[argparse.ArgumentParser, Any]:
    """The top-level parser and its sub-command list, to which each layer adds its commands."""
    ap = argparse.ArgumentParser(prog="v2s", description="v2s: video-to-sound generation research platform")
    sub = ap.add_subparsers(dest="command", required=True)
    return ap, sub


def add_generate(sub: Any) -> None:
    """`v2s generate`."""
    g = sub.add_parser(
        "generate", help="put sound generated by a trained model on a video (or on every video in a folder)"
    )
    g.add_argument("video", type=Path, help="a video file, or a folder (searched recursively)")
    g.add_argument(
        "--model", required=True, help="models:/<name>@<alias>, another MLflow model URI, or a package folder"
    )
    g.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="audio or video whose sound sets the timbre (VarietySound)",
    )
    g.add_argument(
        "--extractor-weights",
        type=Path,
        default=None,
        help="the visual extractor's file, yours to trust (required when the model names a TorchScript one)",
    )
    g.add_argument(
        "--vocoder",
        default="griffin_lim",
        help="griffin_lim | hifigan_pretrained | a HiFi-GAN checkpoint file | a vocoder package or URI",
    )
    g.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output video (.mp4, .mov, .mkv), or a folder (for a folder input)",
    )
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    g.add_argument(
        "--overlap", type=float, default=2.0, help="seconds of overlap between windows (long videos)"
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace outputs that exist (never the input video); without it an existing output is an error",
    )
    g.set_defaults(func=_cmd_generate)


def add_promote(sub: Any) -> None:
    """`v2s promote`."""
    pr = sub.add_parser(
        "promote", help="register a trained model and point an alias (candidate | champion) at it"
    )
    pr.add_argument(
        "model",
        help="a run id, runs:/<run_id>/model, models:/m-<id>, or models:/<name>@<alias> (moves the alias)",
    )
    pr.add_argument("--name", required=True, help="registered model name, e.g. regnet-dog")
    pr.add_argument("--alias", default=None, choices=["candidate", "champion"])
    pr.add_argument("--root", type=Path, default=Path("."), help="project folder of the default store")
    pr.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: $MLFLOW_TRACKING_URI or <root>/mlflow.db)",
    )
    pr.set_defaults(func=_cmd_promote)


def add_evaluate(sub: Any) -> None:
    """`v2s evaluate`."""
    ev = sub.add_parser(
        "evaluate", help="evaluate a trained model on a split beside the baselines (metrics, tables, samples)"
    )
    ev.add_argument("model", help="models:/<name>@<alias>, another MLflow model URI, or a package folder")
    ev.add_argument("--split", default="test", help="split of the prepared data (default: test)")
    ev.add_argument("--root", type=Path, default=Path("."), help="project folder with data/ (default: .)")
    ev.add_argument("--out", type=Path, default=None, help="output folder (default: evaluations/<model>)")
    ev.add_argument("--vocoder", default="griffin_lim", help="as for generate (gan_mel models)")
    ev.add_argument(
        "--max-clips",
        type=int,
        default=None,
        help="evaluate N clips, drawn evenly from every category (seeded)",
    )
    ev.add_argument("--samples", type=int, default=4, help="clips written as mp4 per system (default 4)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ev.add_argument(
        "--generate-seconds",
        type=float,
        default=None,
        help="generate and score only the first S seconds "
        "(default: the whole window; 2 s for SampleRNN models, which sample one by one)",
    )
    ev.add_argument(
        "--excerpt-seconds",
        type=float,
        default=None,
        help="also score every system on the first S seconds of each clip (metrics.json 'excerpt'; "
        "SampleRNN models then generate S seconds), to compare models on the same excerpts",
    )
    ev.add_argument(
        "--retrieval-clips", type=int, default=32, help="clips in the retrieval experiment (default 32)"
    )
    ev.add_argument(
        "--retrieval-seconds",
        type=float,
        default=None,
        help="seconds of audio scored per retrieval pair (default: whole clips)",
    )
    ev.add_argument(
        "--background",
        choices=["silence", "real"],
        default="silence",
        help="what VarietySound's background encoder hears: silence (the paper's inference) or the clip's "
        "real mel (Table 8's 'w Bi')",
    )
    ev.add_argument(
        "--retrieval-baseline",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add Zhou et al.'s retrieval baseline as system retrieval_oracle (default: SampleRNN models)",
    )
    ev.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the intervals")
    ev.add_argument(
        "--cluster",
        default=None,
        help="generate and score the clips as Ray tasks: local (a Ray instance for this run) or an address "
        "(auto, host:6379, ray://head:10001); default: in this process. The figures are the same",
    )
    ev.add_argument("--no-log", action="store_true", help="do not log to the model's MLflow run")
    ev.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: $MLFLOW_TRACKING_URI or <root>/mlflow.db)",
    )
    ev.set_defaults(func=_cmd_evaluate)


def add_compare(sub: Any) -> None:
    """`v2s compare`."""
    cmp_ = sub.add_parser(
        "compare", help="paired per-clip differences of two evaluations of the same clips, with p-values"
    )
    cmp_.add_argument("eval_a", type=Path, help="evaluation folder (metrics.json, per_clip.csv) of model A")
    cmp_.add_argument("eval_b", type=Path, help="evaluation folder of model B")
    cmp_.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    cmp_.add_argument("--seed", type=int, default=0)
    cmp_.add_argument("--json", action="store_true", help="print the comparison as JSON")
    cmp_.set_defaults(func=_cmd_compare)


def add_ui(sub: Any) -> None:
    """`v2s ui`."""
    ui = sub.add_parser("ui", help="the MLflow UI over the project's store, on 127.0.0.1")
    ui.add_argument("--root", type=Path, default=Path("."), help="project folder (mlflow.db, mlartifacts/)")
    ui.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (loopback unless --allow-remote)"
    )
    ui.add_argument("--allow-remote", action="store_true", help="opt in to a --host other than loopback")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(func=_cmd_ui)


def build_parser() -> argparse.ArgumentParser:
    """The library's commands only (`python -m v2s_models.cli`); the `v2s` command (experiments/cli.py) adds
    the data pipeline's `features` and `synthfoley` and Ray's `finetune` to these."""
    ap, sub = new_parser()
    add_generate(sub)
    add_promote(sub)
    add_evaluate(sub)
    add_compare(sub)
    register_listening_test(sub)
    add_ui(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
