"""Replay a study on a recorded grid: the sweep's own searcher and scheduler, the trials' training looked up.

Training here is deterministic (a point's per-epoch objective does not depend on the sweep that trains it:
docs/benchmarks.md), so once a grid has trained every point of a finite space and recorded each epoch's objective
and seconds, a study over the same space can be replayed without training: the study's searcher
(`ray_jobs.sweep_trial.study_searcher`: seeded Optuna TPE, distinct points) and scheduler (`study_scheduler`:
ASHA) are the objects a real sweep uses, driven by a discrete-event loop that plays Tune's part:

- up to `concurrency` trials run at once; a free slot asks the searcher for a point (`suggest`) and tells the
  scheduler (`on_trial_add`), as Tune does under `max_concurrent_trials`;
- a trial reports epoch e after `overhead_s` plus its point's recorded epoch seconds 1..e; each report goes to
  the scheduler (`on_trial_result`) and, unless it says STOP, to the searcher (`on_trial_result`), in the order
  of Tune's `_process_trial_result`;
- a trial that ASHA stopped or that reached its last epoch completes (`on_trial_complete` of both, with its last
  result, as Tune's `stop_trial`).

What the replay leaves out: Tune's own timing noise (two reports closer than the recorded seconds' jitter could
arrive in the other order in a real run) and the cost of a trial's start beyond `overhead_s`. A real study with
the same seed (`bench_sweeps.py --grid-from`) checks both: its trial sequence should equal the replay's.

The objective is the declaration's: the metric, or with `OBJECTIVE["window"]` > 1 its mean over a trial's last
epochs, as `ReportToTune` computes it. Compute is counted in trained epochs, as in bench_sweeps.py: a study "reaches" the target when a trial finishes
(trains to the last epoch) with an objective within 5 % of the grid's best; the compute spent then is every epoch
any trial had reported by that moment.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass, field
from typing import Any

from ray_jobs.sweep_trial import OBJECTIVE_KEY, point_key, window_mean

__all__ = ["Replay", "point_key", "replay_study", "window_mean"]


@dataclass
class _Trial:  # what the scheduler reads of a Tune trial
    trial_id: str


@dataclass
class Replay:
    """The outcome of one replayed study."""

    trials: list[dict[str, Any]] = field(default_factory=list)  # in the order they started
    reports: list[tuple[float, str, int]] = field(default_factory=list)  # (time, trial, epoch), in time order

    def epochs(self) -> int:
        return len(self.reports)

    def reached(self, target: float, mode: str, max_t: int) -> tuple[int, float, dict[str, Any]] | None:
        """(epochs spent, time, trial) when a trial first finished with an objective at the target, else None."""
        better = (lambda v: v >= target) if mode == "max" else (lambda v: v <= target)
        done = [t for t in self.trials if t["epochs"] == max_t and better(t["objective"])]
        if not done:
            return None
        first = min(done, key=lambda t: t["end"])
        spent = sum(1 for time, _, _ in self.reports if time <= first["end"])
        return spent, first["end"], first


def replay_study(
    sweep: Any,
    table: dict[str, dict[str, Any]],
    *,
    max_t: int,
    concurrency: int,
    overhead_s: float,
) -> Replay:
    """Plays `sweep` (a loaded study declaration: space, seed, SEARCH, ASHA, NUM_SAMPLES) on `table`: point_key ->
    {"curve": [objective per epoch], "epoch_s": [seconds per epoch]} (at least `max_t` epochs each)."""
    from ray.tune.schedulers import TrialScheduler

    from ray_jobs.sweep import tune_space
    from ray_jobs.sweep_trial import study_scheduler, study_searcher

    searcher = study_searcher(sweep)
    searcher.set_search_properties(OBJECTIVE_KEY, sweep.objective.mode, tune_space(sweep.space))
    scheduler = study_scheduler(sweep, max_t)
    scheduler.set_search_properties(OBJECTIVE_KEY, sweep.objective.mode)
    out = Replay()
    events: list[tuple[float, int, str, int]] = []  # (time, sequence, trial id, epoch)
    live: dict[str, dict[str, Any]] = {}
    seq = 0

    def start(now: float) -> None:
        nonlocal seq
        tid = f"t{len(out.trials):05d}"
        config = searcher.suggest(tid)
        key = point_key({k: config[k] for k in sweep.space})
        if key not in table:
            raise KeyError(f"the study suggested {key}, which the grid did not train")
        rec = table[key]
        if len(rec["curve"]) < max_t or len(rec["epoch_s"]) < max_t:
            raise ValueError(f"{key}: the grid recorded {len(rec['curve'])} epochs, the study needs {max_t}")
        trial = {
            "id": tid,
            "point": json.loads(key),
            "start": now,
            "epochs": 0,
            "objective": None,
            "end": None,
        }
        out.trials.append(trial)
        live[tid] = trial
        scheduler.on_trial_add(None, _Trial(tid))
        heapq.heappush(events, (now + overhead_s + rec["epoch_s"][0], seq, tid, 1))
        seq += 1

    def complete(trial: dict[str, Any], result: dict[str, Any], now: float) -> None:
        scheduler.on_trial_complete(None, _Trial(trial["id"]), result)
        searcher.on_trial_complete(trial["id"], result=result)
        trial["end"] = now
        del live[trial["id"]]

    now = 0.0
    while True:
        while len(live) < concurrency and len(out.trials) < sweep.num_samples:
            start(now)
        if not events:
            break
        now, _, tid, epoch = heapq.heappop(events)
        trial = live[tid]
        rec = table[point_key(trial["point"])]
        value = window_mean(rec["curve"][:epoch], sweep.objective.window)
        result = {OBJECTIVE_KEY: value, "epoch": epoch, "training_iteration": epoch}
        out.reports.append((now, tid, epoch))
        trial["epochs"], trial["objective"] = epoch, value
        decision = scheduler.on_trial_result(None, _Trial(tid), result)
        if decision != TrialScheduler.STOP:
            searcher.on_trial_result(tid, result)
        if decision == TrialScheduler.STOP or epoch >= max_t:
            trial["stopped"] = epoch < max_t
            complete(trial, result, now)
        else:
            heapq.heappush(events, (now + rec["epoch_s"][epoch], seq, tid, epoch + 1))
            seq += 1
    return out
