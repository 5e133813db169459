"""Run a sweep (Optuna + ASHA) or an ablation grid on Ray Tune, each trial a Ray Train run, recorded in MLflow.

    python -m ray_jobs.sweep STUDY [--name NAME] [--num-samples N] [--max-concurrent N] [--set KEY=VALUE ...]
                             [--smoke-test] [--root PATH] [--address ADDR] [--mlflow-server auto|always|never]
                             [--register-as NAME | --no-register] [--check]
    RAY_AUTH_MODE=token .venv/bin/ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python -m ray_jobs.sweep experiments/sweeps/regnet_bottleneck.py
    (the venv's `ray`: a bare `ray` is on PATH only while the venv is active; the token: docs/tracking.md)

STUDY is a declaration (`experiments/sweeps/<study>.py` or `experiments/sweeps/ablations/<grid>.py`, or its bare
name; the format: `ray_jobs/studies.py`). The driver (this process):

1. loads and checks the declaration (every grid entry's config, every choice and bound of the space, built
   before Ray starts: a bad key or value fails here, naming it);
2. attaches to the Ray cluster (or starts a local instance) and derives the trial concurrency from its CPUs
   (CPUs / (trial driver CPU + workers x CPUs per worker), at least 1) unless --max-concurrent is given;
3. when trials run in parallel on a local MLflow store and no MLFLOW_TRACKING_URI names a server, starts a
   loopback MLflow server over the store (`ray_jobs.mlflow_server`), so concurrent trials lose no run or metric;
4. creates the parent MLflow run (experiment = the sweep's name), then runs a `Tuner` over `run_trial`
   (`ray_jobs.sweep_trial`) with `tune.with_resources(..., {"CPU": TRIAL_CPU})` for each trial's driver function
   (its Train workers take their CPUs from the config's `scaling`): a study samples with Optuna's TPE
   (`sweep_trial.study_searcher`: seeded, the declaration's SEARCH, no point of a finite space twice before
   every point was tried) and stops poor trials with ASHA on the per-epoch objective (`study_scheduler`);
   a grid runs every entry to completion (`tune.grid_search`, no scheduler);
5. closes the MLflow runs of trials that ASHA stopped (status KILLED, tag `v2s.sweep.stopped_early`), writes the
   comparison table (`comparison/comparison.{md,csv,png}` on the parent run), registers the best finished trial's
   model as alias `candidate` of REGISTER_AS (smoke runs: `<REGISTER_AS>-smoke`) with tags naming the sweep and
   its parent run, and stops the MLflow server.

Storage: the Tune experiment (its state, the searcher's, every trial's Ray Train checkpoints under `train/`) lives
in `<storage>/sweeps/<name>/`, `<storage>` being `$V2S_RAY_STORAGE` (an `s3://bucket/prefix` every node reaches,
the endpoint and credentials from the environment as for training; or a folder) or else `<root>/ray_results`.
This machine keeps `v2s_sweep.json` (the parent run id, the declaration's fingerprint, the status) in
`<root>/ray_results/sweeps/<name>/` (the storage folder when it is one).

Resuming: Submitting the same name again restores it (`Tuner.restore`):
finished trials are not run again, unfinished and failed ones continue, each from its Ray Train checkpoint and
into its own MLflow run. A finished sweep is not run again (the command prints its result); the same name with
another declaration is refused.

Exit status: 0 done, 2 bad declaration or arguments (nothing started), 1 a trial or the sweep failed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray_jobs.cluster import connect, is_uri, project_root, ray_storage
from ray_jobs.mlflow_server import MlflowServer
from ray_jobs.train import parse_overrides
from v2s_models import model_card
from v2s_models.tracking import (
    MLflowTracker,
    default_artifact_root,
    default_tracking_uri,
    ensure_experiment,
    git_commit,
    is_local_store,
)

STATE_FILE = "v2s_sweep.json"
TRAIN_DIR = "train"  # <sweep dir>/train/<run name>/: the trials' Ray Train runs
SERVER_MODES = ("auto", "always", "never")
TRIAL_RETRIES = (
    2  # Tune restarts of a trial that died (a lost node), on top of Ray Train's own worker restarts
)


@dataclass
class SweepOutcome:
    name: str
    sweep_dir: Path
    parent_run_id: str | None
    tracking_uri: str
    rows: list[Any] = field(default_factory=list)
    best: dict[str, Any] | None = None
    registered: dict[str, Any] | None = None
    errors: int = 0
    already_finished: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def _read_state(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _write_state(path: Path, state: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(dict(state), indent=2, sort_keys=True))
    tmp.replace(path)


# ------------------------------------------------------------------------------------------------- planning
def tune_space(space: Mapping[str, Mapping[str, list[Any]]]) -> dict[str, Any]:
    """The declaration's distributions as Ray Tune domains (Optuna's sampler reads them through OptunaSearch)."""
    from ray import tune

    out = {}
    for key, dist in space.items():
        ((name, args),) = dist.items()
        if name == "choice":
            out[key] = tune.choice(list(args))
        elif name == "loguniform":
            out[key] = tune.loguniform(float(args[0]), float(args[1]))
        elif name == "uniform":
            out[key] = tune.uniform(float(args[0]), float(args[1]))
        else:  # randint, both bounds included
            out[key] = tune.randint(int(args[0]), int(args[1]) + 1)
    return out


def trial_resources(sweep: Any) -> tuple[float, float, int]:
    """(CPUs, GPUs, epochs) of one trial: its driver's reservation plus its Train workers (the largest over the
    grid's entries, or the space's extremes)."""
    from ray_jobs.studies import space_points, trial_config  # lazy: torch

    if sweep.kind == "grid":
        configs = [trial_config(sweep, label=label) for label in sweep.grid]
    else:
        configs = [trial_config(sweep, p) for p in space_points(sweep.space)]
    cpus = gpus = 0.0
    for cfg in configs:
        scaling = cfg.get("scaling") or {}
        workers = int(scaling.get("num_workers", 1))
        cpus = max(cpus, sweep.trial_cpu + workers * float(scaling.get("cpus_per_worker", 1)))
        gpus = max(gpus, workers * (1.0 if scaling.get("use_gpu") else 0.0))
    return cpus, gpus, max(int(c["epochs"]) for c in configs)


def derive_concurrency(cluster: Mapping[str, float], cpus: float, gpus: float) -> int:
    """How many trials fit on the cluster at once: CPUs / CPUs per trial (and GPUs alike), at least 1."""
    n = math.floor(float(cluster.get("CPU", 0.0)) / cpus + 1e-6) if cpus > 0 else 1
    if gpus > 0:
        n = min(n, math.floor(float(cluster.get("GPU", 0.0)) / gpus + 1e-6))
    return max(1, n)


def check_fits(cluster: Mapping[str, float], cpus: float, gpus: float, trial_cpu: float) -> None:
    """A ValueError, before any trial starts, when one trial needs more CPUs or GPUs than the whole cluster has
    (Tune would otherwise leave it pending for ever)."""
    have_cpu, have_gpu = float(cluster.get("CPU", 0.0)), float(cluster.get("GPU", 0.0))
    if cpus > have_cpu + 1e-6:
        raise ValueError(
            f"a trial needs {cpus:g} CPUs ({trial_cpu:g} for its driver + num_workers x scaling.cpus_per_worker) "
            f"but the Ray cluster has {have_cpu:g}: lower them (e.g. --set scaling.cpus_per_worker="
            f"{max(0.1, have_cpu - trial_cpu):g}) or add machines"
        )
    if gpus > have_gpu + 1e-6:
        raise ValueError(
            f"a trial needs {gpus:g} GPUs (scaling.use_gpu with num_workers workers) but the Ray cluster has "
            f"{have_gpu:g}: --set scaling.use_gpu=false, or a cluster with GPUs"
        )


def check_data(sweep: Any, root: Path) -> None:
    """Every trial's `data.manifest` exists under `root`, before Ray starts: a grid entry that trains on a subset
    nobody wrote (the correlation-filtered subsets) fails here, naming the entry and the file."""
    from ray_jobs.studies import space_points, trial_config  # lazy: torch

    configs = {f"GRID.{label}": trial_config(sweep, label=label) for label in sweep.grid}
    if sweep.kind == "study":
        configs["BASE"] = trial_config(sweep, space_points(sweep.space)[0])
    for where, cfg in configs.items():
        manifest = Path((cfg.get("data") or {}).get("manifest") or "data/prepared/manifest.jsonl")
        path = manifest if manifest.is_absolute() else root / manifest
        if not path.is_file():
            hint = (
                " (the correlation-filtered subsets: `dvc repro filter` writes them)"
                if "filtered" in manifest.parts
                else " (run `dvc repro` to prepare the data)"
            )
            raise FileNotFoundError(f"{sweep.path}: {where}: data.manifest {path} does not exist{hint}")


# --------------------------------------------------------------------------------------------------- driver
def run_sweep(
    sweep: Any,
    *,
    root: Path,
    name: str | None = None,
    max_concurrent: int | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    mlflow_server: str = "auto",
    register_as: str | None = None,
    register: bool = True,
) -> SweepOutcome:
    """Runs (or resumes) `sweep` (a loaded `ray_jobs.studies.Sweep`); see the module docstring."""
    from mlflow import MlflowClient

    t0 = time.perf_counter()
    name = name or sweep.name
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid sweep name {name!r} (a folder name: no '/', not hidden)")
    root = Path(root).resolve()
    check_data(sweep, root)
    base = ray_storage(None, root)  # $V2S_RAY_STORAGE (a folder or an s3:// URI), else <root>/ray_results
    remote = is_uri(base)
    storage = (root / "ray_results" if remote else Path(base)) / "sweeps"
    sweep_dir = storage / name  # this machine's folder: the state file, the MLflow server's log
    # Tune's experiment and the trials' Ray Train runs
    tune_storage = f"{base}/sweeps" if remote else str(storage)
    tune_path = f"{tune_storage}/{name}"
    state_path = sweep_dir / STATE_FILE
    state = _read_state(state_path)
    fingerprint = sweep.fingerprint()
    if state and state.get("fingerprint") != fingerprint:
        raise ValueError(
            f"sweep {name!r} in {storage} was started from another declaration or settings (fingerprint "
            f"{state.get('fingerprint')} vs {fingerprint}): re-submit the same one to resume it, or choose --name"
        )
    store_uri = default_tracking_uri(root)
    if state.get("status") == "FINISHED":
        print(
            f"[sweep] {name!r} already finished (parent MLflow run {state.get('parent_run_id')}); nothing to run"
        )
        return SweepOutcome(
            name=name, sweep_dir=sweep_dir, parent_run_id=state.get("parent_run_id"), tracking_uri=store_uri,
            best=state.get("best"), registered=state.get("registered"), already_finished=True,
        )  # fmt: skip

    import ray
    from ray import tune

    from ray_jobs.studies import describe, varying_keys  # lazy: torch
    from ray_jobs.sweep_trial import run_trial  # lazy: Optuna and Ray and torch

    cpus, gpus, epochs = trial_resources(sweep)
    print(f"[sweep] {connect(address=address, num_cpus=num_cpus)}")
    cluster = ray.cluster_resources()
    check_fits(cluster, cpus, gpus, sweep.trial_cpu)
    concurrency = max_concurrent or derive_concurrency(cluster, cpus, gpus)
    if sweep.kind == "grid":
        concurrency = min(concurrency, len(sweep.grid))
    print(f"[sweep] {name}: {sweep.kind}, up to {concurrency} trial(s) at once ({cpus:g} CPUs per trial, "
          f"cluster {cluster.get('CPU', 0):g} CPUs)")  # fmt: skip

    # The experiment is created by this process alone, on the store itself (SQLite races on creation), with
    # its artifacts under <root>/mlartifacts/<name>/ even when a server is started below.
    experiment_id = ensure_experiment(name, tracking_uri=store_uri, artifact_root=default_artifact_root(root))
    use_server = mlflow_server == "always" or (
        mlflow_server == "auto" and concurrency > 1 and is_local_store(store_uri)
    )
    if use_server and not is_local_store(store_uri):
        raise ValueError(f"--mlflow-server always needs a local store; MLFLOW_TRACKING_URI is {store_uri}")
    if is_local_store(store_uri) and len([n for n in ray.nodes() if n.get("Alive")]) > 1:
        print("[sweep] warning: a multi-node cluster with a local MLflow store: trials on other nodes cannot reach "
              "it; set MLFLOW_TRACKING_URI to a server every node reaches (docs/sweeps.md)")  # fmt: skip
    server = None
    outcome = SweepOutcome(name=name, sweep_dir=sweep_dir, parent_run_id=None, tracking_uri=store_uri)
    try:
        tracking_uri = store_uri
        if use_server:
            sweep_dir.mkdir(parents=True, exist_ok=True)
            server = MlflowServer(
                store_uri=store_uri, artifact_root=default_artifact_root(root),
                port=state.get("server_port"), log_file=sweep_dir / "mlflow-server.log",
            )  # fmt: skip
            tracking_uri = server.start()
            # no MLflow "View run at <url>" lines naming this server: it stops with the sweep
            os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
            print(f"[sweep] MLflow server for the trials: {tracking_uri} (store {store_uri}; it stops with the "
                  "sweep: browse the runs afterwards with the command printed at the end)")  # fmt: skip
        outcome.tracking_uri = tracking_uri
        client = MlflowClient(tracking_uri=tracking_uri)

        parent = None
        if state.get("parent_run_id"):
            parent = MLflowTracker(tracking_uri=tracking_uri, run_id=state["parent_run_id"])
            try:
                parent.reopen()
            except Exception as e:  # noqa: BLE001 (deleted from the store: start a new parent)
                print(
                    f"[sweep] cannot reopen the parent run {state['parent_run_id']} ({e}); starting a new one"
                )
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
            parent.log_params(_sweep_params(sweep, concurrency, epochs))
            parent.log_artifact(sweep.path, artifact_path="declaration")
        outcome.parent_run_id = parent.run_id
        state.update({
            "name": name, "fingerprint": fingerprint, "parent_run_id": parent.run_id, "tracking_uri": tracking_uri,
            "store_uri": store_uri, "experiment": name, "status": "RUNNING", "declaration": str(sweep.path),
            **({"server_port": server.port} if server else {}),
        })  # fmt: skip
        _write_state(state_path, state)

        plan = {
            "sweep": sweep, "name": name, "root": str(root), "train_storage": f"{tune_path}/{TRAIN_DIR}",
            "state_dir": str(sweep_dir / TRAIN_DIR),
            "tracking_uri": tracking_uri, "experiment": name, "parent_run_id": parent.run_id,
            "temporary_server": server is not None,  # its links die with the sweep: trials print none
        }  # fmt: skip
        trainable = tune.with_resources(tune.with_parameters(run_trial, plan=plan), {"CPU": sweep.trial_cpu})
        t_fit = time.perf_counter()
        # Tune's default loggers include TensorBoard's (and its hint); _new_tuner adds the JSON and CSV ones back
        os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"  # read by Tuner.fit in this process
        if tune.Tuner.can_restore(tune_path):
            print(f"[sweep] restoring {tune_path} (finished trials are kept)")
            tuner = tune.Tuner.restore(tune_path, trainable, resume_unfinished=True, resume_errored=True)
        else:
            tuner = _new_tuner(sweep, trainable, name=name, storage=tune_storage, epochs=epochs,
                               concurrency=concurrency, state_path=state_path)  # fmt: skip
        results = tuner.fit()
        t_done = time.perf_counter()

        rows, errors = _collect(sweep, results, client, experiment_id, parent.run_id)
        outcome.rows, outcome.errors = rows, errors
        best = _best(rows, sweep.objective.mode)
        with tempfile.TemporaryDirectory(prefix="v2s-sweep-table-") as tmp:
            from ray_jobs.sweep_report import write_table  # lazy: torch

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
            outcome.best = {"variant": best.variant, "run_id": best.run_id, "objective": best.objective}
            parent.log_metrics({"best/objective": float(best.objective)}, step=0)
            parent.set_tags(
                {"v2s.sweep.best_run_id": best.run_id or "", "v2s.sweep.best_variant": best.variant}
            )
            reg_name = register_as or sweep.register_as
            if sweep.smoke and not register_as and register:  # a debug network never enters the registry
                print(
                    "[sweep] smoke test: the best trial is not registered (--register-as NAME to register it)"
                )
            elif register and reg_name and best.run_id:
                outcome.registered = _register(best, reg_name, tracking_uri, name, parent.run_id, sweep)
                parent.set_tags({"v2s.sweep.registered_model": outcome.registered["model_uri"]})
        parent.end("FINISHED" if errors == 0 else "FAILED")
        state.update({"status": "FINISHED" if errors == 0 else "INCOMPLETE", "best": outcome.best,
                      "registered": outcome.registered})  # fmt: skip
        _write_state(state_path, state)
        outcome.timings = {
            "setup_s": t_fit - t0,
            "tune_s": t_done - t_fit,
            "finish_s": time.perf_counter() - t_done,
        }
        return outcome
    finally:
        if server is not None:
            server.stop()
            print(f"[sweep] the trials' MLflow server is stopped; browse the runs with: {Path(sys.executable).parent}"
                  f"/v2s ui --root {root}   (then http://127.0.0.1:5000)")  # fmt: skip


def table_metrics(sweep: Any) -> list[str]:
    """The comparison table's metric columns: the declared METRICS, after the objective's last value when the
    objective is a window's mean."""
    return ([sweep.objective.metric] if sweep.objective.window > 1 else []) + list(sweep.metrics)


