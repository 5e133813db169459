"""The study replay of tests/bench/sweep_replay.py (the sweep benchmark's tool): its bookkeeping on a made-up
table, and, on a real local Ray instance, that Ray Tune driving the same searcher and scheduler over the same table
runs the same trials to the same epochs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.bench.sweep_replay import point_key, replay_study

SPACE = {"a": [1, 2, 3], "b": ["x", "y"]}
MAX_T = 4


def _curve(a: int, b: str) -> list[float]:
    # only (3, "y") learns; the others stay low, (1, "x") lowest
    top = {(3, "y"): 0.5, (2, "y"): 0.2, (3, "x"): 0.15}.get((a, b), 0.02 * a)
    return [top * (e + 1) / MAX_T for e in range(MAX_T)]


TABLE = {
    point_key({"a": a, "b": b}): {"curve": _curve(a, b), "epoch_s": [1.0 + 0.1 * a] * MAX_T}
    for a in SPACE["a"]
    for b in SPACE["b"]
}


def _sweep(samples: int, seed: int = 0, startup: int = 2, grace: int = 1) -> Any:
    """A Sweep over SPACE without building configs (the replay needs only the space, the settings, the objective)."""
    from ray_jobs.studies import Objective, Sweep

    return Sweep(
        name="replay", path=Path("replay.py"), kind="study", question="?", base="-",
        space={"a": {"choice": SPACE["a"]}, "b": {"choice": SPACE["b"]}}, grid={}, fixed={},
        objective=Objective("val/x", "max"), metrics=[], num_samples=samples,
        asha={"grace_period": grace, "reduction_factor": 2}, seed=seed,
        search={"n_startup_trials": startup, "multivariate": False}, register_as=None, trial_cpu=0.1,
    )  # fmt: skip


def test_replay_bookkeeping() -> None:
    out = replay_study(_sweep(6), TABLE, max_t=MAX_T, concurrency=2, overhead_s=0.5)
    assert len(out.trials) == 6
    assert len({point_key(t["point"]) for t in out.trials}) == 6  # distinct points while unseen ones remain
    assert out.epochs() == sum(t["epochs"] for t in out.trials)
    times = [r[0] for r in out.reports]
    assert times == sorted(times)
    stopped = [t for t in out.trials if t["epochs"] < MAX_T]
    assert stopped, "ASHA (grace 1, reduction 2) stops some of the flat curves"
    assert all(t["stopped"] for t in stopped)
    for t in out.trials:  # the objective a trial ends with is its point's value at its last epoch
        assert t["objective"] == TABLE[point_key(t["point"])]["curve"][t["epochs"] - 1]
    # every point is drawn once, so the best, (3, y), finishes: its whole curve is 4 epochs
    hit = out.reached(0.5 * 0.95, "max", MAX_T)
    assert hit is not None and hit[2]["point"] == {"a": 3, "b": "y"}
    assert hit[0] == sum(1 for time, _, _ in out.reports if time <= hit[1])
    assert out.reached(0.6, "max", MAX_T) is None


def test_replay_is_deterministic_and_seeded() -> None:
    runs = [
        [point_key(t["point"]) for t in replay_study(_sweep(4, seed=s), TABLE, max_t=MAX_T, concurrency=2, overhead_s=0).trials]
        for s in (0, 0, 1, 2, 3)
    ]  # fmt: skip
    assert runs[0] == runs[1]
    assert len({tuple(r) for r in runs[1:]}) > 1


def test_replay_refuses_a_point_the_grid_lacks() -> None:
    partial = dict(list(TABLE.items())[:2])
    with pytest.raises(KeyError, match="did not train"):
        replay_study(_sweep(6), partial, max_t=MAX_T, concurrency=1, overhead_s=0)


@pytest.mark.slow
def test_replay_matches_ray_tune(tmp_path: Path) -> None:
    """One trial at a time, so the order of reports does not depend on timing: Tune with the sweep's searcher and
    scheduler and a function that reports the table's curve must run the replay's trials, in its order, to the
    same epochs."""
    import ray
    from ray import tune

    from ray_jobs.sweep import tune_space
    from ray_jobs.sweep_trial import study_scheduler, study_searcher

    table = TABLE

    def tabular(config: dict[str, Any]) -> None:
        rec, started = table[point_key(config)], time.time()
        for epoch in range(1, MAX_T + 1):
            tune.report({"objective": rec["curve"][epoch - 1], "epoch": epoch, "started": started})

    def run_tune(sweep: Any, name: str) -> list[tuple[str, int]]:
        tuner = tune.Tuner(
            tabular,
            param_space=tune_space(sweep.space),
            tune_config=tune.TuneConfig(
                metric="objective", mode="max", num_samples=sweep.num_samples, max_concurrent_trials=1,
                search_alg=study_searcher(sweep), scheduler=study_scheduler(sweep, MAX_T),
            ),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name=name, verbose=0),
        )  # fmt: skip
        rows = sorted((r.metrics["started"], point_key({k: r.config[k] for k in SPACE}), r.metrics["epoch"])
                      for r in tuner.fit())  # fmt: skip
        return [(p, e) for _, p, e in rows]  # in the order the trials started

    ray.init(
        address="local", num_cpus=1, include_dashboard=False, _temp_dir=f"/tmp/v2s-rp-{tmp_path.name[-6:]}"
    )
    try:
        for seed in (3, 5):
            sweep = _sweep(6, seed=seed, startup=2)
            real_order = run_tune(sweep, f"replay{seed}")
            replay = replay_study(sweep, table, max_t=MAX_T, concurrency=1, overhead_s=0)
            assert any(e < MAX_T for _, e in real_order), "ASHA stopped no trial: the comparison shows little"
            assert real_order == [(point_key(t["point"]), t["epochs"]) for t in replay.trials]
    finally:
        ray.shutdown()


def test_bench_counts_every_epoch_reported_before_the_target_was_reached() -> None:
    """bench_sweeps.study_reached: the compute spent when a trial first finished at the target is every epoch any
    trial had reported by then, a concurrent trial's unfinished epochs included."""
    from tests.bench.bench_sweeps import study_reached

    def rec(name: str, status: str, curve: list[float], ends: list[int]) -> dict[str, Any]:
        return {"name": name, "status": status, "objective": curve[-1], "curve": curve,
                "epoch_s": [1.0] * len(curve), "epoch_end": ends}  # fmt: skip

    records = [
        rec("a", "KILLED", [0.1, 0.1], [10, 20]),
        rec("b", "FINISHED", [0.2, 0.3, 0.5], [15, 25, 35]),  # reaches the target at t=35
        rec("c", "FINISHED", [0.1, 0.2, 0.3, 0.4], [22, 30, 40, 50]),  # 2 of its epochs were done by t=35
        rec("d", "FINISHED", [0.6, 0.6, 0.6], [60, 70, 80]),
    ]
    assert study_reached(records, 0.45) == (7, 7.0, "b", 0.5)
    assert study_reached(records, 0.55) == (12, 12.0, "d", 0.6)
    assert study_reached(records, 0.7) is None
    # with a window the trial's final objective is its last epochs' mean: b's is 0.4, d's 0.6
    assert study_reached(records, 0.45, window=2)[2] == "d"


