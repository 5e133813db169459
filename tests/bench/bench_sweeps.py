"""Benchmark the sweep machinery (ray_jobs/sweep.py): per-trial overhead, and what ASHA + Optuna save over a grid.

1. **Per-trial overhead**: from a trial's start (Tune calls its function) to its first training step, i.e. the
   first report's `time_total_s` (Tune's clock from the trial's start) minus that epoch's own time
   (`perf/epoch_s`, training + validation of the epoch). It holds the config check, the data settings, the MLflow
   child run, the TorchTrainer's controller and worker group, the solver and its data sets. Median and range
   over the trials of both runs below.
2. **ASHA + Optuna against an exhaustive grid over the same space**: a grid trains every point of a discrete space
   to the last epoch (an ablation grid); a study samples the same space (the sweep's own searcher and scheduler:
   seeded Optuna TPE, distinct points, ASHA). Compute is counted in trained epochs (and, beside it, seconds of
   `perf/epoch_s`). Reported: the grid's best final objective; the compute the study had spent when a trial first
   finished within 5 % of that best (relative to |best|): every epoch any trial had reported by then (MLflow's
   timestamps), as a fraction of the whole grid's compute (goal: <= 40 %); and the study's total compute.
3. **The distribution over seeds** (`--replay N`): training is deterministic, so a point's per-epoch objective
   does not depend on the sweep that trains it. The grid records every point's per-epoch objective and seconds
   (`--save-grid`); `tests/bench/sweep_replay.py` then plays the study for N seeds with the real searcher and
   scheduler objects on those records, in seconds instead of hours. A real study (`--grid-from` without
   `--replay`) prints the replay of its own seed beside its trials, which checks the replay.

Data: `--data` names a project with prepared data (`data/prepared/manifest.jsonl`; default: the repository,
after `dvc repro` on the demo data). The runs write into a temporary project (the data linked), never into
`--data`. The full plan uses REGNET's demo config over 3 regularizer widths x 2 types x 2 mel weights (12 points),
each trial 12 epochs of 22 steps (half a demo epoch each, so 6 demo epochs of data), against a study of 8 trials
with ASHA grace 3, reduction factor 3 (the shipped `regnet_bottleneck` study's) and the default SEARCH; `--quick`
is a sanity run of the machinery (REGNET debug config, 2 epochs of 2 steps, a 2 x 2 space, 4 study trials), whose
figures say nothing about ASHA's savings.

    python tests/bench/bench_sweeps.py --quick
    python tests/bench/bench_sweeps.py --data /path/to/project --grid-only --save-grid grid.json   # ~25 min
    python tests/bench/bench_sweeps.py --data /path/to/project --grid-from grid.json                # one study
    python tests/bench/bench_sweeps.py --grid-from grid.json --replay 200                           # 200 seeds
    python tests/bench/bench_sweeps.py --data /path/to/project --grid-from grid.json --fill-grid    # failed points
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
OBJECTIVE = "val/onset_corr"
REPLAY_CONCURRENCY = 2  # what run_sweep derives for one-CPU trials on this project's 2-core machine
sys.path.insert(0, str(REPO))  # run as a script: the repository's packages first

FULL = {
    "base": "experiments/configs/regnet/demo.yaml",
    "space": {
        "model.generator.aux_dim": [4, 32, 256],
        "model.generator.aux_type": ["lstm_last", "conv"],
        "losses.mel": [1000.0, 10000.0],
    },
    "set": {"epochs": 12, "scaling.cpus_per_worker": 0.9},  # one CPU a trial: two side by side on 2 cores
    "samples": 8,
    "asha": {"grace_period": 3, "reduction_factor": 3},  # as experiments/sweeps/regnet_bottleneck.py
    "max_steps": 22,  # half of a demo epoch (176 training clips, batch 4): 12 x 22 steps = 6 demo epochs a trial
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


def write_declarations(
    folder: Path, plan: dict[str, Any], only: list[str] | None = None
) -> tuple[Path, Path]:
    """A grid over every point of the space (or the `only` labels), and a study over the same space (choices)."""
    points = _points(plan["space"])
    grid = {f"p{i:02d}": point for i, point in enumerate(points)}
    grid = {k: v for k, v in grid.items() if only is None or k in only}
    common = f"""
