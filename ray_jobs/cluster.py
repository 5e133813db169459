"""Local-cluster helpers for the Ray entry points: where the project is, and how to reach a cluster.

Connecting (`connect`): inside `ray job submit` (RAY_ADDRESS is set) or when `ray start` left a cluster running
on this machine (`<ray tmp>/ray_current_cluster`), attach to it; otherwise start a local instance for this
process. Token authentication: Ray >= 2.59 turns it on for local clusters (the token lives in
`~/.ray/auth_token`); a driver on the head machine finds the token there, while CLI and job clients need
`RAY_AUTH_MODE=token` in their environment (`scripts/cluster.sh` prints what to export).

The project root matters because `ray job submit --working-dir .` runs the job in an uploaded copy of the
repository without git-ignored folders: the prepared data, `ray_results/` and `mlflow.db` are not there.
`scripts/cluster.sh start` sets `V2S_PROJECT_ROOT` for the cluster's processes, so jobs find the real folder.

Storage (`ray_storage`): Ray Train's checkpoints and run state go to `--storage`, else `$V2S_RAY_STORAGE`, else
`<root>/ray_results`; an `s3://bucket/prefix` location takes its endpoint and credentials from the environment
only (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), so AWS S3, MinIO and a test server
(moto) need no code change (docs/cluster.md).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from ray_jobs.mlflow_server import free_port

log = logging.getLogger(__name__)

ROOT_ENV = "V2S_PROJECT_ROOT"
_UPLOADED_MARK = (
    "working_dir_files"  # Ray unpacks `--working-dir` uploads under .../runtime_resources/<this>/
)


def in_uploaded_working_dir(path: Path | None = None) -> bool:
    """True inside the copy of the repository that `ray job submit --working-dir` unpacked."""
    return _UPLOADED_MARK in (path or Path.cwd()).resolve().parts


def project_root(explicit: str | Path | None = None) -> Path:
    """The project folder holding data/, ray_results/ and mlflow.db: `explicit`, else `$V2S_PROJECT_ROOT`,
    else the current directory (refused inside an uploaded Ray working directory, which is temporary)."""
    value = explicit if explicit is not None else os.environ.get(ROOT_ENV)
    if value:
        root = Path(value).expanduser().resolve()
        if not root.is_dir():
            raise ValueError(f"project root {root} is not a folder")
        return root
    if in_uploaded_working_dir():
        raise ValueError(
            "running inside a Ray job's uploaded working directory, which holds neither the prepared data nor "
            f"ray_results/: pass --root /path/to/the/project, or set {ROOT_ENV} for the cluster "
            "(scripts/cluster.sh start does)"
        )
    return Path.cwd().resolve()


def ray_temp_dir() -> Path:
    """Where Ray keeps sessions and the address of the last `ray start` (RAY_TMPDIR moves it)."""
    base = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
    return Path(base) / "ray"


def running_cluster_address() -> str | None:
    """Address recorded by the last `ray start` on this machine (None when none is recorded)."""
    f = ray_temp_dir() / "ray_current_cluster"
    try:
        return f.read_text().strip() or None
    except OSError:
        return None


def _accepts_connections(address: str, timeout: float = 2.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def connect(
    *, num_cpus: int | None = None, address: str | None = None, include_dashboard: bool = True
) -> str:
    """Attaches to a running cluster or starts a local instance; returns a line saying which.

    A process that already called `ray.init` keeps its instance. `num_cpus` and `include_dashboard` apply only
    to a new local instance (Ray refuses them when attaching). The dashboard (on 127.0.0.1) stays on by default:
    without it Ray Train's placement-group cleaner cannot read the controller's state and warns every few
    seconds, and Train inside Tune hangs (STACK.md).
    """
    import ray

    if ray.is_initialized():
        return "using this process's Ray instance"
    explicit = address or os.environ.get("RAY_ADDRESS")
    if explicit:
        ray.init(address=address or "auto")
        return f"attached to the Ray cluster at {explicit}"
    recorded = running_cluster_address()
    # A head that died without `ray stop` leaves its address behind, and ray.init would retry it for minutes:
    # attach only when its GCS port accepts a connection.
    if recorded and _accepts_connections(recorded):
        ray.init(address="auto")
        return f"attached to the Ray cluster at {recorded}"
    if recorded:
        log.warning("the Ray cluster recorded at %s does not answer; starting a local instance", recorded)
    if not include_dashboard:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
    else:
        # Our own dashboard port, told to every process of the instance: Ray Train's placement-group cleaner
        # otherwise looks its cluster up by address "auto", which fails ("multiple active Ray instances") when
        # another Ray instance runs on the same machine, and the cleaner's thread dies.

        port = free_port()
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=port,
            runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}},
        )
    return f"started a local Ray instance ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"


# ------------------------------------------------------------------------------------------- storage
STORAGE_ENV = "V2S_RAY_STORAGE"
_CHECKPOINT_PREFIX = "checkpoint_epoch_"  # ray_jobs.train names every epoch's checkpoint folder this way


def is_uri(storage: str | Path) -> bool:
    """True for an object-store location (`s3://bucket/prefix`, `gs://...`), False for a local folder."""
    return "://" in str(storage) and not str(storage).startswith("file://")


def ray_storage(explicit: str | Path | None, root: Path) -> str:
    """Ray Train's storage: `explicit`, else `$V2S_RAY_STORAGE`, else `<root>/ray_results`.

    A URI is returned as given (without a trailing '/'); a folder as an absolute path. For `s3://` the endpoint and
    credentials come from the environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`),
    never from the URI, so the same value works against AWS S3, MinIO or a test server.
    """
    value = str(explicit) if explicit is not None else os.environ.get(STORAGE_ENV) or ""
    if not value:
        return str(root / "ray_results")
    if is_uri(value):
        scheme, _, rest = value.partition("://")
        if not rest.strip("/"):
            raise ValueError(f"storage {value!r} names no bucket (expected {scheme}://bucket/prefix)")
        return value.rstrip("/")
    return str(Path(value.removeprefix("file://")).expanduser().resolve())


def latest_remote_epoch(run_uri: str) -> int:
    """The highest epoch among the `checkpoint_epoch_NNNNN` folders of a run in an object store (0 when none)."""
    import pyarrow.fs  # heavy; only remote storage needs it

    fs, path = pyarrow.fs.FileSystem.from_uri(run_uri)
    infos = fs.get_file_info(pyarrow.fs.FileSelector(path, allow_not_found=True))
    epochs = [
        int(name[len(_CHECKPOINT_PREFIX) :])
        for info in infos
        if info.type == pyarrow.fs.FileType.Directory
        and (name := info.base_name).startswith(_CHECKPOINT_PREFIX)
        and name[len(_CHECKPOINT_PREFIX) :].isdigit()
    ]
    return max(epochs, default=0)