def test_searcher_state_survives_a_save_and_restore(tmp_path: Path) -> None:
    """A resumed study (Tune restores its searcher from the sweep folder) still remembers the points it tried."""
    from ray_jobs.sweep import tune_space
    from ray_jobs.sweep_trial import study_searcher

    sweep = _sweep(6, seed=1, startup=2)
    first = study_searcher(sweep)
    first.set_search_properties("objective", "max", tune_space(sweep.space))
    seen = []
    for i in range(3):
        config = first.suggest(f"t{i}")
        seen.append(point_key(config))
        first.on_trial_complete(
            f"t{i}", {"objective": TABLE[point_key(config)]["curve"][-1], "training_iteration": 4}
        )
    first.save(str(tmp_path / "searcher.json"))
    again = study_searcher(sweep)
    again.restore(str(tmp_path / "searcher.json"))
    for i in range(3, 6):
        config = again.suggest(f"t{i}")
        seen.append(point_key(config))
        again.on_trial_complete(f"t{i}", {"objective": 0.0, "training_iteration": 4})
    assert len(set(seen)) == 6
    saved = json.loads((tmp_path / "searcher.json").read_text())  # plain JSON: restoring runs no code
    assert len(saved["seen"]) == 3 and sum(t["state"] == "COMPLETE" for t in saved["told"]) == 3
    assert not saved["running"]