def _sweep_params(sweep: Any, concurrency: int, epochs: int) -> dict[str, Any]:
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


def _new_tuner(
    sweep: Any, trainable: Any, *, name: str, storage: str, epochs: int, concurrency: int, state_path: Path
) -> Any:
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from ray_jobs.sweep_trial import (  # lazy: Optuna and Ray and torch
        OBJECTIVE_KEY,
        CloseTrialRuns,
        study_scheduler,
        study_searcher,
    )

    if sweep.kind == "study":
        param_space = tune_space(sweep.space)
        tune_config = tune.TuneConfig(
            metric=OBJECTIVE_KEY, mode=sweep.objective.mode, num_samples=sweep.num_samples,
            search_alg=study_searcher(sweep),
            scheduler=study_scheduler(sweep, epochs),
            max_concurrent_trials=concurrency, reuse_actors=False,
            trial_dirname_creator=lambda t: t.trial_id,
        )  # fmt: skip
    else:
        param_space = {"entry": tune.grid_search(list(sweep.grid))}
        tune_config = tune.TuneConfig(
            metric=OBJECTIVE_KEY, mode=sweep.objective.mode, num_samples=1, max_concurrent_trials=concurrency,
            reuse_actors=False, trial_name_creator=lambda t: str(t.config["entry"]),
            trial_dirname_creator=lambda t: f"{t.config['entry']}_{t.trial_id}",
        )  # fmt: skip
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune_config,
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            verbose=1,
            # result.json / progress.csv as before, without Tune's TensorBoard logger and its hint (v2s uses MLflow)
            callbacks=[CloseTrialRuns(str(state_path)), JsonLoggerCallback(), CSVLoggerCallback()],
            # a trial whose driver died with its node runs again elsewhere: its Ray Train run resumes by name
            # from the last checkpoint and logs into the same MLflow child run (tests/test_multinode.py)
            failure_config=tune.FailureConfig(max_failures=TRIAL_RETRIES),
        ),  # fmt: skip
    )


