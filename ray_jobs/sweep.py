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
   (CPUs / (trial driver CPU + workers x CPUs per worker), at least 1) unless --max-concurrent is given
   (the planning and its early checks: `ray_jobs.sweep_plan`);
3. when trials run in parallel on a local MLflow store and no MLFLOW_TRACKING_URI names a server, starts a
   loopback MLflow server over the store (`ray_jobs.mlflow_server`), so concurrent trials lose no run or metric;
4. creates the parent MLflow run (experiment = the sweep's name; `ray_jobs.sweep_parent`), then runs a `Tuner`
   over `run_trial` (`ray_jobs.sweep_trial`) with `tune.with_resources(..., {"CPU": TRIAL_CPU})` for each trial's driver function
   (its Train workers take their CPUs from the config's `scaling`): a study samples with Optuna's TPE
   (`sweep_trial.study_searcher`: seeded, the declaration's SEARCH, no point of a finite space twice before
   every point was tried) and stops poor trials with ASHA on the per-epoch objective (`study_scheduler`);
   a grid runs every entry to completion (`tune.grid_search`, no scheduler);
5. closes the MLflow runs of trials that ASHA stopped (status KILLED, tag `v2s.sweep.stopped_early`), writes the
   comparison table (`comparison/comparison.{md,csv,png}` on the parent run), registers the best finished trial's
   model as alias `candidate` of REGISTER_AS (smoke runs: `<REGISTER_AS>-smoke`) with tags naming the sweep and
   its parent run (`ray_jobs.sweep_parent`), and stops the MLflow server.

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
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray_jobs.cluster import connect, is_uri, project_root, ray_storage
from ray_jobs.mlflow_server import MlflowServer
from ray_jobs.sweep_plan import check_data, check_fits, derive_concurrency, trial_resources, tune_space
from ray_jobs.train import parse_overrides
from v2s_models.tracking import default_artifact_root, default_tracking_uri, ensure_experiment, is_local_store

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

    from ray_jobs.sweep_parent import finish_parent, open_parent  # lazy: MLflow, Optuna and Ray
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

        parent = open_parent(sweep, run_id=state.get("parent_run_id"), tracking_uri=tracking_uri, name=name,
                             concurrency=concurrency, epochs=epochs)  # fmt: skip
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

        rows, errors, outcome.best, outcome.registered = finish_parent(
            sweep, results, parent, client, experiment_id=experiment_id, name=name, tracking_uri=tracking_uri,
            register_as=register_as, register=register,
        )  # fmt: skip
        outcome.rows, outcome.errors = rows, errors
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
