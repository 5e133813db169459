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

import itertools
import json
import math
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from ray import tune
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from ray_jobs.studies import Sweep, resolve_metric, trial_config
from ray_jobs.train import run_training

OBJECTIVE_KEY = "objective"
TRIAL_TAG = "v2s.sweep.trial_id"
PARENT_TAG = "mlflow.parentRunId"


def finite_size(space: Mapping[str, Mapping[str, list[Any]]]) -> int | None:
    """How many distinct points a space of choices (and integer ranges) has; None when a dimension is
    continuous."""
    n = 1
    for dist in space.values():
        ((name, args),) = dist.items()
        if name == "choice":
            n *= len({json.dumps(v, sort_keys=True) for v in args})
        elif name == "randint":
            n *= int(args[1]) - int(args[0]) + 1
        else:
            return None
    return n


def point_key(config: dict[str, Any]) -> str:
    """One string per point of a space (the same values give the same string whatever the key order)."""
    return json.dumps(config, sort_keys=True, default=str)


def window_mean(values: list[float], window: int) -> float:
    """The objective after these per-epoch values: the mean of the last `window` (fewer when there are fewer)."""
    last = [float(v) for v in values[-window:]]
    return sum(last) / len(last)


class ReportToTune(TuneReportCallback):
    """Forwards the Ray Train run's reports to the enclosing Tune trial, adding `objective`: the declared metric
    (the `val/<split>_split/` fallback applied), or with `window` > 1 its mean over the trial's last `window`
    reports (fewer before the trial has made that many; a trial restored from its checkpoint starts counting
    again). A report without the metric fails the trial, naming it."""

    def __init__(self, objective: str, window: int = 1) -> None:
        super().__init__()
        self.objective, self.window = objective, window
        self.history: list[float] = []

    def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
        first = dict(metrics[0])
        self.history = [*self.history, resolve_metric(first, self.objective)][-self.window :]
        first[OBJECTIVE_KEY] = window_mean(self.history, self.window)
        super().after_report(run_context, [first, *metrics[1:]], checkpoint)


class FinishingASHA(ASHAScheduler):
    """ASHA that never stops a trial at (or past) its last epoch.

    Plain ASHA stops a trial when it reaches `max_t`, and may stop it at a rung equal to its last epoch: either
    kills the trial right after its last report, before `run_training` has saved its model package and closed
    its MLflow run, and the compute is spent by then anyway. The result still counts for later trials' cutoffs
    (ASHA records it when the trial completes). Only ASHA's public constructor and `on_trial_result` are used:
    the last epoch is kept here, not read back from ASHA.
    """

    def __init__(self, *, time_attr: str, max_t: int, **kwargs: Any) -> None:
        super().__init__(time_attr=time_attr, max_t=max_t, **kwargs)
        self.finish_attr, self.finish_at = time_attr, max_t

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get(self.finish_attr, 0) >= self.finish_at:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)


def optuna_distributions(space: Mapping[str, Mapping[str, list[Any]]]) -> dict[str, Any]:
    """The declaration's distributions (ray_jobs.studies) as Optuna's: choice -> categorical, loguniform and
    uniform -> float (log or not), randint -> int with both bounds included."""
    out: dict[str, Any] = {}
    for key, dist in space.items():
        ((name, args),) = dist.items()
        if name == "choice":
            out[key] = optuna.distributions.CategoricalDistribution(list(args))
        elif name in ("loguniform", "uniform"):
            out[key] = optuna.distributions.FloatDistribution(
                float(args[0]), float(args[1]), log=name == "loguniform"
            )
        else:
            out[key] = optuna.distributions.IntDistribution(int(args[0]), int(args[1]))
    return out


