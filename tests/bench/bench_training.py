"""Benchmark training throughput: the plain loop against Ray Train with 1 and 2 workers, per experiment config.

For each config (experiments/configs/<model>/<variant>.yaml) it measures training clips/s over the last of
`--epochs` epochs of `--steps` steps (the first epoch warms up), validation excluded:
- plain: `v2s_models.training.loop` in this process, 1 thread;
- ray 1w / ray 2w: `ray_jobs.train.run_training` (TorchTrainer, gloo, 1 CPU per worker, untracked, checkpoints
  every epoch as in real runs); the rate is the workers' total (`perf/clips_per_s`, reported by rank 0).
Columns: Ray's overhead ratio plain / ray-1w (goal: <= 1.10, i.e. one worker within 10 % of the plain loop;
with `--repeats N` the median of N alternating plain / Ray-1w pairs, since one pair's ratio varies by +-10 %),
the 2-worker speed-up over 1 worker, and the wall time of each `fit()` (worker-group start included, ~19 s).

Data: the project's prepared data (`--root`, default: the current folder, after `dvc repro`). Without a
manifest there, random features of the regnet sizes are written to a temporary folder (speed does not depend
on values), and configs that need other features are skipped. Nothing is written to `--root`.

    python tests/bench/bench_training.py            # every config's debug / demo / paper variant
    python tests/bench/bench_training.py --quick    # regnet debug only, 3 steps
    python tests/bench/bench_training.py --configs experiments/configs/regnet/paper.yaml --steps 5
    python tests/bench/bench_training.py --configs experiments/configs/zhou/frame_paper.yaml --steps 2 \
        --set batch_size=2 --set train.max_seconds=1.0    # paper-size model, CPU-sized batch and clip
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: the repository's packages first

from ray_jobs.train import parse_overrides, run_training  # noqa: E402
from v2s_models.config import load_config  # noqa: E402
from v2s_models.training import loop  # noqa: E402

VARIANTS = ("debug", "demo", "paper")


def find_configs(variants: tuple[str, ...]) -> list[Path]:
    out = []
    for path in sorted((REPO / "experiments/configs").glob("*/*.yaml")):
        stem = path.stem
        if any(stem == v or stem.endswith(f"_{v}") or stem.startswith(f"{v}_") for v in variants):
            out.append(path)
    return out


def fake_regnet_data(root: Path, *, clips: int = 8, seed: int = 0) -> None:
    """Manifest + regnet feature folders (215 x 2560 visual, 80 x 860 mel) with random values."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(clips):
        clip = f"cat{i % 2}/clip_{i:04d}"
        rel = Path("data/features/regnet") / clip
        (root / rel).mkdir(parents=True)
        np.save(root / rel / "visual.npy", rng.standard_normal((215, 2560)).astype(np.float16))
        np.save(root / rel / "mel.npy", rng.random((80, 860)).astype(np.float32))
        (root / rel / "meta.json").write_text(json.dumps({"key": f"fake-{i}"}))
        rows.append({"clip_id": clip, "category": f"cat{i % 2}", "split": "train" if i < clips - 2 else "val",
                     "status": "ok", "features": {"regnet": str(rel)}})  # fmt: skip
    (root / "data/prepared").mkdir(parents=True)
    (root / "data/prepared/manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def plain_rate(cfg: dict[str, Any], root: Path, *, steps: int, epochs: int) -> tuple[float, float]:
    """(clips/s of the last epoch, seconds of that epoch) of the plain loop, 1 thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed = int(cfg.get("seed", 0))
        loop.seed_everything(seed)
        solver = loop.build_solver(cfg, device="cpu", root=root)
        train_set, _ = solver.datasets()
        loop.seed_everything(seed)
        rate = dt = 0.0
        for epoch in range(epochs):
            loader = loop.make_loader(
                train_set,
                batch_size=int(cfg["batch_size"]),
                shuffle=True,
                seed=seed,
                epoch=epoch,
                collate_fn=solver.collate_fn(),
            )
            n_steps = min(len(loader), steps)
            clips = min(len(train_set), n_steps * int(cfg["batch_size"]))
            t0 = time.perf_counter()
            loop.run_epoch(solver, loader, max_steps=steps)
            dt = time.perf_counter() - t0
            rate = clips / dt
            solver.end_epoch()
        return rate, dt
    finally:
        torch.set_num_threads(threads)


def ray_rate(
    cfg: dict[str, Any], root: Path, storage: Path, *, workers: int, steps: int, epochs: int, rep: int = 0
) -> tuple[float, float]:
    """(total clips/s of the last epoch, wall seconds of fit()) under Ray Train."""
    run_cfg = dict(cfg)
    run_cfg["epochs"] = epochs
    run_cfg["scaling"] = {"num_workers": workers, "use_gpu": False, "cpus_per_worker": 1}
    with contextlib.redirect_stdout(sys.stderr):  # run_training's progress lines stay out of the table
        out = run_training(
            run_cfg,
            root=root,
            run_name=f"bench-{cfg['name']}-{workers}w-{rep}",  # a new run each time (a known name resumes)
            storage=storage,
            tracking=False,
            max_steps_per_epoch=steps,
            max_failures=0,
        )
    return float(out.metrics["perf/clips_per_s"]), float(out.timings["fit_s"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="regnet debug only, 3 steps per epoch")
    ap.add_argument("--configs", nargs="*", type=Path, default=None, help="config files (default: all)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="debug,demo,paper")
    ap.add_argument("--root", type=Path, default=Path("."), help="project folder with data/prepared")
    ap.add_argument("--steps", type=int, default=10, help="steps per epoch")
    ap.add_argument("--epochs", type=int, default=2, help="epochs (the last one is measured)")
    ap.add_argument("--workers", default="1,2", help="Ray worker counts to run")
    ap.add_argument(
        "--repeats", type=int, default=1, help="plain / Ray-1-worker pairs per config (medians reported)"
    )
    ap.add_argument(
        "--budget-s", type=float, default=600.0, help="skip Ray runs when a plain epoch is slower"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="dotted override for every config (e.g. --set batch_size=2 to fit paper sizes on a CPU)")  # fmt: skip
    args = ap.parse_args(argv)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    steps = 3 if args.quick else args.steps
    configs = args.configs or (
        [REPO / "experiments/configs/regnet/debug.yaml"]
        if args.quick
        else find_configs(tuple(v for v in args.variants.split(",") if v))
    )
    worker_counts = [int(w) for w in args.workers.split(",") if w]

    import ray

    with tempfile.TemporaryDirectory(prefix="v2s-bench-") as tmp:
        root = args.root.resolve()
        data_note = f"prepared data in {root}"
        if not (root / "data/prepared/manifest.jsonl").is_file():
            root = Path(tmp) / "project"
            fake_regnet_data(root)
            data_note = "random regnet-size features (no data/prepared/manifest.jsonl under --root)"
        rows: list[dict[str, Any]] = []
        print(f"# Training throughput: plain loop vs Ray Train ({data_note})\n")
        print(
            f"{steps} steps per epoch, last of {args.epochs} epochs measured; 1 thread per process; "
            f"{args.repeats} plain / Ray-1w pair(s) per config, medians (range of the pairs' ratios)."
        )
        print(f"Overrides: {' '.join(args.overrides) or 'none'}.\n")
        print("| config | batch | plain clips/s | ray 1w clips/s | plain / ray 1w | ray 2w clips/s | 2w / 1w "
              "| fit 1w s | fit 2w s | note |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        for path in configs:
            name = f"{path.parent.name}/{path.stem}"
            row: dict[str, Any] = {"config": name}
            try:
                cfg = load_config(path, parse_overrides(args.overrides))
                row["batch"] = int(cfg["batch_size"])
                # plain and Ray 1-worker runs alternate `--repeats` times; the ratio is the median of the pairs'
                # ratios (one pair's ratio moves by +-10 % on this machine from run to run)
                plains, ray1s, ratios = [], [], []
                for rep in range(args.repeats):
                    plain, plain_s = plain_rate(cfg, root, steps=steps, epochs=args.epochs)
                    plains.append(plain)
                    # Ray starts after the first plain run: its start-up would slow that run down
                    if not ray.is_initialized():
                        ray.init(address="local", num_cpus=max(2, max(worker_counts)), include_dashboard=True)
                    if plain_s > args.budget_s:
                        row["note"] = f"plain epoch {plain_s:.0f} s > budget: Ray runs skipped"
                        break
                    for w in worker_counts if rep == 0 else [w for w in worker_counts if w == 1]:
                        rate, row[f"fit{w}"] = ray_rate(
                            cfg,
                            root,
                            Path(tmp) / "ray_results",
                            workers=w,
                            steps=steps,
                            epochs=args.epochs,
                            rep=rep,
                        )
                        if w == 1:
                            ray1s.append(rate)
                            ratios.append(plain / rate)
                        else:
                            row[f"ray{w}"] = rate
                row["plain"] = statistics.median(plains)
                if ray1s:
                    row["ray1"] = statistics.median(ray1s)
                    row["ratio"] = statistics.median(ratios)
                    row["ratios"] = [round(r, 3) for r in ratios]
            except Exception as e:  # noqa: BLE001 (a config this data cannot feed: say so, go on)
                row["note"] = f"skipped: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
                if os.environ.get("V2S_BENCH_TRACEBACK"):
                    traceback.print_exc()
            rows.append(row)

            def fmt(key: str, digits: int = 2, r: dict[str, Any] = row) -> str:
                return f"{r[key]:.{digits}f}" if key in r else "-"

            ratio = f"{row['ratio']:.2f}" if "ratio" in row else "-"
            if len(row.get("ratios", [])) > 1:
                ratio += f" ({min(row['ratios']):.2f}-{max(row['ratios']):.2f})"
            speedup = f"{row['ray2'] / row['ray1']:.2f}" if "ray1" in row and "ray2" in row else "-"
            print(f"| {name} | {row.get('batch', '-')} | {fmt('plain')} | {fmt('ray1')} | {ratio} | {fmt('ray2')} "
                  f"| {speedup} | {fmt('fit1', 1)} | {fmt('fit2', 1)} | {row.get('note', '')} |", flush=True)  # fmt: skip
        if ray.is_initialized():
            ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
