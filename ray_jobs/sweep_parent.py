"""The sweep's parent MLflow run: opening it (or reopening it on a resume), and after Tune has run the trials,
the summary: the trials' rows (closing child runs a stopped trial left RUNNING), the comparison table as the parent's
artifact, the summary metrics, the registration of the best finished trial, and the end of the parent run.

`ray_jobs.sweep` (the driver) calls `open_parent` before `Tuner.fit` and `finish_parent` after it. This module
imports MLflow, Optuna and Ray (through `ray_jobs.sweep_trial`) at import time; the driver imports it only when a
sweep runs, so `--check` stays light.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from ray_jobs.studies import describe, resolve_metric, varying_keys
from ray_jobs.sweep_report import TrialRow, row_metrics, write_table
from ray_jobs.sweep_trial import OBJECTIVE_KEY, TRIAL_TAG, find_child_runs, trial_variant
from v2s_models import model_card, registry
from v2s_models.tracking import MLflowTracker, git_commit


def open_parent(
    sweep: Any, *, run_id: str | None, tracking_uri: str, name: str, concurrency: int, epochs: int
) -> MLflowTracker:
    """The parent run `run_id` reopened (a resumed sweep), or a new one in experiment `name` with the sweep's
    tags, parameters and declaration file (also when `run_id` was deleted from the store)."""
    parent = None
    if run_id:
        parent = MLflowTracker(tracking_uri=tracking_uri, run_id=run_id)
        try:
            parent.reopen()
        except Exception as e:  # noqa: BLE001 (deleted from the store: start a new parent)
            print(f"[sweep] cannot reopen the parent run {run_id} ({e}); starting a new one")
            parent = None
    if parent is None:
        commit = git_commit(Path(__file__).resolve().parents[1])
        parent = MLflowTracker.create(
            tracking_uri=tracking_uri, experiment=name, run_name=name,
            tags={
                "v2s.sweep": name, "v2s.sweep.kind": sweep.kind, "v2s.sweep.declaration": sweep.path.name,
                "v2s.sweep.smoke_test": str(sweep.smoke).lower(), "v2s.git_commit": commit,
                "mlflow.note.content": describe(sweep),
            },
        )  # fmt: skip
        parent.log_params(sweep_params(sweep, concurrency, epochs))
        parent.log_artifact(sweep.path, artifact_path="declaration")
    return parent


def finish_parent(
    sweep: Any,
    results: Any,
    parent: MLflowTracker,
    client: Any,
    *,
    experiment_id: str,
    name: str,
    tracking_uri: str,
    register_as: str | None,
    register: bool,
) -> tuple[list[TrialRow], int, dict[str, Any] | None, dict[str, Any] | None]:
    """After `Tuner.fit`: (rows, failed trials, best trial, registered model version) of the sweep, with the
    comparison table, the summary metrics and the best trial's tags logged on `parent`, and `parent` ended
    (FINISHED, or FAILED when a trial failed)."""
    rows, errors = collect_rows(sweep, results, client, experiment_id, parent.run_id)
    best = best_row(rows, sweep.objective.mode)
    best_info = registered = None
    with tempfile.TemporaryDirectory(prefix="v2s-sweep-table-") as tmp:
        paths = write_table(
            rows, tmp, title=name, question=sweep.question.split("\n\n")[0], objective=sweep.objective.label,
            mode=sweep.objective.mode, metrics=table_metrics(sweep), param_keys=varying_keys(sweep),
            keep_order=sweep.kind == "grid", best=best.variant if best else None,
        )  # fmt: skip
        parent.log_artifact(Path(tmp), artifact_path="comparison")
        print(paths["md"].read_text())
    summary = {"trials": len(rows), "trials_finished": sum(r.status == "finished" for r in rows),
               "trials_stopped_early": sum(r.status.startswith("stopped") for r in rows), "trials_failed": errors}  # fmt: skip
    parent.log_metrics({f"sweep/{k}": v for k, v in summary.items()}, step=0)
    if best is not None:
        best_info = {"variant": best.variant, "run_id": best.run_id, "objective": best.objective}
        parent.log_metrics({"best/objective": float(best.objective)}, step=0)
        parent.set_tags({"v2s.sweep.best_run_id": best.run_id or "", "v2s.sweep.best_variant": best.variant})
        reg_name = register_as or sweep.register_as
        if sweep.smoke and not register_as and register:  # a debug network never enters the registry
            print("[sweep] smoke test: the best trial is not registered (--register-as NAME to register it)")
        elif register and reg_name and best.run_id:
            registered = register_best(best, reg_name, tracking_uri, name, parent.run_id, sweep)
            parent.set_tags({"v2s.sweep.registered_model": registered["model_uri"]})
    parent.end("FINISHED" if errors == 0 else "FAILED")
    return rows, errors, best_info, registered


def table_metrics(sweep: Any) -> list[str]:
    """The comparison table's metric columns: the declared METRICS, after the objective's last value when the
    objective is a window's mean."""
    return ([sweep.objective.metric] if sweep.objective.window > 1 else []) + list(sweep.metrics)