class DistinctOptunaSearch(Searcher):
    """A Ray Tune searcher over an Optuna study it owns (Optuna's public ask-and-tell interface; TPE by default),
    that does not suggest a point again while unseen points remain.

    Optuna's TPE draws its first `n_startup_trials` at random, with replacement, and TPE itself repeats points of a
    small categorical space: 8 trials over 12 points drew only 5 distinct points in docs/benchmarks.md's first run,
    and once its model has a clear favourite it proposes that same point on nearly every draw. A repeated point is
    told to Optuna as failed (TPE ignores failed trials) and Optuna is asked again, up to `max_tries` times; if it
    still proposes seen points, the study takes the unseen point nearest to its last proposal (`nearest_unseen`:
    TPE's favourite is taken, so its closest neighbour is the next best guess), enqueued into the Optuna study so
    that the trial is Optuna's like any other. Once all points of a finite space were suggested, repeats are
    allowed; an infinite space (a float dimension) only retries repeats.

    `space` is the declaration's (`{"key": {"choice": [...]}}`, see ray_jobs.studies); it is the searcher's own, so
    the Tune config given to `set_search_properties` is not read. A trial that ends with the metric is told to
    Optuna as COMPLETE with its last value (an ASHA-stopped trial too: its value at the epoch it reached), one
    that ends without it (an error) as FAIL. `save` / `restore` write and read JSON (the points seen, every
    trial told to Optuna, the trials still running), so a resumed sweep remembers what it tried; the sampler is
    the one given to the restored searcher.
    """

    def __init__(
        self, space: Mapping[str, Mapping[str, list[Any]]], *, sampler: Any = None, seed: int | None = None,
        metric: str | None = None, mode: str | None = None, max_tries: int = 10, tie_seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(metric=metric, mode=mode)
        self.objective_metric, self.objective_mode = metric, mode
        self.space = {k: dict(v) for k, v in space.items()}
        self.distributions = optuna_distributions(self.space)
        self.size = finite_size(self.space)
        self.choices = None  # the finite space's values per key (for nearest_unseen), or None
        if all(set(d) == {"choice"} for d in self.space.values()):
            self.choices = {k: list(d["choice"]) for k, d in self.space.items()}
        self.sampler = sampler if sampler is not None else optuna.samplers.TPESampler(seed=seed)
        self.max_tries, self.tie_seed = max_tries, tie_seed
        self.seen: set[str] = set()
        self.study: Any = None
        self.running: dict[str, Any] = {}  # Tune trial id -> the Optuna trial asked for it
        self.restored_running: dict[str, dict[str, Any]] = {}  # Tune trial id -> params, after a restore

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        self.objective_metric = self.objective_metric or metric
        self.objective_mode = self.objective_mode or mode
        return True

    def _study(self) -> Any:
        if self.study is None:
            if self.objective_mode not in ("min", "max"):
                raise ValueError(
                    f"DistinctOptunaSearch needs mode 'min' or 'max', not {self.objective_mode!r}"
                )
            optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per trial told
            direction = "maximize" if self.objective_mode == "max" else "minimize"
            self.study = optuna.create_study(sampler=self.sampler, direction=direction)
        return self.study

    def suggest(self, trial_id: str) -> dict | None:
        study = self._study()
        for attempt in range(self.max_tries + 1):
            ask = study.ask(self.distributions)
            config = dict(ask.params)
            full = self.size is not None and len(self.seen) >= self.size
            if point_key(config) not in self.seen or full:
                break
            if attempt == self.max_tries:
                nearest = None
                if self.choices is not None:
                    nearest = nearest_unseen(
                        config, self.choices, self.seen, seed=self.tie_seed * 100_003 + len(self.seen)
                    )
                if nearest is None:
                    break  # keep the repeat (nothing to enumerate)
                study.tell(ask, state=optuna.trial.TrialState.FAIL)
                study.enqueue_trial(nearest)
                ask = study.ask(self.distributions)
                config = dict(ask.params)
                break
            study.tell(ask, state=optuna.trial.TrialState.FAIL)
        self.running[trial_id] = ask
        self.seen.add(point_key(config))
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        value = None if error or not result else result.get(self.objective_metric)
        ok = isinstance(value, int | float) and math.isfinite(float(value))
        state = optuna.trial.TrialState.COMPLETE if ok else optuna.trial.TrialState.FAIL
        study = self._study()
        if trial_id in self.running:
            ask = self.running.pop(trial_id)
            study.tell(ask, float(value) if ok else None, state=state)
        elif trial_id in self.restored_running:
            params = self.restored_running.pop(trial_id)
            study.add_trial(
                optuna.trial.create_trial(
                    params=params, distributions=self.distributions, value=float(value) if ok else None,
                    state=state,
                )
            )  # fmt: skip

    def save(self, checkpoint_path: str) -> None:
        told = []
        for t in self.study.get_trials(deepcopy=False) if self.study is not None else []:
            if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL):
                told.append({"params": t.params, "value": t.value, "state": t.state.name})
        running = {tid: t.params for tid, t in self.running.items()} | self.restored_running
        state = {
            "metric": self.objective_metric, "mode": self.objective_mode, "seen": sorted(self.seen), "told": told,
            "running": running,
        }  # fmt: skip
        Path(checkpoint_path).write_text(json.dumps(state, default=str))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.objective_metric = self.objective_metric or state.get("metric")
        self.objective_mode = self.objective_mode or state.get("mode")
        self.study, self.running = None, {}
        study = self._study()
        for t in state["told"]:
            study.add_trial(
                optuna.trial.create_trial(
                    params=t["params"], distributions=self.distributions, value=t["value"],
                    state=optuna.trial.TrialState[t["state"]],
                )
            )  # fmt: skip
        self.seen = set(state["seen"])
        self.restored_running = dict(state["running"])


