"""Train any experiment config on Ray Train, tracked in MLflow, checkpointed every epoch, resumable.

    python -m ray_jobs.train CONFIG [--set key=value ...] [--run-name NAME] [--storage PATH] [--smoke-test]
    RAY_AUTH_MODE=token .venv/bin/ray job submit --address http://127.0.0.1:8265 --working-dir . -- \
        python -m ray_jobs.train experiments/configs/regnet/demo.yaml
    (the venv's `ray`: a bare `ray` is on PATH only while the venv is active; the token: docs/tracking.md)

The driver (this process) loads and validates the config, reads the data settings and the data fingerprint,
creates the MLflow run (rank 0 logs into it), attaches to a running Ray cluster or starts a local one, and
runs a `TorchTrainer` whose only code on the workers is `ray_jobs.worker.train_fn_per_worker`. At the end
it turns the last checkpoint into a model package (`<storage>/<run name>/package/`) and logs it as an MLflow model of the run.
It never registers the model: `v2s promote` does, explicitly.

Run names are stable (the config's `name`, or --run-name; never a timestamp): Ray Train V2 resumes a run from
`<storage>/<run name>/` when the same name and storage are used again, and `v2s_run.json` there keeps the MLflow
run id so a resumed job logs into the SAME MLflow run.

Storage: `--storage`, else `$V2S_RAY_STORAGE`, else `<root>/ray_results`. A URI (`s3://bucket/prefix`) puts Ray
Train's checkpoints and run state in an object store every node reaches; the endpoint and credentials come only
from the environment of every Ray process (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and `AWS_ENDPOINT_URL`
for MinIO or another S3 service), so the same command runs against AWS S3, MinIO or a local test server. The
driver keeps `v2s_run.json` and the final package in `<root>/ray_results/<run name>/` on its own machine. A killed worker is replaced within the job
(`FailureConfig(max_failures)`), and training continues from the last checkpoint.

Batch size is global: with N workers each takes ceil(batch_size / N) clips per step (DistributedSampler shards),
so the optimisation does not change with the number of workers. Reported losses are means over workers.
Every rank uses the same seed (the sampler, not the RNG, separates their data), so rank 0's RNG state in the
checkpoint restores every rank exactly when the ranks drew the same random numbers.

`batch_hooks` (of `run_training`) wrap each epoch's batches on every worker: `hook(batches, rank=R, epoch=E)`
returns what the epoch iterates (E 1-based). A hook travels to the workers by pickling, so it is an object of an
importable module (the tests' fault injector, `tests/faults.py`, makes a rank crash at a chosen step with it).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ray_jobs.cluster import connect, is_uri, latest_remote_epoch, project_root, ray_storage
from v2s_models import model_card
from v2s_models.lineage import describe_lineage
from v2s_models.params import DEFAULT_PARAMS, load_params, project_data_settings
from v2s_models.tracking import (
    MLflowTracker,
    NullTracker,
    default_artifact_root,
    default_tracking_uri,
    git_commit,
)

RUN_STATE_FILE = "v2s_run.json"
PACKAGE_DIR = "package"
DEFAULT_MAX_FAILURES = 3
DEFAULT_KEEP_CHECKPOINTS = 2
DEFAULT_SAMPLE_TIMES = 3  # samples logged about this many times a run when train.artifacts_every is unset


# ------------------------------------------------------------------------------------------------ driver
@dataclass
class TrainingOutcome:
    """What a finished (or already finished) training left behind."""

    run_name: str
    run_dir: Path
    epochs: int
    metrics: dict[str, float]
    checkpoint: Path | None
    package: Path | None
    mlflow_run_id: str | None = None
    model_uri: str | None = None
    resumed_from_epoch: int = 0
    already_finished: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """["losses.mel=100", "scaling.num_workers=2"] -> {"losses.mel": 100, ...} (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected key=value (a dotted key, e.g. losses.mel=100)")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def smoke_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config of a `--smoke-test`: one epoch (two steps per epoch are set by the caller)."""
    out = dict(cfg)
    out["epochs"] = 1
    return out


def data_metadata(cfg: Mapping[str, Any], root: Path) -> tuple[Any, dict[str, Any], str]:
    """(DataSettings, feature settings, data fingerprint) of the data a config trains on.

    Data settings and feature settings come from the project's params.yaml (the one the pipeline ran with),
    falling back to the built-in defaults; the fingerprint hashes every clip's feature cache key.
    """
    from v2s_models.data import dataset_fingerprint, feature_dir, read_manifest  # lazy: torch

    params_path = root / "params.yaml"
    params = load_params(params_path) if params_path.is_file() else None
    data = cfg["data"]
    preset = str(data.get("preset", "regnet"))
    # as the solvers: params.yaml, else the built-ins
    settings = project_data_settings(preset, root, params=params)
    feats = (params or DEFAULT_PARAMS).get("features", {}) or {}
    features: dict[str, Any] = {
        "preset": preset,
        "visual_part": data.get("visual_part", "all"),
        **{
            k: feats.get(k)
            for k in ("extractor", "extractor_weights", "image_size", "flow", "flow_bound")
            if k in feats
        },
    }
    rows = read_manifest(data["manifest"], root=root)
    meta = feature_dir(rows[0], preset, root) / "meta.json"
    if meta.is_file():
        shapes = json.loads(meta.read_text()).get("shapes", {})
        if "visual" in shapes:
            features["visual_shape"] = list(shapes["visual"])
    return settings, features, dataset_fingerprint(rows, [preset], root)


def _default_experiment(cfg: Mapping[str, Any], config_path: Path | None) -> str:
    tracking = cfg.get("tracking") or {}
    if tracking.get("experiment"):
        return str(tracking["experiment"])
    if config_path is not None and config_path.parent.name not in ("", "configs"):
        return config_path.parent.name  # experiments/configs/<model>/<variant>.yaml -> <model>
    return "v2s"


def _read_state(run_dir: Path) -> dict[str, Any]:
    f = run_dir / RUN_STATE_FILE
    return json.loads(f.read_text()) if f.is_file() else {}


def _write_state(run_dir: Path, state: Mapping[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (RUN_STATE_FILE + ".part")
    tmp.write_text(json.dumps(dict(state), indent=2, sort_keys=True))
    tmp.replace(run_dir / RUN_STATE_FILE)


def _open_tracker(
    cfg: Mapping[str, Any],
    *,
    root: Path,
    run_name: str,
    run_dir: Path,
    state: dict[str, Any],
    tracking_uri: str,
    experiment: str,
    tags: Mapping[str, str],
) -> Any:
    """The run's MLflowTracker: the run recorded in `state` (a resumed job) or a new one."""
    from v2s_models.config import flatten  # lazy: torch

    if state.get("mlflow_run_id") and state.get("tracking_uri") == tracking_uri:
        tracker = MLflowTracker(tracking_uri=tracking_uri, run_id=state["mlflow_run_id"])
        try:
            tracker.reopen()
            return tracker
        except Exception as e:  # noqa: BLE001 (the run may have been deleted from the store)
            print(f"[train] cannot reopen MLflow run {state['mlflow_run_id']} ({e}); starting a new one")
    orphan = _orphaned_run(tracking_uri, experiment, tags)
    if orphan is not None:
        print(
            f"[train] adopting MLflow run {orphan} of {run_name!r}: an earlier attempt started it, then died"
        )
        tracker = MLflowTracker(tracking_uri=tracking_uri, run_id=orphan)
    else:
        tracker = MLflowTracker.create(
            tracking_uri=tracking_uri,
            experiment=experiment,
            run_name=run_name,
            artifact_root=default_artifact_root(root),
            tags=tags,
        )
    # an adopted run may have its params already: MLflow accepts the same values again
    tracker.log_params(flatten(cfg))
    with tempfile.TemporaryDirectory(prefix="v2s-config-") as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(dict(cfg), sort_keys=False))
        tracker.log_artifact(path)
    state.update({"mlflow_run_id": tracker.run_id, "tracking_uri": tracking_uri, "experiment": experiment})
    _write_state(run_dir, state)
    return tracker


def _orphaned_run(tracking_uri: str, experiment: str, tags: Mapping[str, str]) -> str | None:
    """The RUNNING MLflow run of this Ray run directory and config that no state file records, if any.

    An attempt that dies between creating its MLflow run and writing the state file (a lost node, a killed
    driver) leaves such a run behind; the next attempt takes it over instead of starting a second run (a sweep
    trial restarted on another node would otherwise appear twice under its parent)."""
    from mlflow import MlflowClient  # lazy: only a tracked run needs mlflow

    key, chash = str(tags.get("v2s.ray_run_dir", "")), str(tags.get("v2s.config_hash", ""))
    if not key or "'" in key + chash:  # nothing to match on, or a value the filter grammar cannot quote
        return None
    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    found = client.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.`v2s.ray_run_dir` = '{key}' and tags.`v2s.config_hash` = '{chash}'"
            " and attributes.status = 'RUNNING'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return found[0].info.run_id if found else None


def _log_card(tracker: Any, card: Mapping[str, Any], fingerprint: str, *, has_note: bool) -> None:
    """The run's training data as an MLflow dataset input, its model card as `v2s.card.*` tags and (unless
    the run already has a description) as the run's description."""
    data = card["training_data"]
    tracker.log_dataset(
        name=Path(str(data["manifest"])).parent.name or "manifest",
        digest=str(data["manifest_digest"]),
        source=str(data["manifest"]),
        profile={
            **{k: data[k] for k in ("clips", "categories", "sources", "synthetic")},
            "features": fingerprint,
        },
    )
    tags = model_card.to_tags(card)
    if not has_note:
        tags["mlflow.note.content"] = model_card.to_markdown(card)
    tracker.set_tags(tags)


def run_training(
    cfg: Mapping[str, Any],
    *,
    root: str | Path = ".",
    run_name: str | None = None,
    storage: str | Path | None = None,
    tracking: bool = True,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    config_path: str | Path | None = None,
    max_failures: int | None = None,
    max_steps_per_epoch: int | None = None,
    batch_hooks: Sequence[Callable[..., Iterable[Any]]] | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    extra_tags: Mapping[str, str] | None = None,
    callbacks: Sequence[Any] | None = None,
    end_run_on_error: bool = True,
    state_dir: str | Path | None = None,
) -> TrainingOutcome:
    """Trains `cfg` (validated) on Ray Train; resumes `<storage>/<run name>` if it exists. See the module doc.

    `callbacks`: Ray Train `UserCallback`s for the run (a sweep's trial passes one that forwards each epoch's
    report to Ray Tune). `batch_hooks`: see the module doc. `end_run_on_error`: when False, an exception out of
    the run leaves its MLflow run RUNNING for the caller to end: a sweep's driver, which knows from Tune whether
    the trial failed or was stopped on purpose (ray_jobs.sweep_trial.CloseTrialRuns). `state_dir`: where this
    machine keeps `v2s_run.json` and the package when `storage` is a URI (default `<root>/ray_results`; a sweep
    gives its own folder, so its trials' names never meet other runs').
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from v2s_models import finetune, registry  # lazy: torch
    from v2s_models.config import config_hash, validate  # lazy: torch
    from v2s_models.finetune import InitFrom  # lazy: torch
    from v2s_models.training import loop  # lazy: torch

    t_start = time.perf_counter()
    validate(cfg)
    root = Path(root).resolve()
    run_name = run_name or str(cfg["name"])
    if not run_name or "/" in run_name or run_name.startswith("."):
        raise ValueError(f"invalid run name {run_name!r} (a folder name: no '/', not hidden)")
    storage = ray_storage(storage, root)
    remote = is_uri(storage)
    # a remote store holds Ray's checkpoints; the driver's state file and the package stay on this machine
    local = Path(state_dir) if state_dir is not None else root / "ray_results"
    run_dir = (local if remote else Path(storage)) / run_name
    chash = config_hash(cfg)
    state = _read_state(run_dir)
    if state and state.get("config_hash") != chash:
        raise ValueError(
            f"run {run_name!r} in {storage} was started with another config (hash {state.get('config_hash')} "
            f"vs {chash}): resume it with the same config and --set values, or choose a new --run-name"
        )
    if state.get("status") == "FINISHED":
        print(
            f"[train] run {run_name!r} already finished; its model: {state.get('model_uri') or run_dir / PACKAGE_DIR}"
        )
        return TrainingOutcome(
            run_name=run_name,
            run_dir=run_dir,
            epochs=int(state.get("epochs", cfg["epochs"])),
            metrics=dict(state.get("metrics", {})),
            checkpoint=Path(state["checkpoint"]) if state.get("checkpoint") else None,
            package=run_dir / PACKAGE_DIR if (run_dir / PACKAGE_DIR).is_dir() else None,
            mlflow_run_id=state.get("mlflow_run_id"),
            model_uri=state.get("model_uri"),
            already_finished=True,
        )

    settings, features, fingerprint = data_metadata(cfg, root)
    init_spec = InitFrom.parse(cfg.get("init_from"))
    source = None
    if init_spec is not None:  # resolved once here; the workers receive the weights with their config
        source = finetune.source_weights(
            init_spec.model, tracking_uri=tracking_uri or default_tracking_uri(root)
        )
        print(f"[train] starting from {init_spec.model} (frozen: {', '.join(init_spec.freeze) or 'nothing'})")
    card = model_card.make_card(
        model=run_name,
        paradigm=str(cfg["paradigm"]),
        config=str(cfg["name"]),
        data=model_card.training_data(cfg["data"]["manifest"], root=root),
    )
    resumed_from = 0
    if remote:
        resumed_from = latest_remote_epoch(f"{storage}/{run_name}")
        if resumed_from:
            print(f"[train] resuming run {run_name!r} from {storage}/{run_name} (epoch {resumed_from})")
    else:
        try:
            previous = registry.latest_checkpoint(run_dir)
            resumed_from = int(loop.load_checkpoint(previous).get("epoch", 0))
            print(f"[train] resuming run {run_name!r} from {previous.name} (epoch {resumed_from})")
        except FileNotFoundError:
            pass
    state.update({"config_hash": chash, "run_name": run_name, "status": "RUNNING"})

    tracker: Any = NullTracker()
    uri = None
    if tracking:
        uri = tracking_uri or default_tracking_uri(root)
        commit = git_commit(root)
        tags = {
            "v2s.git_commit": commit,
            "v2s.config_hash": chash,
            "v2s.config_name": str(cfg["name"]),
            "v2s.paradigm": str(cfg["paradigm"]),
            "v2s.ray_run_dir": f"{storage}/{run_name}" if remote else str(run_dir),
            "data.fingerprint": fingerprint,
            **({"mlflow.source.git.commit": commit.removesuffix("-dirty")} if commit != "unknown" else {}),
            **dict(extra_tags or {}),
        }
        if source is not None and init_spec is not None:  # lineage: the run names the model it started from
            tags.update(source.tags)
            tags[f"{finetune.TAG_PREFIX}.freeze"] = ", ".join(init_spec.freeze)
            tags.update(dict(extra_tags or {}))
            lineage = describe_lineage(tags) or ""
            tags["mlflow.note.content"] = f"{lineage}\n\n{model_card.to_markdown(card)}"  # then the card
        tracker = _open_tracker(
            cfg,
            root=root,
            run_name=run_name,
            run_dir=run_dir,
            state=state,
            tracking_uri=uri,
            experiment=experiment or _default_experiment(cfg, Path(config_path) if config_path else None),
            tags=tags,
        )
        _log_card(tracker, card, fingerprint, has_note="mlflow.note.content" in tags)
    _write_state(run_dir, state)

    scaling = cfg.get("scaling") or {}
    num_workers = int(scaling.get("num_workers", 1))
    use_gpu = bool(scaling.get("use_gpu", False))
    cpus = float(scaling.get("cpus_per_worker", 1))
    train_opts = cfg.get("train") or {}
    print(f"[train] {connect(address=address, num_cpus=num_cpus)}")
    t_ready = time.perf_counter()

    loop_config = {
        "cfg": dict(cfg),
        "root": str(root),
        "run_name": run_name,
        "solvers": dict(
            loop.SOLVERS
        ),  # a solver registered in the driver (e.g. by a test) reaches the workers
        "data_settings": settings.to_dict(),
        "features": features,
        "tracking_uri": uri,
        "mlflow_run_id": tracker.run_id,
        "max_steps_per_epoch": max_steps_per_epoch or train_opts.get("max_steps_per_epoch"),
        # samples (mel images, audio, video) every `artifacts_every` epochs; unset: about 3 times a run
        "artifacts_every": int(
            train_opts["artifacts_every"]
            if train_opts.get("artifacts_every") is not None
            else math.ceil(int(cfg["epochs"]) / DEFAULT_SAMPLE_TIMES)
        ),
        "cpus_per_worker": cpus,
        "batch_hooks": list(batch_hooks or []),
        "init_weights": None if source is None else source.state,
    }
    from ray_jobs.worker import train_fn_per_worker  # lazy: loads torch; the driver stays light until here

    trainer = TorchTrainer(
        train_fn_per_worker,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus}
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=storage,
            failure_config=ray.train.FailureConfig(
                max_failures=int(
                    max_failures
                    if max_failures is not None
                    else train_opts.get("max_failures", DEFAULT_MAX_FAILURES)
                )
            ),
            checkpoint_config=ray.train.CheckpointConfig(
                num_to_keep=int(train_opts.get("keep_checkpoints", DEFAULT_KEEP_CHECKPOINTS))
            ),
            callbacks=list(callbacks or []),
        ),
    )
    monitor = tracker.system_metrics() if tracking else None  # system/* metrics while the run trains
    try:
        result = trainer.fit()
    except BaseException:
        state["status"] = "FAILED"
        _write_state(run_dir, state)
        if end_run_on_error:
            tracker.end("FAILED")
        raise
    finally:
        if monitor is not None:
            monitor.finish()
    t_fit = time.perf_counter()

    if result.checkpoint is None:
        raise RuntimeError(f"run {run_name!r} finished without a checkpoint")
    ckpt_path = Path(result.checkpoint.path)
    if remote:  # the last checkpoint, fetched from the object store, is what the package is made of
        ckpt_path = run_dir / "last_checkpoint"
        shutil.rmtree(ckpt_path, ignore_errors=True)
        result.checkpoint.to_directory(str(ckpt_path))
    package = registry.package_from_checkpoint(
        ckpt_path,
        run_dir / PACKAGE_DIR,
        extra={"run_name": run_name, "mlflow_run_id": tracker.run_id, model_card.CARD_KEY: card},
    )
    model_uri = None
    if tracking:
        model_uri = registry.log_model(package, tracking_uri=uri, run_id=tracker.run_id)
    metrics = {k: float(v) for k, v in (result.metrics or {}).items() if isinstance(v, int | float)}
    state.update(
        {
            "status": "FINISHED",
            "model_uri": model_uri,
            "checkpoint": str(ckpt_path),
            "epochs": int(cfg["epochs"]),
            "metrics": metrics,
        }
    )
    _write_state(run_dir, state)
    tracker.end("FINISHED")
    t_end = time.perf_counter()
    print(
        f"[train] done: {run_name} epochs={cfg['epochs']} package={package} mlflow_run={tracker.run_id} model={model_uri}"
    )
    return TrainingOutcome(
        run_name=run_name,
        run_dir=run_dir,
        epochs=int(cfg["epochs"]),
        metrics=metrics,
        checkpoint=ckpt_path,
        package=package,
        mlflow_run_id=tracker.run_id,
        model_uri=model_uri,
        resumed_from_epoch=resumed_from,
        timings={"setup_s": t_ready - t_start, "fit_s": t_fit - t_ready, "finish_s": t_end - t_fit},
    )


# -------------------------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m ray_jobs.train",
        description="Train an experiment config on Ray Train (MLflow-tracked).",
    )
    ap.add_argument("config", type=Path, help="experiment config, e.g. experiments/configs/regnet/demo.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="dotted override, repeatable (e.g. --set losses.mel=100 --set scaling.num_workers=2)")  # fmt: skip
    ap.add_argument(
        "--run-name", default=None, help="stable run name (default: the config's name); resumes it"
    )
    ap.add_argument(
        "--storage",
        default=None,
        help="Ray storage: a folder or s3://bucket/prefix (default: $V2S_RAY_STORAGE, else <root>/ray_results)",
    )
    ap.add_argument(
        "--root", type=Path, default=None, help="project folder with data/ (default: $V2S_PROJECT_ROOT or .)"
    )
    ap.add_argument(
        "--experiment",
        default=None,
        help="MLflow experiment (default: tracking.experiment or the model folder)",
    )
    ap.add_argument(
        "--max-failures", type=int, default=None, help="worker-group restarts allowed (default 3)"
    )
    ap.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    ap.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (default: RAY_ADDRESS, a running cluster, or local)",
    )
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs of a new local Ray instance")
    ap.add_argument("--smoke-test", action="store_true",
                    help="1 epoch of 2 steps as run '<name>-smoke' (started afresh every time)")  # fmt: skip
    return ap


def main(argv: list[str] | None = None) -> int:
    from v2s_models.config import ConfigError, load_config  # lazy: torch

    args = build_parser().parse_args(argv)
    try:
        root = project_root(args.root)
        config_path = (
            args.config if args.config.is_absolute() or args.config.is_file() else root / args.config
        )
        cfg = load_config(config_path, parse_overrides(args.overrides))
        run_name = args.run_name
        max_steps = None
        tags = {}
        if args.smoke_test:
            cfg = smoke_config(cfg)
            run_name = f"{run_name or cfg['name']}-smoke"
            max_steps = 2
            tags = {"v2s.smoke_test": "true"}
            storage = ray_storage(args.storage, root)
            if is_uri(storage):
                raise ValueError(f"--smoke-test runs on local storage only, not {storage}")
            shutil.rmtree(Path(storage) / run_name, ignore_errors=True)  # a smoke test never resumes
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        outcome = run_training(
            cfg,
            root=root,
            run_name=run_name,
            storage=args.storage,
            tracking=not args.no_tracking,
            experiment=args.experiment,
            config_path=config_path,
            max_failures=args.max_failures,
            max_steps_per_epoch=max_steps,
            address=args.address,
            num_cpus=args.num_cpus,
            extra_tags=tags,
        )
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001 (Ray's TrainingFailedError and friends: say so, exit non-zero)
        print(f"error: training failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"run_name": outcome.run_name, "run_dir": str(outcome.run_dir), "mlflow_run_id": outcome.mlflow_run_id,
                      "model_uri": outcome.model_uri, "package": str(outcome.package), "metrics": outcome.metrics}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
