"""Ray's sub-command of `v2s`: `finetune` (data stages, then Ray Train). experiments/cli.py adds it to the command;
Ray and torch load only when it runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _cmd_finetune(args: argparse.Namespace) -> int:
    from ray_jobs.finetune import run_finetune  # lazy: Ray and torch

    try:
        out = run_finetune(
            args.model,
            args.data,
            root=args.root,
            work=args.work,
            name=args.name,
            epochs=args.epochs,
            lr_scale=args.lr_scale,
            freeze=args.freeze,
            val_fraction=args.val_fraction,
            tracking_uri=args.tracking_uri,
            workers=args.workers,
            cluster=args.cluster,
            address=args.address,
            num_cpus=args.num_cpus,
        )
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 (MlflowException, Ray's TrainingFailedError: say so, exit non-zero)
        print(f"error: fine-tuning {args.model} failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    t = out.training
    final = {k: v for k, v in t.metrics.items() if k.startswith("val/")}
    print(json.dumps({"run_name": t.run_name, "mlflow_run_id": t.mlflow_run_id, "model_uri": t.model_uri,
                      "source_val": out.baseline, "val": final}))  # fmt: skip
    print(f"register it: v2s promote {t.mlflow_run_id} --name NAME", file=sys.stderr)
    return 0


def add_finetune(sub: Any) -> None:
    """`v2s finetune`."""
    ft = sub.add_parser(
        "finetune",
        help="fine-tune a trained model on a folder of your own videos (data stages, then Ray Train)",
    )
    ft.add_argument(
        "model", help="models:/<name>@<alias>, another MLflow model URI, a run id or a package folder"
    )
    ft.add_argument(
        "--data", type=Path, required=True, help="folder of videos (category sub-folders, or flat)"
    )
    ft.add_argument("--freeze", action="append", default=[], metavar="PREFIX",
                    help="parameters not trained, repeatable: visual_encoder, discriminators, "
                         "or a parameter-name prefix such as generator.encoder")  # fmt: skip
    ft.add_argument("--lr-scale", type=float, default=0.1, help="learning rates times this (default 0.1)")
    ft.add_argument("--epochs", type=int, default=5)
    ft.add_argument("--val-fraction", type=float, default=0.2,
                    help="share of the folder's clips held out for validation without splits/*.txt")  # fmt: skip
    ft.add_argument("--name", default=None, help="run name (default: <config name>-ft-<folder name>)")
    ft.add_argument("--work", type=Path, default=None, help="prepared data (default: <root>/finetune/<name>)")
    ft.add_argument("--root", type=Path, default=Path("."), help="project folder (mlflow.db, ray_results/)")
    ft.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow store (default: $MLFLOW_TRACKING_URI or <root>/mlflow.db)",
    )
    ft.add_argument("--workers", type=int, default=2, help="data-preparation workers")
    ft.add_argument(
        "--cluster", default=None, help="data preparation on Ray: local or an address (default: processes)"
    )
    ft.add_argument(
        "--address",
        default=None,
        help="Ray cluster for training (default: RAY_ADDRESS, a running one, or local)",
    )
    ft.add_argument("--num-cpus", type=int, default=None, help="CPUs of a new local Ray instance")
    ft.set_defaults(func=_cmd_finetune)