def nearest_unseen(
    config: dict[str, Any], choices: dict[str, list[Any]], seen: set[str], *, seed: int = 0
) -> dict[str, Any] | None:
    """The unseen point of a finite space (`choices`: key -> values) closest to `config`; None when all were seen.

    Distance: the sum over keys of |i - j| / (n - 1), i and j the positions of the two values in the key's list
    when its values are numbers (an ordered choice such as widths 4, 32, 256), else 0 or 1. Ties are broken at
    random (seeded)."""
    keys = list(choices)

    def position(k: str, v: Any) -> int:
        return [json.dumps(c, default=str) for c in choices[k]].index(json.dumps(v, default=str))

    def distance(point: dict[str, Any]) -> float:
        d = 0.0
        for k in keys:
            vals = choices[k]
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
            i, j = position(k, config[k]), position(k, point[k])
            d += abs(i - j) / max(1, len(vals) - 1) if numeric else float(i != j)
        return d

    points = (
        dict(zip(keys, values, strict=True)) for values in itertools.product(*(choices[k] for k in keys))
    )
    unseen = [(distance(p), p) for p in points if point_key(p) not in seen]
    if not unseen:
        return None
    best = min(d for d, _ in unseen)
    return random.Random(seed).choice([p for d, p in unseen if d == best])


def study_searcher(sweep: Sweep) -> DistinctOptunaSearch:
    """The searcher of a study: Optuna's TPE, seeded, with the declaration's SEARCH settings (start-up trials,
    multivariate), no point of a finite space suggested twice before every point was tried."""
    sampler = optuna.samplers.TPESampler(
        seed=sweep.seed, n_startup_trials=sweep.search["n_startup_trials"],
        multivariate=sweep.search["multivariate"],
    )  # fmt: skip
    return DistinctOptunaSearch(sweep.space, sampler=sampler, tie_seed=sweep.seed)


def study_scheduler(sweep: Sweep, epochs: int) -> FinishingASHA:
    """The scheduler of a study: ASHA on the per-epoch objective (`epoch` as time), never stopping a trial at its
    last epoch."""
    return FinishingASHA(
        time_attr="epoch", max_t=epochs, grace_period=sweep.asha["grace_period"],
        reduction_factor=sweep.asha["reduction_factor"], stop_last_trials=False,
    )  # fmt: skip


