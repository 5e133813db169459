"""MLflow's authentication (issue 15 item 2): the server the multi-machine instructions start
(`mlflow server --app-name basic-auth`, on loopback, SQLite) refuses a request to register a model without
credentials or with a read-only user's, and accepts the same request from an authorised user.

`v2s ui` and the scripts bind to loopback unless told otherwise: checked here without starting anything.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ray_jobs.mlflow_server import MlflowServer
from tests.services import REPO, write_auth_config

ADMIN_PASSWORD = "v2s-admin-Secret-1"  # noqa: S105 (a throwaway server of this test)


def _post(uri: str, path: str, body: dict[str, Any], auth: tuple[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(
        f"{uri}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


@pytest.mark.slow
def test_basic_auth_server_refuses_unauthenticated_model_registration(tmp_path: Path) -> None:
    # MLflow's auth app imports Flask-WTF (the `mlflow[auth]` extra); the server cannot start without it
    pytest.importorskip(
        "flask_wtf", reason="MLflow's basic-auth app needs Flask-WTF (pip install 'mlflow[auth]')"
    )
    config = write_auth_config(tmp_path / "auth.ini", default_permission="READ")
    server = MlflowServer(
        store_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_root=(tmp_path / "artifacts").as_uri(),
        app_name="basic-auth",
        log_file=tmp_path / "server.log",
        env={"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    with server as uri:
        register = "/api/2.0/mlflow/registered-models/create"
        status, _ = _post(uri, register, {"name": "regnet"})
        assert status == 401, status  # no credentials
        status, _ = _post(uri, register, {"name": "regnet"}, auth=("admin", "wrong-password"))
        assert status == 401, status

        # A user the admin creates gets the default permission (READ): it may read, not register.
        status, body = _post(
            uri, "/api/2.0/mlflow/users/create", {"username": "reader", "password": "reader-Secret-2"},
            auth=("admin", ADMIN_PASSWORD),
        )  # fmt: skip
        assert status == 200, body
        status, _ = _post(uri, register, {"name": "regnet"}, auth=("reader", "reader-Secret-2"))
        assert status == 403, status

        status, body = _post(uri, register, {"name": "regnet"}, auth=("admin", ADMIN_PASSWORD))
        assert status == 200, body
        assert json.loads(body)["registered_model"]["name"] == "regnet"
        # the health probe stays open (load balancers, MlflowServer's own start-up check)
        with urllib.request.urlopen(f"{uri}/health", timeout=10) as r:
            assert r.status == 200


def test_v2s_ui_refuses_a_public_host_without_opting_in() -> None:
    from v2s_models.cli import main

    with pytest.raises(SystemExit) as e:
        main(["ui", "--host", "0.0.0.0"])
    assert "--allow-remote" in str(e.value)


def test_no_unconditional_public_bind_in_docs_or_scripts() -> None:
    """Every `0.0.0.0` in docs, scripts and the README sits on a line that says it is an opt-in."""
    files = [
        *REPO.glob("docs/*.md"),
        *REPO.glob("scripts/*"),
        REPO / "README.md",
        *REPO.glob("ray_jobs/*.py"),
    ]
    offenders = []
    for f in filter(Path.is_file, files):
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            if "0.0.0.0" in line and not re.search(r"opt-in|opt in|never|not |refuse", line, re.IGNORECASE):
                offenders.append(f"{f.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
