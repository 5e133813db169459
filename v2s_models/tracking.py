"""Experiment tracking behind a small interface: a `Tracker` protocol, a no-op `NullTracker`, an `MLflowTracker`.

Only rank 0 of a training logs; the training loop sees a `Tracker` and never MLflow itself. mlflow is imported
lazily (inside the functions that need it), so importing this module costs nothing.

Store layout (local default, both paths git-ignored):
    sqlite:///<project>/mlflow.db          runs, params, metrics, tags, registry
    <project>/mlartifacts/<experiment>/    run artifacts and logged models (`models/m-<id>/`)
`MLFLOW_TRACKING_URI` (e.g. `http://127.0.0.1:5000`, a shared server) overrides the database; experiments
created through a server get the server's artifact root.

One training = one MLflow run. The driver creates the experiment and the run (SQLite does not like several
processes racing to create the same experiment), logs params and tags, and hands the run id to rank 0, which
logs per-epoch metrics and artifacts into the same run; a resumed job reopens the same run.

Experiments are created as model-training experiments (tag `mlflow.experimentKind=custom_model_development`,
so MLflow 3's UI opens on their runs, not on GenAI traces) with a description (`mlflow.note.content`). A run
records its training data with `log_dataset` (MLflow's dataset inputs: the manifest's digest and split sizes)
and, with `system_metrics`, samples CPU, memory, disk and network use every `SYSTEM_METRICS_INTERVAL_S`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
_BATCH = 100  # MLflow's limit on params (and, conservatively, metrics) per log_batch call
GIT_COMMIT_ENV = "V2S_GIT_COMMIT"  # the commit a Ray job was submitted from (its upload has no .git)
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"  # MLflow 3.17's kind for classic model training
DESCRIPTION_TAG = "mlflow.note.content"  # the description the UI shows (runs, experiments)
SYSTEM_METRICS_INTERVAL_S = 10.0  # psutil sampling in a thread: well under 0.1 % of a core at this rate
DEFAULT_DESCRIPTION = (
    "v2s model training: one run per training (params = the flattened config, metrics per epoch, "
    "samples under epoch_<n>/, the model package as a logged model). Compare runs on val/* metrics."
)


@runtime_checkable
class Tracker(Protocol):
    """What a training loop may ask of experiment tracking."""

    run_id: str | None

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None: ...

    def set_tags(self, tags: Mapping[str, str]) -> None: ...

    def log_artifact(self, path: Path, *, artifact_path: str | None = None) -> None: ...

    def log_image(self, path: Path, *, key: str, step: int) -> None: ...

    def end(self, status: str = "FINISHED") -> None: ...


class NullTracker:
    """Tracks nothing (ranks other than 0, tests, `--no-tracking`)."""

    run_id: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        pass

    def set_tags(self, tags: Mapping[str, str]) -> None:
        pass

    def log_artifact(self, path: Path, *, artifact_path: str | None = None) -> None:
        pass

    def log_image(self, path: Path, *, key: str, step: int) -> None:
        pass

    def end(self, status: str = "FINISHED") -> None:
        pass


class MLflowTracker:
    """Logs into one existing MLflow run through `MlflowClient` (no global active run, so it is safe to use
    beside other code that uses mlflow's fluent API).

    Build one with `MLflowTracker.create(...)` (new run) or `MLflowTracker(tracking_uri=..., run_id=...)`
    (an existing run, e.g. on rank 0 or when a job resumes).
    """

    def __init__(self, *, tracking_uri: str, run_id: str) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.run_id: str | None = run_id
        self._client = MlflowClient(tracking_uri=tracking_uri)

    @classmethod
    def create(
        cls,
        *,
        tracking_uri: str,
        experiment: str,
        run_name: str,
        artifact_root: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> MLflowTracker:
        """Creates (or finds) the experiment (described by `description` when new) and starts a new run in it."""
        from mlflow import MlflowClient

        exp_id = ensure_experiment(
            experiment, tracking_uri=tracking_uri, artifact_root=artifact_root, description=description
        )
        run = MlflowClient(tracking_uri=tracking_uri).create_run(
            exp_id, run_name=run_name, tags=dict(tags or {})
        )
        return cls(tracking_uri=tracking_uri, run_id=run.info.run_id)

    def reopen(self) -> None:
        """Marks a resumed run RUNNING again (a crashed job may have left it RUNNING or FAILED)."""
        self._client.update_run(self._id, status="RUNNING")

    @property
    def _id(self) -> str:
        if self.run_id is None:
            raise RuntimeError("this MLflowTracker has ended")
        return self.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(str(k), _param_value(v)) for k, v in params.items()]
        for i in range(0, len(items), _BATCH):
            self._client.log_batch(self._id, params=items[i : i + _BATCH])

    def log_metrics(self, metrics: Mapping[str, float], *, step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(_metric_key(k), float(v), now, int(step)) for k, v in metrics.items()]
        for i in range(0, len(items), _BATCH):
            self._client.log_batch(self._id, metrics=items[i : i + _BATCH])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self._client.log_batch(self._id, tags=[RunTag(str(k), str(v)) for k, v in tags.items()])

    def log_artifact(self, path: Path, *, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self._client.log_artifacts(self._id, str(path), artifact_path)
        else:
            self._client.log_artifact(self._id, str(path), artifact_path)

    def log_image(self, path: Path, *, key: str, step: int) -> None:
        """An image file (PNG) as MLflow image `key` at `step` (the run page's image grid, with a step slider)."""
        from PIL import Image  # Pillow comes with matplotlib; imported only when an image is logged

        with Image.open(path) as img:
            self._client.log_image(self._id, img.convert("RGB"), key=_metric_key(key), step=int(step))

    def log_dataset(
        self, *, name: str, digest: str, source: str, profile: Mapping[str, Any], context: str = "training"
    ) -> None:
        """Records the run's data as an MLflow dataset input (the run page's "Datasets" column).

        `digest`: a content hash of the data (e.g. the manifest's); `profile`: small JSON-able facts (split
        sizes, categories); `context`: training | evaluation.
        """
        from mlflow.entities import Dataset, DatasetInput, InputTag

        dataset = Dataset(
            name=name,
            digest=digest[:36],  # MLflow's digest column holds 36 characters
            source_type="local",
            source=json.dumps({"uri": source}),
            profile=json.dumps(dict(profile), default=str),
        )
        tag = InputTag(key="mlflow.data.context", value=context)
        self._client.log_inputs(self._id, datasets=[DatasetInput(dataset=dataset, tags=[tag])])

    def system_metrics(self, interval_s: float = SYSTEM_METRICS_INTERVAL_S) -> Any:
        """A started `SystemMetricsMonitor` logging `system/*` into this run; call `.finish()` on it."""
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(
            self._id, sampling_interval=interval_s, resume_logging=True, tracking_uri=self.tracking_uri
        )
        monitor.start()
        return monitor

    def end(self, status: str = "FINISHED") -> None:
        self._client.set_terminated(self._id, status=status)

    def status(self) -> str:
        return self._client.get_run(self._id).info.status


def metric_curves(
    tracking_uri: str, run_id: str, prefixes: tuple[str, ...] = ("train/", "val/")
) -> list[dict[str, Any]]:
    """Every logged value of run `run_id`'s metrics whose key starts with one of `prefixes`, as rows
    {"epoch": step, "metric": key, "value": value} sorted by metric then epoch (the last value of a step wins:
    a resumed run may log an epoch twice)."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    keys = sorted(k for k in client.get_run(run_id).data.metrics if k.startswith(prefixes))
    rows = []
    for key in keys:
        by_step: dict[int, float] = {}
        for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.timestamp):
            by_step[int(m.step)] = float(m.value)
        rows += [{"epoch": step, "metric": key, "value": value} for step, value in sorted(by_step.items())]
    return rows


def _param_value(v: Any) -> str:
    s = "null" if v is None else str(v)
    return s if len(s) <= MAX_PARAM_CHARS else s[: MAX_PARAM_CHARS - 3] + "..."


def _metric_key(k: str) -> str:
    # MLflow keys allow alphanumerics, _ - . space : / ; anything else (e.g. '@') becomes '_'.
    return "".join(c if c.isalnum() or c in "_-. :/" else "_" for c in k)


def default_tracking_uri(root: str | Path) -> str:
    """`MLFLOW_TRACKING_URI` if set, else the project's SQLite store `sqlite:///<root>/mlflow.db`."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def default_artifact_root(root: str | Path) -> str:
    """`<root>/mlartifacts` as a file URI (used when this process creates an experiment on a local store)."""
    return (Path(root).resolve() / "mlartifacts").as_uri()


def is_local_store(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("sqlite:", "file:", "/")) or "://" not in tracking_uri


def ensure_experiment(
    name: str, *, tracking_uri: str, artifact_root: str | None = None, description: str | None = None
) -> str:
    """Id of experiment `name`, created if missing (artifacts under `artifact_root/<name>` on a local store;
    without `artifact_root`, a SQLite store's artifacts go to `mlartifacts/` beside its database) as
    a model-training experiment described by `description` (else `DEFAULT_DESCRIPTION`); an existing
    experiment without a kind or a description gets them (a description is never overwritten).

    Call from a single process (the driver): concurrent creation on SQLite races.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            raise ValueError(
                f"MLflow experiment {name!r} is deleted in {tracking_uri}; restore it (mlflow experiments "
                "restore) or use another experiment name (tracking.experiment in the config)"
            )
        _describe_experiment(client, exp.experiment_id, dict(exp.tags), description)
        return exp.experiment_id
    location = None
    if artifact_root is None and tracking_uri.startswith("sqlite:///"):
        # beside the database (<project>/mlartifacts), not MLflow's ./mlruns under whatever the cwd is
        artifact_root = default_artifact_root(Path(tracking_uri.removeprefix("sqlite:///")).parent)
    if artifact_root is not None and is_local_store(tracking_uri):
        location = f"{artifact_root.rstrip('/')}/{name}"
    try:
        exp_id = client.create_experiment(name, artifact_location=location)
    except MlflowException:
        exp = client.get_experiment_by_name(name)  # created meanwhile by another process
        if exp is None:
            raise
        return exp.experiment_id
    _describe_experiment(client, exp_id, {}, description)
    return exp_id


def _describe_experiment(client: Any, exp_id: str, tags: Mapping[str, str], description: str | None) -> None:
    if EXPERIMENT_KIND_TAG not in tags:
        client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
    if not tags.get(DESCRIPTION_TAG):  # never overwrite a description someone wrote in the UI
        client.set_experiment_tag(exp_id, DESCRIPTION_TAG, description or DEFAULT_DESCRIPTION)


def git_commit(root: str | Path) -> str:
    """HEAD's commit of the repository at `root`, with `-dirty` when tracked files changed; outside a
    repository (e.g. inside a Ray job's uploaded working directory, which has no .git) the `V2S_GIT_COMMIT`
    environment variable (set it in the job's runtime environment, docs/tracking.md), else 'unknown'."""
    fallback = os.environ.get(GIT_COMMIT_ENV) or "unknown"
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return fallback
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return fallback