def param_label(params: Mapping[str, Any], max_chars: int = 120) -> str:
    """A run name from sampled values: the last part of each dotted key and a short value, e.g.
    {"model.aux_dim": 32, "losses.mel": 1000.0} -> 'aux_dim=32,mel=1e3' (full keys where two last parts
    collide); a folder name (no '/', '#' or spaces; cut to `max_chars`)."""
    short = [k.rsplit(".", 1)[-1] for k in params]
    names = short if len(set(short)) == len(short) else list(params)
    parts = []
    for name, value in zip(names, params.values(), strict=True):
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        text = text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")
        parts.append("".join(c if c.isalnum() or c in "=._-" else "_" for c in f"{name}={text}"))
    return ",".join(parts)[:max_chars] or "defaults"


def trial_variant(sweep: Sweep, config: dict[str, Any], trial_id: str) -> tuple[str, dict[str, Any]]:
    """(run name, sampled values) of a trial: a grid entry's label, or the sampled values as a label
    (`param_label`) followed by the Tune trial's number, e.g. 'aux_dim=32,mel=1e3_t00003' (the number keeps
    two trials of the same point apart: the name is also the trial's Ray Train folder)."""
    if sweep.kind == "grid":
        return str(config["entry"]), {}
    params = {k: config[k] for k in sweep.space}
    return f"{param_label(params)}_t{trial_id.rsplit('_', 1)[-1]}", params


def run_trial(config: dict[str, Any], plan: dict[str, Any]) -> None:
    """Tune function: one trial = one Ray Train run (resumed by name when Tune restores the trial)."""

    sweep: Sweep = plan["sweep"]
    if plan.get("temporary_server"):  # MLflow's "View run at http://..." would name a server that stops soon
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
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
        state_dir=plan.get("state_dir"),
        tracking_uri=plan["tracking_uri"],
        experiment=plan["experiment"],
        max_steps_per_epoch=sweep.max_steps_per_epoch,
        extra_tags=tags,
        callbacks=[ReportToTune(sweep.objective.metric, sweep.objective.window)],
        end_run_on_error=False,  # the driver ends it: KILLED when ASHA stopped the trial, FAILED on an error
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

    Only this driver ends the run of a trial that did not finish, and it decides from Tune's own events:
    `on_trial_complete` for a trial that Tune ended without an error (a finished trial ended its run FINISHED
    itself before returning, so a run still RUNNING here was stopped by ASHA), `on_trial_error` for one that
    failed after its retries. The trial's `run_training` gets `end_run_on_error=False`: stopping a trial kills its
    Ray Train controller, which its `run_training` sees as an exception, and it used to end its run FAILED, at a
    moment of its own (the trial actor is torn down after Tune's callbacks ran), so on two nodes a stopped
    trial's run could end FAILED after this callback had ended it KILLED. The tracking URI and the parent run
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
                if run.info.status == "RUNNING":
                    for k, v in tags.items():
                        client.set_tag(run.info.run_id, k, v)
                    client.set_terminated(run.info.run_id, status=status)
        except Exception as e:  # noqa: BLE001 (the driver's final pass closes what is left; never break Tune)
            print(
                f"[sweep] could not close the MLflow run of trial {trial.trial_id}: {type(e).__name__}: {e}"
            )

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        epoch = (trial.last_result or {}).get("epoch")
        note = (
            f"Stopped early by ASHA after epoch {epoch}: its objective was below the rung's cutoff. "
            "Not a failure; status KILLED is how MLflow shows a run ended on purpose before its last epoch."
        )
        self._close(
            trial,
            "KILLED",
            {
                "v2s.sweep.stopped_early": "true",
                "v2s.sweep.stopped_at_epoch": str(epoch),
                "mlflow.note.content": note,
            },
        )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._close(trial, "FAILED", {"v2s.sweep.error": "true"})