BASE = {plan["base"]!r}
SET = {plan["set"]!r}
OBJECTIVE = {{"metric": "val/onset_corr", "mode": "max", "window": {plan.get("window", 1)}}}
METRICS = ["val/mel_l1"]
SEED = {plan.get("seed", 0)}
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
SEARCH = {plan.get("search", {})!r}
''')
    )
    return grid_path, study_path


def trial_records(uri: str, experiment: str) -> list[dict[str, Any]]:
    """Per child run: name, status, sampled point, end time, final objective, and per epoch: the objective, the
    epoch's seconds (`perf/epoch_s`) and the time it was reported (ms since the epoch, MLflow's timestamp)."""
    from mlflow import MlflowClient

    from ray_jobs.studies import metric_key

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    out = []
    for run in client.search_runs([exp.experiment_id], max_results=1000):
        if "mlflow.parentRunId" not in run.data.tags:
            continue
        epochs = sorted(client.get_metric_history(run.info.run_id, "perf/epoch_s"), key=lambda m: m.step)
        try:
            key = metric_key(run.data.metrics, OBJECTIVE)
        except KeyError:
            objective, curve = None, []
        else:
            objective = float(run.data.metrics[key])
            curve = sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
        out.append({
            "name": run.info.run_name, "status": run.info.status, "end": run.info.end_time or 0,
            "point": json.loads(run.data.tags.get("v2s.sweep.params", "{}")),
            "epochs": len(epochs), "seconds": sum(m.value for m in epochs), "objective": objective,
            "curve": [m.value for m in curve], "epoch_s": [m.value for m in epochs],
            "epoch_end": [m.timestamp for m in epochs],
        })  # fmt: skip
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


def final_objective(record: dict[str, Any], window: int) -> float | None:
    """A trial's objective at its end: the metric's last value, or its mean over the last `window` epochs."""
    from tests.bench.sweep_replay import window_mean

    if not record.get("curve"):
        return record["objective"] if window == 1 else None
    return window_mean(record["curve"], window)


def study_reached(
    records: list[dict[str, Any]], target: float, window: int = 1
) -> tuple[int, float, str, float] | None:
    """(epochs, epoch seconds, trial, objective) the study had spent when a trial first finished within the target:
    every epoch any trial had reported by that moment (MLflow's timestamps of `perf/epoch_s`), not only the epochs
    of trials that had ended."""
    reports = sorted((t, s) for r in records for t, s in zip(r["epoch_end"], r["epoch_s"], strict=True))
    values = {r["name"]: final_objective(r, window) for r in records}
    done = [
        r
        for r in records
        if r["status"] == "FINISHED" and (v := values[r["name"]]) is not None and v >= target
    ]
    if not done:
        return None
    first = min(done, key=lambda r: r["epoch_end"][-1])
    when = first["epoch_end"][-1]
    spent = [s for t, s in reports if t <= when]
    return len(spent), sum(spent), first["name"], values[first["name"]]


def grid_target(records: list[dict[str, Any]], window: int) -> tuple[float, float]:
    """(best, target) of a grid: its best final objective and the value within 5 % of it (relative to |best|)."""
    best = max(v for r in records if (v := final_objective(r, window)) is not None)
    return best, best - 0.05 * abs(best)


def table_of(grid_records: list[dict[str, Any]], epochs: int) -> dict[str, dict[str, Any]]:
    """The grid as the replay's table: point -> per-epoch objective and seconds."""
    from tests.bench.sweep_replay import point_key

    table = {}
    for r in grid_records:
        if len(r.get("curve", [])) < epochs:
            raise SystemExit(f"grid record {r['name']}: {len(r.get('curve', []))} epochs of curve, {epochs} needed "
                             "(a grid saved before the curves were recorded cannot be replayed)")  # fmt: skip
        table[point_key(r["point"])] = {"curve": r["curve"], "epoch_s": r["epoch_s"]}
    return table


def replay_report(
    study: Any, saved: dict[str, Any], seeds: list[int], concurrency: int, epochs: int | None = None
) -> dict[str, Any]:
    """Replays the study for each seed on the saved grid; returns and prints the distribution. `epochs` (at most
    the grid's) replays trials of that many epochs on the curves' first epochs: only valid where a shorter run
    trains the same as the first epochs of a longer one (the REGNET demo's learning rate is constant through
    epoch 8, so up to 8 epochs here)."""
    from tests.bench.sweep_replay import replay_study

    g = saved["records"]
    epochs = epochs or int(saved["plan"]["set"]["epochs"])
    g = [{**r, "curve": r["curve"][:epochs], "epoch_s": r["epoch_s"][:epochs], "epochs": epochs} for r in g]
    table = table_of(g, epochs)
    grid_epochs = sum(r["epochs"] for r in g)
    best, target = grid_target(g, study.objective.window)
    overhead = statistics.median(saved["overheads_s"])
    fractions, totals, replays = [], [], []
    for seed in seeds:
        study.seed = seed
        out = replay_study(study, table, max_t=epochs, concurrency=concurrency, overhead_s=overhead)
        hit = out.reached(target, study.objective.mode, epochs)
        fractions.append(hit[0] / grid_epochs if hit else None)
        totals.append(out.epochs() / grid_epochs)
        replays.append(out)
    ok = [f for f in fractions if f is not None]
    within = sum(f <= 0.40 for f in ok)
    med = statistics.median([f if f is not None else float("inf") for f in fractions])
    print(f"replay: {len(seeds)} seeds, {study.num_samples} trials, ASHA {study.asha}, SEARCH {study.search}, "
          f"{concurrency} at once, overhead {overhead:.1f} s")  # fmt: skip
    print(f"  reached the target (within 5 % of {best:.4g}) in {len(ok)}/{len(seeds)} studies; within 40 % of the "
          f"grid's compute in {within}/{len(seeds)}; median fraction {med:.0%}"
          f"{'' if not ok else f' (of those that reached it: median {statistics.median(ok):.0%}, {min(ok):.0%}-{max(ok):.0%})'}; "
          f"whole study: median {statistics.median(totals):.0%} of the grid's compute")  # fmt: skip
    return {"fractions": fractions, "totals": totals, "replays": replays, "target": target}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="a sanity run of the machinery (debug config, tiny space)"
    )
    ap.add_argument(
        "--data", type=Path, default=REPO, help="project with data/prepared (default: the repository)"
    )
    ap.add_argument("--samples", type=int, default=None, help="study trials (default: the plan's)")
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
        "--startup", type=int, default=None, help="TPE's random start-up trials (SEARCH.n_startup_trials)"
    )
    ap.add_argument(
        "--multivariate", choices=("on", "off"), default=None, help="multivariate TPE (SEARCH.multivariate)"
    )
    ap.add_argument(
        "--window",
        type=int,
        default=None,
        help="objective = mean of the metric over the last N epochs (OBJECTIVE.window; default 1)",
    )
    ap.add_argument(
        "--study-epochs",
        type=int,
        default=None,
        help="with --replay: trials of this many epochs, on the first epochs of the grid's curves",
    )
    ap.add_argument("--seed", type=int, default=0, help="the study's sampler seed (default 0)")
    ap.add_argument(
        "--save-grid", type=Path, default=None, help="write the grid's trial records to this JSON"
    )
    ap.add_argument(
        "--grid-from",
        type=Path,
        default=None,
        help="skip the grid: compare with the records a run with --save-grid wrote (same plan required)",
    )
    ap.add_argument("--grid-only", action="store_true", help="run (and save) the grid, no study")
    ap.add_argument(
        "--fill-grid",
        action="store_true",
        help="with --grid-from: train again the grid's points that did not finish, and save the "
        "completed grid back into the same file",
    )
    ap.add_argument(
        "--replay",
        type=int,
        default=None,
        metavar="N",
        help="no training: replay the study for seeds 0..N-1 on --grid-from's per-epoch records",
    )
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # (a forked child must not flush a half-written buffer again)
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
    plan["search"] = dict(plan.get("search", {}))
    if args.startup is not None:
        plan["search"]["n_startup_trials"] = args.startup
    if args.multivariate is not None:
        plan["search"]["multivariate"] = args.multivariate == "on"
    plan["seed"] = args.seed
    if args.window is not None:
        plan["window"] = args.window
    grid_plan = {
        k: plan[k] for k in ("base", "space", "set", "max_steps")
    }  # what the grid's figures depend on
    saved = None
    if args.grid_from is not None:
        saved = json.loads(args.grid_from.read_text())
        if saved.get("plan") != json.loads(json.dumps(grid_plan)):
            print(f"{args.grid_from}: made with another plan ({saved.get('plan')}), not {grid_plan}")
            return 2

    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import run_sweep

    if args.replay is not None:
        if saved is None:
            print("--replay needs --grid-from (a grid saved with its per-epoch records)")
            return 2
        with tempfile.TemporaryDirectory(prefix="v2s-bench-replay-") as tmp:
            study = load_sweep(write_declarations(Path(tmp), plan)[1])
        replay_report(study, saved, list(range(args.replay)), REPLAY_CONCURRENCY, args.study_epochs)
        return 0
    data = args.data.resolve()
    if not (data / "data/prepared/manifest.jsonl").is_file():
        print(f"no prepared data in {data} (data/prepared/manifest.jsonl): run `dvc repro` or pass --data")
        return 2

    with tempfile.TemporaryDirectory(prefix="v2s-bench-sweeps-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        (root / "data").symlink_to(data / "data", target_is_directory=True)
        if (data / "params.yaml").is_file():
            (root / "params.yaml").write_text((data / "params.yaml").read_text())
        missing = None
        if args.fill_grid:
            if saved is None:
                print("--fill-grid needs --grid-from")
                return 2
            missing = [r["name"] for r in saved["records"] if r["status"] != "FINISHED"]
            print(f"filling the grid: {missing or 'nothing to do'}")
            if not missing:
                return 0
        grid_path, study_path = write_declarations(Path(tmp), plan, missing)
        grid, study = load_sweep(grid_path), load_sweep(study_path)
        for sw in (grid, study):
            sw.max_steps_per_epoch = plan["max_steps"]
        os.environ["RAY_TMPDIR"] = str(Path(tmp) / "r")  # a private local instance (short socket paths)
        uri = f"sqlite:///{root / 'mlflow.db'}"
        over: list[float] = []
        t0 = time.perf_counter()
        if missing:
            out_grid = run_sweep(grid, root=root, num_cpus=args.num_cpus, register=False)
            new = {r["name"]: r for r in trial_records(uri, out_grid.name)}
            saved["records"] = [{**new[r["name"]], "filled": True} if r["name"] in new else r
                                for r in saved["records"]]  # fmt: skip
            saved["seconds_total"] = sum(r["seconds"] for r in saved["records"])
            saved.setdefault("overheads_s", []).extend(overheads(out_grid.sweep_dir))
            args.grid_from.write_text(json.dumps(saved, indent=2) + "\n")
            print(f"filled {sorted(new)} into {args.grid_from}: {[new[k]['status'] for k in sorted(new)]}")
            return 0
        if saved is None:
            out_grid = run_sweep(grid, root=root, num_cpus=args.num_cpus, register=False)
            g = trial_records(uri, out_grid.name)
            over += overheads(out_grid.sweep_dir)
            grid_wall = time.perf_counter() - t0
            grid_seconds = sum(r["seconds"] for r in g)
            if args.save_grid is not None:
                doc = {"plan": grid_plan, "records": g, "wall_s": grid_wall, "seconds_total": grid_seconds,
                       "overheads_s": over}  # fmt: skip
                args.save_grid.write_text(json.dumps(doc, indent=2) + "\n")
        else:
            g, grid_wall, grid_seconds = (
                saved["records"],
                float(saved["wall_s"]),
                float(saved["seconds_total"]),
            )
        s: list[dict[str, Any]] = []
        t1 = t2 = time.perf_counter()
        if not args.grid_only:
            out_study = run_sweep(study, root=root, num_cpus=args.num_cpus, register=False)
            t2 = time.perf_counter()
            s = trial_records(uri, out_study.name)
            over += overheads(out_study.sweep_dir)

    grid_epochs = sum(r["epochs"] for r in g)
    window = plan.get("window", 1)
    best, target = grid_target(g, window)
    print(f"\n== bench_sweeps ({'quick' if args.quick else 'full'}; data {data}; "
          f"load average {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"space: {plan['space']} ({len(g)} grid points); base {plan['base']}; study {plan['samples']} trials, "
          f"ASHA {plan['asha']}, SEARCH {study.search}, seed {plan['seed']}")  # fmt: skip
    if over:
        print(f"per-trial overhead, trial start -> first training step: median {statistics.median(over):.1f} s "
              f"(min {min(over):.1f}, max {max(over):.1f}; {len(over)} trials)")  # fmt: skip
    print(f"grid:  {len(g)} trials, {grid_epochs} epochs ({grid_seconds:.0f} s of epochs), wall {grid_wall:.0f} s, "
          f"best val/onset_corr {best:.4g}")  # fmt: skip
    if s:
        study_epochs = sum(r["epochs"] for r in s)
        print(f"study: {len(s)} trials ({sum(r['status'] == 'KILLED' for r in s)} stopped by ASHA), {study_epochs} "
              f"epochs = {study_epochs / max(grid_epochs, 1):.0%} of the grid's, wall {t2 - t1:.0f} s")  # fmt: skip
        reached = study_reached(s, target, window)
        if reached is None:
            print(f"study: no finished trial within 5 % of the grid's best ({target:.4g}); fraction n/a")
        else:
            print(f"study: within 5 % of the grid's best after {reached[0]} epochs = {reached[0] / grid_epochs:.0%} "
                  f"of the grid's compute ({reached[1] / max(grid_seconds, 1e-9):.0%} in epoch seconds; trial "
                  f"{reached[2]}, {reached[3]:.4g}); goal <= 40 %")  # fmt: skip
    for label, records in (("grid", g), ("study", s)):
        if not records:
            continue
        print(
            f"\n{label} trials, in the order they ended (name, status, epochs, final val/onset_corr, point, curve):"
        )
        for r in records:
            value = "-" if r["objective"] is None else f"{r['objective']:.4f}"
            curve = " ".join(f"{v:.3f}" for v in r.get("curve", []))
            print(f"  {r['name']}  {r['status']}  {r['epochs']}  {value}  {r.get('point', '')}  [{curve}]")
    if s and saved is not None and all(r.get("curve") for r in g):
        rep = replay_report(study, saved, [plan["seed"]], REPLAY_CONCURRENCY)["replays"][0]
        print("the replay of this study on the saved grid (same seed), trials in the order they started:")
        for t in rep.trials:
            print(f"  {t['point']}  {t['epochs']} epochs  {t['objective']:.4f}")
    if args.quick:
        print("(quick: a sanity run of the machinery; the savings figure needs the full run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
