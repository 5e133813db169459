"""MLflow's authentication (issue 15 item 2): the server the multi-machine instructions start
(`mlflow server --app-name basic-auth`, on loopback, SQLite) refuses a request to register a model without
credentials or with a read-only user's, and accepts the same request from an authorised user.

`v2s ui` and the scripts bind to loopback unless told otherwise: checked here without starting anything.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ray_jobs.mlflow_server import MlflowServer, free_port
from tests.services import REPO, write_auth_config

ADMIN_PASSWORD = "v2s-admin-Secret-1"  # noqa: S105 (a throwaway server of this test)


def _call(
    uri: str, path: str, body: dict[str, Any], auth: tuple[str, str] | None = None, method: str = "POST"
) -> tuple[int, str]:
    req = urllib.request.Request(
        f"{uri}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
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
        env={
            "MLFLOW_AUTH_CONFIG_PATH": str(config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "v2s-test-csrf-key",  # the auth app's CSRF protection needs one
        },
    )
    with server as uri:
        register = "/api/2.0/mlflow/registered-models/create"
        admin, reader = ("admin", ADMIN_PASSWORD), ("reader", "reader-Secret-2")
        status, _ = _call(uri, register, {"name": "regnet"})
        assert status == 401, status  # no credentials
        status, _ = _call(uri, register, {"name": "regnet"}, auth=("admin", "wrong-password"))
        assert status == 401, status

        status, body = _call(uri, register, {"name": "regnet"}, auth=admin)
        assert status == 200, body
        assert json.loads(body)["registered_model"]["name"] == "regnet"

        # A user the admin creates gets the default permission (READ) on the admin's model: it may read it, not
        # change it (moving an alias or rewriting the model is what an attacker would do). MLflow lets any
        # authenticated user create models of their own: that is what `default_permission` does not cover.
        status, body = _call(uri, "/api/2.0/mlflow/users/create", {"username": reader[0], "password": reader[1]},
                             auth=admin)  # fmt: skip
        assert status == 200, body
        status, _ = _call(
            uri, "/api/2.0/mlflow/registered-models/get?name=regnet", {}, auth=reader, method="GET"
        )
        assert status == 200, status
        update = "/api/2.0/mlflow/registered-models/update"
        status, _ = _call(uri, update, {"name": "regnet", "description": "x"}, auth=reader, method="PATCH")
        assert status == 403, status
        status, _ = _call(uri, update, {"name": "regnet", "description": "x"}, method="PATCH")
        assert status == 401, status
        status, body = _call(uri, update, {"name": "regnet", "description": "x"}, auth=admin, method="PATCH")
        assert status == 200, body
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


def test_cluster_script_keeps_the_head_on_loopback_unless_told(tmp_path: Path) -> None:
    """`scripts/cluster.sh`: an open head without a token is refused before anything starts, and a head
    started without `--listen` tells joiners it cannot be joined (no Ray is started here)."""
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path), "V2S_RAY_PORT": str(free_port())}
    env.pop("V2S_RAY_NODE_IP", None)
    script = str(REPO / "scripts/cluster.sh")
    refused = subprocess.run(
        ["bash", script, "start", "--no-auth", "--listen", "10.0.0.1"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "keep the token" in refused.stderr, refused.stderr
    assert not list(tmp_path.iterdir()), "nothing may be started or written for a refused start"
    join = subprocess.run(["bash", script, "join"], env=env, capture_output=True, text=True, check=True)
    assert "loopback only" in join.stdout and "--listen" in join.stdout, join.stdout
