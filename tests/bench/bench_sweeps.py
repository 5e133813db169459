"""Benchmark the sweep machinery (ray_jobs/sweep.py): per-trial overhead, and what ASHA + Optuna save over a grid.

1. **Per-trial overhead**: from a trial's start (Tune calls its function) to its first training step, i.e. the
   first report's `time_total_s` (Tune's clock from the trial's start) minus that epoch's own time
   (`perf/epoch_s`, training + validation of the epoch). It holds the config check, the data settings, the MLflow
   child run, the TorchTrainer's controller and worker group, the solver and its data sets. Median and range
   over the trials of both runs below.
2. **ASHA + Optuna against an exhaustive grid over the same space**: a grid trains every point of a discrete space
   to the last epoch (an ablation grid); a study samples the same space (Optuna TPE, seeded) with ASHA early
   stopping. Compute is counted in trained epochs (and, beside it, seconds of `perf/epoch_s`). Reported: the
   grid's best final objective; the compute the study had spent, in the order its trials ended, when a trial
   first finished within 5 % of that best (relative to |best|), as a fraction of the whole grid's compute (goal:
   <= 40 %); and the study's total compute as a fraction of the grid's.

Data: `--data` names a project with prepared data (`data/prepared/manifest.jsonl`; default: the repository,
after `dvc repro` on the demo data). The runs write into a temporary project (the data linked), never into
`--data`. The full run uses REGNET's demo config over 3 regularizer widths x 2 types x 2 mel weights (12 points), each
trial 6 epochs of 22 steps (half a demo epoch, so 3 demo epochs of data: long enough for the trials to
separate on onset correlation, short enough for the grid to take ~30 min on a quiet 2-core machine), against a
study of 8 Optuna trials with ASHA (grace 1 epoch, reduction factor 2); `--quick` is a sanity run of the
machinery (REGNET debug config, 2 epochs of 2 steps, a 2 x 2 space, 4 study trials), whose figures say nothing
about ASHA's savings.

    python tests/bench/bench_sweeps.py --quick
    python tests/bench/bench_sweeps.py --data /path/to/project --samples 8 --save-grid grid.json
    python tests/bench/bench_sweeps.py --data /path/to/project --grid-from grid.json --grace-period 3  # study only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: the repository's packages first

FULL = {
    "base": "experiments/configs/regnet/demo.yaml",
    "space": {
        "model.generator.aux_dim": [4, 32, 256],
        "model.generator.aux_type": ["lstm_last", "conv"],
        "losses.mel": [1000.0, 10000.0],
    },
    "set": {"epochs": 6, "scaling.cpus_per_worker": 0.9},  # one CPU a trial: two side by side on 2 cores
    "samples": 8,
    "asha": {"grace_period": 1, "reduction_factor": 2},
    "max_steps": 22,  # half of a demo epoch (176 training clips, batch 4): 6 x 22 steps = 3 demo epochs a trial
}
QUICK = {
    "base": "experiments/configs/regnet/debug.yaml",
    "space": {"model.generator.aux_dim": [4, 32], "model.generator.aux_type": ["lstm_last", "conv"]},
    "set": {"epochs": 2, "scaling.cpus_per_worker": 0.9},
    "samples": 4,
    "asha": {"grace_period": 1, "reduction_factor": 2},
    "max_steps": 2,
}


def _points(space: dict[str, list[Any]]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = [{}]
    for key, values in space.items():
        points = [{**p, key: v} for p in points for v in values]
    return points


def write_declarations(folder: Path, plan: dict[str, Any]) -> tuple[Path, Path]:
    """A grid over every point of the space, and a study over the same space (choices)."""
    points = _points(plan["space"])
    grid = {f"p{i:02d}": point for i, point in enumerate(points)}
    common = f"""
