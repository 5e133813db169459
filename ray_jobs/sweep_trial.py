"""The code of a sweep's trials (Ray 2.60's Train-inside-Tune pattern) and the sweep driver's Tune callback.

`run_trial` is the Tune function of every trial: it builds the trial's config from the declaration (a grid
entry, or the values Optuna sampled) and calls `ray_jobs.train.run_training`, whose `TorchTrainer` gets a
`ReportToTune` callback: each epoch's report of rank 0 is forwarded to Tune with an `objective` key added, which
the ASHA scheduler and the Optuna searcher read. The trial's MLflow run is a child of the sweep's parent run
(`mlflow.parentRunId`) and carries `v2s.sweep.trial_id`, so the driver finds it again.

`CloseTrialRuns` runs in the sweep driver: when a trial ends it closes the trial's MLflow run if the trial could
not (ASHA stopped it: KILLED, tag `v2s.sweep.stopped_early`; the trial failed: FAILED).

This module imports Ray at import time (its classes subclass Ray's); `ray_jobs.sweep` imports it only when a
sweep runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from ray_jobs.studies import Sweep, resolve_metric, trial_config

OBJECTIVE_KEY = "objective"
TRIAL_TAG = "v2s.sweep.trial_id"
PARENT_TAG = "mlflow.parentRunId"


class ReportToTune(TuneReportCallback):
    """Forwards the Ray Train run's reports to the enclosing Tune trial, adding `objective` (the declared metric,
    the `val/<split>_split/` fallback applied). A report without it fails the trial, naming the metric."""

    def __init__(self, objective: str) -> None:
        super().__init__()
        self.objective = objective

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        first = dict(metrics[0])
        first[OBJECTIVE_KEY] = resolve_metric(first, self.objective)
        super().after_report(run_context, [first, *metrics[1:]], checkpoint)


class FinishingASHA(ASHAScheduler):
    """ASHA that never stops a trial at (or past) its last epoch.

    Plain ASHA stops a trial when it reaches `max_t`, and may stop it at a rung equal to its last epoch: either
    kills the trial right after its last report, before `run_training` has saved its model package and closed
    its MLflow run, and the compute is spent by then anyway. The result still counts for later trials' cutoffs
    (ASHA records it when the trial completes).
    """

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get(self._time_attr, 0) >= self._max_t:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)


class DistinctOptunaSearch(OptunaSearch):
    """Ray Tune's OptunaSearch (TPE, seeded) that does not suggest a point again while unseen points remain.

    Optuna's TPE draws its first `n_startup_trials` (10) at random, with replacement, and TPE itself repeats
    points of a small categorical space: 8 trials over 12 points drew only 5 distinct points in
    docs/benchmarks.md's first run. A repeated point is told to Optuna as failed (TPE ignores failed trials) and
    Optuna is asked again, up to `max_tries` times (then the last draw is kept); once all `size` points of a
    finite space (None: infinite) were suggested, repeats are allowed. The seen points are in the searcher's
    state (`__dict__`), which Tune saves with the sweep, so a resumed sweep remembers them."""

    def __init__(self, *args: Any, size: int | None = None, max_tries: int = 200, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._v2s_size, self._v2s_max_tries = size, max_tries
        self._v2s_seen: set[str] = set()

    def suggest(self, trial_id: str) -> dict | None:
        config = None
        for attempt in range(self._v2s_max_tries):
            config = super().suggest(trial_id)
            if config is None:
                return None
            key = json.dumps(config, sort_keys=True, default=str)
            full = self._v2s_size is not None and len(self._v2s_seen) >= self._v2s_size
            if key not in self._v2s_seen or full or attempt == self._v2s_max_tries - 1:
                self._v2s_seen.add(key)
                return config
            self._ot_study.tell(self._ot_trials.pop(trial_id), state=optuna.trial.TrialState.FAIL)
        return config


def trial_variant(sweep: Sweep, config: dict[str, Any], trial_id: str) -> tuple[str, dict[str, Any]]:
    """(run name, sampled values) of a trial: a grid entry's label, or `trial_<id>` and the sampled values."""
    if sweep.kind == "grid":
        return str(config["entry"]), {}
    return f"trial_{trial_id}", {k: config[k] for k in sweep.space}


def run_trial(config: dict[str, Any], plan: dict[str, Any]) -> None:
    """Tune function: one trial = one Ray Train run (resumed by name when Tune restores the trial)."""
    from ray_jobs.train import run_training

    sweep: Sweep = plan["sweep"]
    trial_id = tune.get_context().get_trial_id()
    run_name, params = trial_variant(sweep, config, trial_id)
    cfg = trial_config(sweep, params) if sweep.kind == "study" else trial_config(sweep, label=run_name)
    tags = {
        PARENT_TAG: plan["parent_run_id"],
        TRIAL_TAG: trial_id,
        "v2s.sweep": sweep.name if plan.get("name") is None else plan["name"],
        "v2s.sweep.kind": sweep.kind,
        "v2s.sweep.variant": run_name,
        "v2s.sweep.params": json.dumps(params or sweep.grid.get(run_name, {}), default=str)[:5000],
    }
    run_training(
        cfg,
        root=plan["root"],
        run_name=run_name,
        storage=plan["train_storage"],
        tracking_uri=plan["tracking_uri"],
        experiment=plan["experiment"],
        max_steps_per_epoch=sweep.max_steps_per_epoch,
        extra_tags=tags,
        callbacks=[ReportToTune(sweep.objective.metric)],
    )


def find_child_runs(client: Any, experiment_id: str, parent_run_id: str) -> list[Any]:
    """Every MLflow run whose parent is `parent_run_id` (all pages)."""
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'", max_results=1000,
            page_token=token,
        )  # fmt: skip
        runs += list(page)
        token = page.token
        if not token:
            return runs


class CloseTrialRuns(tune.Callback):
    """Sweep driver side: ends the MLflow run of a trial that ASHA stopped (KILLED) or that failed (FAILED).

    A trial that finished ended its run itself (FINISHED) before returning. The tracking URI and the parent run
    are read from the sweep's state file when needed: a restored sweep may have a new server port.
    """

    def __init__(self, state_file: str) -> None:
        self.state_file = state_file

    def _close(self, trial: Any, status: str, tags: dict[str, str]) -> None:
        from mlflow import MlflowClient

        try:
            state = json.loads(Path(self.state_file).read_text())
            client = MlflowClient(tracking_uri=state["tracking_uri"])
            exp = client.get_run(state["parent_run_id"]).info.experiment_id
            runs = client.search_runs(
                [exp],
                filter_string=f"tags.`{TRIAL_TAG}` = '{trial.trial_id}' and tags.`{PARENT_TAG}` = '{state['parent_run_id']}'",
            )
            for run in runs:
                # FAILED too for a stop: the killed controller can make run_training end the run FAILED first.
                if run.info.status == "RUNNING" or (status == "KILLED" and run.info.status == "FAILED"):
                    for k, v in tags.items():
                        client.set_tag(run.info.run_id, k, v)
                    client.set_terminated(run.info.run_id, status=status)
        except Exception as e:  # noqa: BLE001 (the driver's final pass closes what is left; never break Tune)
            print(
                f"[sweep] could not close the MLflow run of trial {trial.trial_id}: {type(e).__name__}: {e}"
            )

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        epoch = (trial.last_result or {}).get("epoch")
        self._close(
            trial, "KILLED", {"v2s.sweep.stopped_early": "true", "v2s.sweep.stopped_at_epoch": str(epoch)}
        )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._close(trial, "FAILED", {"v2s.sweep.error": "true"})