def _collect(
    sweep: Any, results: Any, client: Any, experiment_id: str, parent_run_id: str
) -> tuple[list[Any], int]:
    """Table rows of every trial; closes child runs still RUNNING (a trial that never reported its end)."""
    from ray_jobs.studies import resolve_metric  # lazy: torch
    from ray_jobs.sweep_report import TrialRow, row_metrics  # lazy: torch
    from ray_jobs.sweep_trial import (  # lazy: Optuna and Ray and torch
        OBJECTIVE_KEY,
        TRIAL_TAG,
        find_child_runs,
        trial_variant,
    )

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
    """A trial's id from its folder name (see `_new_tuner`'s trial_dirname_creator), for trials that never
    reported (an error before the first epoch)."""
    folder = Path(result.path).name if result.path else "?"
    if sweep.kind == "grid":
        return folder.removeprefix(f"{(result.config or {}).get('entry')}_")
    return folder


def _best(rows: list[Any], mode: str) -> Any:
    finished = [
        r for r in rows if r.status == "finished" and r.objective is not None and math.isfinite(r.objective)
    ]
    if not finished:
        return None
    return (max if mode == "max" else min)(finished, key=lambda r: r.objective)


def _register(
    best: Any, reg_name: str, tracking_uri: str, sweep_name: str, parent_run_id: str, sweep: Any
) -> dict[str, Any]:
    """The best finished trial's model as alias `candidate` of `reg_name`, tagged with its sweep and parent run."""
    from mlflow import MlflowClient

    from v2s_models import registry  # lazy: torch

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


