"""A loopback MLflow tracking server over the project's store, for processes that log concurrently.

SQLite does not take concurrent writers from several processes well (runs and metrics get lost to "database is
locked"); a single server process serialises them. A sweep whose trials run in parallel starts one:

    with MlflowServer(store_uri="sqlite:////abs/mlflow.db", artifact_root="file:///abs/mlartifacts") as uri:
        ...  # every process logs to `uri` (http://127.0.0.1:<port>)

`mlflow server --workers 1` with `MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false` (about 0.4 GB instead of 1.9 GB;
STACK.md), listening on 127.0.0.1 only, artifacts written directly by the clients (`--no-serve-artifacts`: every
process runs on this machine and sees the artifact folder). The server runs in its own process group, which
`stop` signals (TERM, then KILL after a grace period): its gunicorn/uvicorn workers go with it. On Linux the
server also gets SIGTERM when the process that started it dies (`PR_SET_PDEATHSIG`; mlflow forwards it to its
workers), so a killed sweep driver does not leave a server behind.

`app_name="basic-auth"` runs MLflow's authentication app (users and permissions in the database named by the
ini file at `MLFLOW_AUTH_CONFIG_PATH`; the first admin's password from `MLFLOW_AUTH_ADMIN_PASSWORD`): every
request but `/health` then needs HTTP basic credentials. The artifact root may be an object store
(`s3://bucket/prefix`): server and clients find the endpoint and credentials in their environment
(`MLFLOW_S3_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), never in a URI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType


def _die_with_parent() -> None:
    """preexec_fn: a new session (for `stop`) and, on Linux, SIGTERM when the parent dies."""
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port(preferred: int | None = None) -> int:
    """`preferred` when it is free on 127.0.0.1, else a free port chosen by the OS."""
    if preferred:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", int(preferred)))
                return int(preferred)
            except OSError:
                pass
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process_group(proc: subprocess.Popen[bytes] | None, grace_s: float = 15.0) -> None:
    """TERM, then KILL after `grace_s`, to the process group of `proc` (a child started in its own session)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def is_healthy(uri: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


class MlflowServer:
    """A `mlflow server` child process on 127.0.0.1 (see the module docstring); a context manager."""

    def __init__(
        self,
        *,
        store_uri: str,
        artifact_root: str,
        port: int | None = None,
        log_file: str | Path | None = None,
        start_timeout_s: float = 180.0,
        app_name: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.store_uri = store_uri
        self.app_name = app_name
        self.env = dict(env or {})
        self.artifact_root = artifact_root
        self.port = free_port(port)
        self.log_file = Path(log_file) if log_file else None
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> str:
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", self.store_uri,
            "--default-artifact-root", self.artifact_root,
            "--no-serve-artifacts",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            *(["--app-name", self.app_name] if self.app_name else []),
        ]  # fmt: skip
        env = {
            **os.environ,
            **self.env,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115 (kept by Popen)
        try:
            self.proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (a setsid and a prctl: no locks taken)
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        deadline = time.monotonic() + self.start_timeout_s
        while not is_healthy(self.uri):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (
                    "exited"
                    if self.proc.poll() is not None
                    else f"did not answer within {self.start_timeout_s:.0f} s"
                )
                self.stop()
                tail = (
                    self.log_file.read_text(errors="replace")[-2000:]
                    if self.log_file and self.log_file.is_file()
                    else ""
                )
                raise RuntimeError(f"the MLflow server on port {self.port} {why} ({' '.join(cmd)})\n{tail}")
            time.sleep(0.5)
        return self.uri

    def stop(self, grace_s: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc, grace_s)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