def sweep_params(sweep: Any, concurrency: int, epochs: int) -> dict[str, Any]:
    """The parent run's parameters: the declaration's settings, its space or grid, the concurrency."""
    params = {
        "sweep.kind": sweep.kind, "sweep.base": sweep.base, "sweep.objective": sweep.objective.metric,
        "sweep.mode": sweep.objective.mode, "sweep.objective_window": sweep.objective.window,
        "sweep.seed": sweep.seed, "sweep.max_concurrent": concurrency, "sweep.epochs": epochs,
        "sweep.smoke_test": sweep.smoke, "sweep.set": json.dumps(sweep.fixed, default=str),
    }  # fmt: skip
    if sweep.kind == "study":
        params.update({"sweep.num_samples": sweep.num_samples, "sweep.search": "optuna.TPESampler",
                       "sweep.scheduler": "ASHA", "sweep.asha.grace_period": sweep.asha["grace_period"],
                       "sweep.asha.reduction_factor": sweep.asha["reduction_factor"],
                       "sweep.search.n_startup_trials": sweep.search["n_startup_trials"],
                       "sweep.search.multivariate": sweep.search["multivariate"]})  # fmt: skip
        params.update({f"space.{k}": json.dumps(v) for k, v in sweep.space.items()})
    else:
        params.update({f"grid.{k}": json.dumps(v, default=str) for k, v in sweep.grid.items()})
        params.update({f"grid.{k}._base_": v for k, v in sweep.bases.items()})
    return params


def collect_rows(
    sweep: Any, results: Any, client: Any, experiment_id: str, parent_run_id: str
) -> tuple[list[Any], int]:
    """Table rows of every trial; closes child runs still RUNNING (a trial that never reported its end)."""
    # A run still RUNNING now belongs to a trial that ended without closing it (stopped, or interrupted by a
    # driver that died; a restored trial may then have logged into a new run): end it KILLED.
    children: dict[str, Any] = {}
    for run in sorted(find_child_runs(client, experiment_id, parent_run_id), key=lambda r: r.info.start_time):
        if run.info.status == "RUNNING":
            client.set_tag(run.info.run_id, "v2s.sweep.stopped_early", "true")
            client.set_terminated(run.info.run_id, status="KILLED")
            run = client.get_run(run.info.run_id)
        trial_id = run.data.tags.get(TRIAL_TAG)
        if trial_id not in children or run.info.status == "FINISHED":  # the finished one, else the newest
            children[trial_id] = run
    rows, errors = [], 0
    for result in results:
        metrics = dict(result.metrics or {})
        trial_id = str(metrics.get("trial_id") or _trial_id_from_dir(result, sweep))
        variant, params = trial_variant(sweep, dict(result.config or {}), str(trial_id))
        run = children.get(trial_id)
        epoch = int(metrics.get("epoch", 0) or 0)
        if result.error is not None:
            status, errors = "error", errors + 1
        elif run is not None and run.info.status == "FINISHED":
            status = "finished"
        else:
            status = f"stopped at epoch {epoch}"
        try:
            last: float | None = resolve_metric(metrics, sweep.objective.metric)
        except KeyError:
            last = None
        objective = metrics.get(OBJECTIVE_KEY, last)  # what Tune saw (the window's mean)
        objective = float(objective) if objective is not None else None
        if run is not None and objective is not None and math.isfinite(objective):
            client.log_metric(run.info.run_id, OBJECTIVE_KEY, objective, step=epoch)  # a column to sort by
        row_values = row_metrics(metrics, sweep.metrics)
        if sweep.objective.window > 1:
            row_values = {sweep.objective.metric: last, **row_values}
        if sweep.kind == "grid":
            params = {k: v for k, v in sweep.grid.get(variant, {}).items()}
            if variant in sweep.bases:
                params["_base_"] = Path(sweep.bases[variant]).name
        rows.append(TrialRow(variant=variant, params=params, objective=objective,
                             metrics=row_values, epochs=epoch, status=status,
                             run_id=run.info.run_id if run is not None else None, extra={"trial_id": trial_id}))  # fmt: skip
    if sweep.kind == "grid":
        order = {label: i for i, label in enumerate(sweep.grid)}
        rows.sort(key=lambda r: order.get(r.variant, len(order)))
    return rows, errors


def _trial_id_from_dir(result: Any, sweep: Any) -> str:
    """A trial's id from its folder name (see `ray_jobs.sweep._new_tuner`'s
    trial_dirname_creator), for trials that never
    reported (an error before the first epoch)."""
    folder = Path(result.path).name if result.path else "?"
    if sweep.kind == "grid":
        return folder.removeprefix(f"{(result.config or {}).get('entry')}_")
    return folder


def best_row(rows: list[Any], mode: str) -> Any:
    """The finished trial with the best finite objective, or None."""
    finished = [
        r for r in rows if r.status == "finished" and r.objective is not None and math.isfinite(r.objective)
    ]
    if not finished:
        return None
    return (max if mode == "max" else min)(finished, key=lambda r: r.objective)


def register_best(
    best: Any, reg_name: str, tracking_uri: str, sweep_name: str, parent_run_id: str, sweep: Any
) -> dict[str, Any]:
    """The best finished trial's model as alias `candidate` of `reg_name`, tagged with its sweep and parent run."""
    info = registry.promote(best.run_id, name=reg_name, alias="candidate", tracking_uri=tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    tags = {
        "v2s.sweep": sweep_name, "v2s.sweep.parent_run_id": parent_run_id, "v2s.sweep.variant": best.variant,
        "v2s.sweep.objective": f"{sweep.objective.label}={best.objective:.6g} ({sweep.objective.mode})",
    }  # fmt: skip
    for k, v in tags.items():
        client.set_model_version_tag(reg_name, info["version"], k, v)
    description = (f"Best trial ({best.variant}) of sweep {sweep_name} (parent run {parent_run_id}): "
                   f"{sweep.objective.label} = {best.objective:.6g}.")  # fmt: skip
    card = model_card.card_of_run(client, best.run_id)
    if card:  # what the trial trained on, below the sweep's line
        description += "\n\n" + model_card.to_markdown(card)
    client.update_model_version(reg_name, info["version"], description=description)
    print(f"[sweep] registered {info['model_uri']} (version {info['version']}) from run {best.run_id}")
    return info