# ------------------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m ray_jobs.sweep",
        description="Run a sweep (Optuna + ASHA) or an ablation grid on Ray Tune; each trial a Ray Train run, "
        "recorded in MLflow (a parent run, a child run per trial).",
    )
    ap.add_argument("study", help="declaration: experiments/sweeps/<study>.py, experiments/sweeps/ablations/<grid>.py "
                    "or its bare name")  # fmt: skip
    ap.add_argument(
        "--name", default=None, help="stable sweep name (default: the study's, '-smoke' added); resumes it"
    )
    ap.add_argument("--num-samples", type=int, default=None, help="trials of a study (default: NUM_SAMPLES)")
    ap.add_argument("--max-concurrent", type=int, default=None,
                    help="trials at once (default: cluster CPUs / CPUs per trial, at least 1)")  # fmt: skip
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="dotted override of every trial's config, repeatable (after SET / SMOKE.set)")  # fmt: skip
    ap.add_argument("--smoke-test", action="store_true",
                    help="the declaration's SMOKE variant: debug configs, few trials and steps, name '<study>-smoke'")  # fmt: skip
    ap.add_argument("--root", type=Path, default=None,
                    help="project folder with data/ (default: $V2S_PROJECT_ROOT or .)")  # fmt: skip
    ap.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (default: RAY_ADDRESS, a running cluster, or local)",
    )
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of a new local Ray instance")
    ap.add_argument("--mlflow-server", choices=SERVER_MODES, default="auto",
                    help="start a loopback MLflow server over the local store: auto = when trials run in parallel "
                    "and MLFLOW_TRACKING_URI names no server")  # fmt: skip
    ap.add_argument(
        "--register-as", default=None, help="registered model name of the best trial (default: REGISTER_AS)"
    )
    ap.add_argument("--no-register", action="store_true", help="do not register the best trial's model")
    ap.add_argument(
        "--check", action="store_true", help="load and check the declaration, print the plan, start nothing"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    from ray_jobs.studies import StudyError, describe, load_sweep  # lazy: torch
    from v2s_models.config import ConfigError  # lazy: torch

    args = build_parser().parse_args(argv)
    try:
        sweep = load_sweep(args.study, smoke=args.smoke_test)
        if args.overrides:
            from ray_jobs.studies import check  # lazy: torch

            sweep.fixed.update(parse_overrides(args.overrides))
            check(sweep)
        if args.num_samples is not None:
            if sweep.kind == "grid" or args.num_samples < 1:
                raise ValueError(
                    f"--num-samples {args.num_samples}: a study's trial count (>= 1); a grid runs each entry once"
                )
            sweep.num_samples = args.num_samples
        if args.max_concurrent is not None and args.max_concurrent < 1:
            raise ValueError(f"--max-concurrent {args.max_concurrent}: must be >= 1")
        root = project_root(args.root)
    except (StudyError, ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(describe(sweep))
    print(f"[sweep] python: {sys.executable} (working directory {Path.cwd()}, project {root})")
    if args.check:
        return 0
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        outcome = run_sweep(
            sweep, root=root, name=args.name, max_concurrent=args.max_concurrent, address=args.address,
            num_cpus=args.num_cpus, mlflow_server=args.mlflow_server, register_as=args.register_as,
            register=not args.no_register,
        )  # fmt: skip
    except (StudyError, ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 (Tune and Ray errors: say so, exit non-zero)
        print(f"error: sweep failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps({
        "name": outcome.name, "sweep_dir": str(outcome.sweep_dir), "parent_run_id": outcome.parent_run_id,
        "trials": len(outcome.rows), "errors": outcome.errors, "best": outcome.best,
        "registered": outcome.registered and outcome.registered.get("model_uri"),
        "already_finished": outcome.already_finished, "timings": outcome.timings,
    }, default=str))  # fmt: skip
    return 1 if outcome.errors else 0


if __name__ == "__main__":
    sys.exit(main())
