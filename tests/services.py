"""Real services for the multi-node, object-store and authentication tests, each on loopback, each stopped by
the test that started it (never `ray stop` or a kill by name: other people's clusters share this machine).

- `MotoS3`: moto's S3 server (`moto_server -H 127.0.0.1 -p PORT`), the stand-in for S3 / MinIO; `env()` gives
  the variables every client reads (boto3, pyarrow / Ray Train, MLflow, DVC): credentials and the endpoint.
- `write_auth_config`: the ini file of MLflow's `basic-auth` app (SQLite user store, default permission).
- `RayNodes`: Ray's own multi-node harness (`ray.cluster_utils.Cluster`): a head and worker raylets on this
  machine, one CPU each, with a custom resource naming every node, in a private temp folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from ray_jobs.mlflow_server import free_port, stop_process_group

REPO = Path(__file__).resolve().parents[1]
MOTO_SERVER = Path(sys.executable).parent / "moto_server"


class MotoS3:
    """moto's S3 server on 127.0.0.1 in its own process group; a context manager returning itself."""

    def __init__(self, *, log_file: Path | None = None, start_timeout_s: float = 60.0) -> None:
        self.port = free_port()
        self.log_file = log_file
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What a client needs, all from the environment (the same names work for AWS S3 and MinIO)."""
        return {
            "AWS_ACCESS_KEY_ID": "v2s-test-key",
            "AWS_SECRET_ACCESS_KEY": "v2s-test-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": self.endpoint,  # boto3, pyarrow (Ray Train storage)
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint,  # MLflow's artifact client
        }

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def start(self) -> MotoS3:
        if not MOTO_SERVER.is_file():
            raise FileNotFoundError(
                f"moto_server not found at {MOTO_SERVER} (moto[server] is in requirements.lock)"
            )
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115 (kept by Popen)
        try:
            self.proc = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server on port {self.port} did not start")
            time.sleep(0.3)
        return self

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        import boto3  # heavy; only the object-store tests need it

        env = self.env()
        return boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under `prefix` in `bucket` (paginated)."""
        s3 = self.client()
        out: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return out

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc, grace_s=10)

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def write_auth_config(path: Path, *, default_permission: str = "READ") -> Path:
    """The basic-auth app's ini: users in a SQLite file beside it; the admin's password comes from
    MLFLOW_AUTH_ADMIN_PASSWORD (MLflow ships none). Returns `path`."""
    path.write_text(
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = sqlite:///{path.parent / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return path


class RayNodes:
    """A head and `workers` worker raylets (`ray.cluster_utils.Cluster`), one CPU each, named by a custom
    resource (`node0` the head, `node1`...), with the dashboard on 127.0.0.1; this process joins it.

    `env` is set in this process before the raylets start, so every Ray worker inherits it (the object store's
    endpoint and credentials, as `ray start` on a real node inherits its shell's environment)."""

    def __init__(self, *, workers: int = 1, env: Mapping[str, str] | None = None) -> None:
        self.workers = workers
        self.env = dict(env or {})
        self.tmp = Path(f"/tmp/v2s-mn-{uuid.uuid4().hex[:6]}")  # short: Ray's socket paths stay < 108 chars
        self.cluster: Any = None
        self.nodes: dict[str, Any] = {}
        self._saved: dict[str, str | None] = {}

    def _setenv(self, key: str, value: str) -> None:
        self._saved.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def start(self) -> RayNodes:
        import ray  # heavy
        from ray.cluster_utils import Cluster

        for k, v in {
            **self.env,
            "RAY_TMPDIR": str(self.tmp),
            "PYTHONPATH": str(REPO),
            "RAY_USAGE_STATS_ENABLED": "0",
        }.items():
            self._setenv(k, v)
        dash = free_port()
        self._setenv("RAY_API_SERVER_ADDRESS", f"http://127.0.0.1:{dash}")
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "resources": {"node0": 1},
                "include_dashboard": True,
                "dashboard_host": "127.0.0.1",
                "dashboard_port": dash,
                "temp_dir": str(self.tmp / "ray"),
                # each node's dashboard agent on its own port: the default (52365) may be another cluster's
                "dashboard_agent_listen_port": free_port(),
            },
        )
        self.nodes["node0"] = self.cluster.head_node
        for i in range(1, self.workers + 1):
            self.nodes[f"node{i}"] = self.cluster.add_node(
                num_cpus=1, resources={f"node{i}": 1}, dashboard_agent_listen_port=free_port()
            )
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address)
        return self

    @property
    def dashboard_url(self) -> str:
        return os.environ["RAY_API_SERVER_ADDRESS"]

    def node_id(self, name: str) -> str:
        return str(self.nodes[name].node_id)

    def add(self, name: str) -> None:
        """Adds a worker node of one CPU named by the custom resource `name`."""
        self.nodes[name] = self.cluster.add_node(
            num_cpus=1, resources={name: 1}, dashboard_agent_listen_port=free_port()
        )
        self.cluster.wait_for_nodes()

    def remove(self, name: str) -> None:
        """Takes the node away (its raylet and every worker process on it die), as a machine lost."""
        self.cluster.remove_node(self.nodes.pop(name), allow_graceful=False)

    def stop(self) -> None:
        import ray

        try:
            ray.shutdown()
            if self.cluster is not None:
                self.cluster.shutdown()
        finally:
            for k, v in self._saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> RayNodes:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