BASE = {plan["base"]!r}
SET = {plan["set"]!r}
OBJECTIVE = {{"metric": "val/onset_corr", "mode": "max"}}
METRICS = ["val/mel_l1"]
SEED = 0
"""
    grid_path = folder / "bench_grid.py"
    grid_path.write_text(
        f'"""Benchmark: every point of the space, trained to the end."""\n{common}GRID = {grid!r}\n'
    )
    space = {k: {"choice": v} for k, v in plan["space"].items()}
    study_path = folder / "bench_study.py"
    study_path.write_text(
        textwrap.dedent(f'''"""Benchmark: Optuna + ASHA over the grid's space."""
{common}SPACE = {space!r}
NUM_SAMPLES = {plan["samples"]}
ASHA = {plan["asha"]!r}
''')
    )
    return grid_path, study_path


def trial_records(uri: str, experiment: str) -> list[dict[str, Any]]:
    """Per child run: end time, epochs trained, seconds of epochs, final objective, status."""
    from mlflow import MlflowClient

    from ray_jobs.studies import resolve_metric

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    out = []
    for run in client.search_runs([exp.experiment_id], max_results=1000):
        if "mlflow.parentRunId" not in run.data.tags:
            continue
        epochs = client.get_metric_history(run.info.run_id, "perf/epoch_s")
        try:
            objective = resolve_metric(run.data.metrics, "val/onset_corr")
        except KeyError:
            objective = None
        out.append({"end": run.info.end_time or 0, "epochs": len(epochs), "seconds": sum(m.value for m in epochs),
                    "objective": objective, "status": run.info.status, "name": run.info.run_name})  # fmt: skip
    return sorted(out, key=lambda r: r["end"])


def overheads(sweep_dir: Path) -> list[float]:
    """Trial start -> first training step of every trial of a Tune experiment folder (see the module doc)."""
    out = []
    for result in sweep_dir.glob("*/result.json"):
        lines = result.read_text().splitlines()
        if lines:
            first = json.loads(lines[0])
            out.append(float(first["time_total_s"]) - float(first.get("perf/epoch_s", 0.0)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="a sanity run of the machinery (debug config, tiny space)"
    )
    ap.add_argument(
        "--data", type=Path, default=REPO, help="project with data/prepared (default: the repository)"
    )
    ap.add_argument("--samples", type=int, default=None, help="study trials (default: 8, quick: 4)")
    ap.add_argument(
        "--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)"
    )
    ap.add_argument(
        "--grace-period", type=int, default=None, help="ASHA grace period in epochs (plan's default)"
    )
    ap.add_argument(
        "--reduction-factor", type=int, default=None, help="ASHA reduction factor (plan's default)"
    )
    ap.add_argument(
        "--save-grid", type=Path, default=None, help="write the grid's trial records to this JSON"
    )
    ap.add_argument(
        "--grid-from",
        type=Path,
        default=None,
        help="skip the grid: compare with the records a run with --save-grid wrote (same plan required)",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    plan = dict(QUICK if args.quick else FULL)
    if args.samples:
        plan["samples"] = args.samples
    plan["asha"] = dict(plan["asha"])
    if args.grace_period is not None:
        plan["asha"]["grace_period"] = args.grace_period
    if args.reduction_factor is not None:
        plan["asha"]["reduction_factor"] = args.reduction_factor
    grid_plan = {
        k: plan[k] for k in ("base", "space", "set", "max_steps")
    }  # what the grid's figures depend on
    saved = None
    if args.grid_from is not None:
        saved = json.loads(args.grid_from.read_text())
        if saved.get("plan") != json.loads(json.dumps(grid_plan)):
            print(f"{args.grid_from}: made with another plan ({saved.get('plan')}), not {grid_plan}")
            return 2
    data = args.data.resolve()
    if not (data / "data/prepared/manifest.jsonl").is_file():
        print(f"no prepared data in {data} (data/prepared/manifest.jsonl): run `dvc repro` or pass --data")
        return 2

    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import run_sweep

    with tempfile.TemporaryDirectory(prefix="v2s-bench-sweeps-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        (root / "data").symlink_to(data / "data", target_is_directory=True)
        if (data / "params.yaml").is_file():
            (root / "params.yaml").write_text((data / "params.yaml").read_text())
        grid_path, study_path = write_declarations(Path(tmp), plan)
        grid, study = load_sweep(grid_path), load_sweep(study_path)
        for s in (grid, study):
            s.max_steps_per_epoch = plan["max_steps"]
        os.environ["RAY_TMPDIR"] = str(Path(tmp) / "r")  # a private local instance (short socket paths)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        over: list[float] = []
        t0 = time.perf_counter()
        if saved is None:
            out_grid = run_sweep(grid, root=root, num_cpus=args.num_cpus, register=False)
            g = trial_records(uri, out_grid.name)
            over += overheads(out_grid.sweep_dir)
            grid_wall = time.perf_counter() - t0
        else:
            g, grid_wall = saved["records"], float(saved["wall_s"])
        t1 = time.perf_counter()
        out_study = run_sweep(study, root=root, num_cpus=args.num_cpus, register=False)
        t2 = time.perf_counter()
        s = trial_records(uri, out_study.name)
        over += overheads(out_study.sweep_dir)

    grid_epochs = sum(r["epochs"] for r in g)
    grid_seconds = sum(r["seconds"] for r in g) if saved is None else float(saved["seconds_total"])
    if args.save_grid is not None and saved is None:
        doc = {"plan": grid_plan, "records": g, "wall_s": grid_wall, "seconds_total": grid_seconds}
        args.save_grid.write_text(json.dumps(doc, indent=2) + "\n")
    best = max(r["objective"] for r in g if r["objective"] is not None)
    target = best - 0.05 * abs(best)
    spent = spent_s = 0.0
    reached = None
    for r in s:
        spent += r["epochs"]
        spent_s += r["seconds"]
        if (
            reached is None
            and r["status"] == "FINISHED"
            and r["objective"] is not None
            and r["objective"] >= target
        ):
            reached = (spent, spent_s, r["name"], r["objective"])
    study_epochs = sum(r["epochs"] for r in s)
    print(
        f"\n== bench_sweeps ({'quick' if args.quick else 'full'}; data {data}; load average {os.getloadavg()[0]:.1f})"
    )
    print(
        f"space: {plan['space']} ({len(g)} grid points); base {plan['base']}; study {plan['samples']} trials, ASHA {plan['asha']}"
    )
    print(f"per-trial overhead, trial start -> first training step: median {statistics.median(over):.1f} s "
          f"(min {min(over):.1f}, max {max(over):.1f}; {len(over)} trials)")  # fmt: skip
    print(f"grid:  {len(g)} trials, {grid_epochs} epochs ({grid_seconds:.0f} s of epochs), wall {grid_wall:.0f} s, "
          f"best val/onset_corr {best:.4g}")  # fmt: skip
    print(f"study: {len(s)} trials ({sum(r['status'] == 'KILLED' for r in s)} stopped by ASHA), {study_epochs} epochs "
          f"= {study_epochs / max(grid_epochs, 1):.0%} of the grid's, wall {t2 - t1:.0f} s")  # fmt: skip
    if reached is None:
        print(f"study: no finished trial within 5 % of the grid's best ({target:.4g}); fraction n/a")
    else:
        print(f"study: within 5 % of the grid's best after {reached[0]:.0f} epochs = {reached[0] / grid_epochs:.0%} "
              f"of the grid's compute ({reached[1] / max(grid_seconds, 1e-9):.0%} in epoch seconds; trial "
              f"{reached[2]}, {reached[3]:.4g}); goal <= 40 %")  # fmt: skip
    for label, records in (("grid", g), ("study", s)):
        print(f"\n{label} trials, in the order they ended (name, status, epochs, final val/onset_corr):")
        for r in records:
            value = "-" if r["objective"] is None else f"{r['objective']:.4f}"
            print(f"  {r['name']}  {r['status']}  {r['epochs']}  {value}")
    if args.quick:
        print("(quick: a sanity run of the machinery; the savings figure needs the full run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
