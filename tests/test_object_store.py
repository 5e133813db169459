"""DVC's remote in an object store (issue 16 item 2): a project trains the REGNET debug config on the tiny data
through a DVC stage (`python -m experiments.stages train`, the pipeline's own train stage: Ray Train, MLflow),
pushes its data and model to an `s3://` remote on moto's server (`dvc remote add` + `endpointurl`, credentials
from the environment), and a second checkout of the same git repository ("another machine") gets the model back
with `dvc pull`: byte-identical files, and `dvc repro` there recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from ray_jobs.cluster import STORAGE_ENV, is_uri, latest_remote_epoch, ray_storage
from tests.services import REPO, MotoS3

KEY = "regnet_debug"
STAGE = {
    "stages": {
        "train": {
            "cmd": f"python -m experiments.stages train {KEY}",
            "deps": ["data/prepared", "data/features"],
            "params": [f"train.experiments.{KEY}"],
            "outs": [f"models/{KEY}/package"],
        }
    }
}


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert p.returncode == 0, (
        f"{' '.join(args)} in {cwd} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    )
    return p.stdout + p.stderr


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


@pytest.mark.slow
def test_dvc_push_then_pull_in_another_checkout_gives_the_same_model(
    tiny_data_root: Path, tmp_path: Path
) -> None:
    a, b = tmp_path / "machine_a", tmp_path / "machine_b"
    a.mkdir()
    for part in ("data/prepared", "data/features"):
        shutil.copytree(tiny_data_root / part, a / part)
    params = yaml.safe_load((tiny_data_root / "params.yaml").read_text())
    config = REPO / "experiments/configs/regnet/debug.yaml"
    params["train"] = {"num_cpus": 1, "experiments": {KEY: {"config": str(config), "set": {"epochs": 1}}}}
    (a / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (a / "dvc.yaml").write_text(yaml.safe_dump(STAGE, sort_keys=False))
    (a / ".gitignore").write_text(
        "mlflow.db\nmlartifacts/\nray_results/\nmodels/*/train.json\nmodels/*/*.csv\n"
    )

    with MotoS3(log_file=tmp_path / "moto.log") as s3:
        s3.create_bucket("v2s-dvc")
        # a private Ray temp folder: the stage never attaches to another cluster of this machine
        ray_tmp = Path(f"/tmp/v2s-os-{uuid.uuid4().hex[:6]}")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "RAY_ADDRESS"))},
            **s3.env(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO),
            "RAY_TMPDIR": str(ray_tmp),
            "V2S_RAY_STORAGE": "",  # the stage's own local storage
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
        }  # fmt: skip
        try:
            for cmd in (
                ["git", "init", "-q"],
                ["dvc", "init", "-q"],
                ["dvc", "config", "core.analytics", "false"],
                ["dvc", "remote", "add", "-d", "store", "s3://v2s-dvc/cache"],
                ["dvc", "remote", "modify", "store", "endpointurl", s3.endpoint],
                ["dvc", "add", "-q", "data/prepared", "data/features"],
                ["dvc", "repro", "-q"],
                ["dvc", "push", "-q"],
                ["git", "add", "-A"],  # in the test's own throwaway repository
                ["git", "commit", "-q", "-m", "trained"],
            ):
                _run(cmd, a, env)
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)
        assert s3.keys("v2s-dvc", "cache/"), "dvc push wrote nothing to the bucket"

        _run(["git", "clone", "-q", str(a), str(b)], tmp_path, env)
        assert not (b / "models" / KEY / "package").exists() and not (b / "data/features").exists()
        _run(["dvc", "pull", "-q"], b, env)
        status = _run(["dvc", "status"], b, env)
        repro = _run(["dvc", "repro"], b, env)

    assert "up to date" in status, status
    assert "Running stage" not in repro and "didn't change" in repro, repro
    model_a, model_b = _digests(a / "models" / KEY / "package"), _digests(b / "models" / KEY / "package")
    assert model_a and model_a == model_b
    assert any(name.endswith(".safetensors") or name.endswith(".pt") for name in model_a), sorted(model_a)
    assert _digests(a / "data/features") == _digests(b / "data/features")


def test_ray_storage_comes_from_the_flag_the_environment_or_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    assert ray_storage(None, tmp_path) == str(tmp_path / "ray_results")
    monkeypatch.setenv(STORAGE_ENV, "s3://bucket/runs/")
    assert ray_storage(None, tmp_path) == "s3://bucket/runs" and is_uri("s3://bucket/runs")
    assert ray_storage(tmp_path / "x", tmp_path) == str(tmp_path / "x")  # the flag wins
    assert ray_storage("file:///data/r", tmp_path) == "/data/r" and not is_uri("file:///data/r")
    with pytest.raises(ValueError, match="names no bucket"):
        ray_storage("s3://", tmp_path)


@pytest.mark.slow
def test_latest_remote_epoch_reads_the_checkpoint_folders_in_the_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with MotoS3() as s3:
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        s3.create_bucket("v2s-runs")
        for key in (
            "r/checkpoint_epoch_00001/a",
            "r/checkpoint_epoch_00003/a",
            "r/checkpoint_epoch_x/a",
            "r/v",
        ):
            s3.client().put_object(Bucket="v2s-runs", Key=key, Body=b"1")
        assert latest_remote_epoch("s3://v2s-runs/r") == 3
        assert latest_remote_epoch("s3://v2s-runs/none") == 0


@pytest.mark.slow
def test_a_sweep_keeps_its_tune_state_in_the_bucket_and_resumes_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With V2S_RAY_STORAGE an s3:// URI, a sweep's Tune experiment (its state, the searcher's, the trials' Ray
    Train checkpoints) is written to the bucket, not to the project; a driver that died after the trials ended
    (its local state file still RUNNING) is restored from the bucket, runs no trial again and opens no new run."""
    from mlflow import MlflowClient

    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import STATE_FILE, run_sweep
    from tests.services import RayNodes
    from tests.test_ray_train import write_fake_prepared_data

    root = tmp_path / "project"
    write_fake_prepared_data(root, train=8, val=2, frames=215, visual_dim=2560, n_mels=80)
    sweep = load_sweep("experiments/sweeps/regnet_bottleneck.py", smoke=True)
    sweep.num_samples = 2
    prefix = "ray_results/sweeps/s3sweep/"
    with MotoS3(log_file=tmp_path / "moto.log") as s3:
        s3.create_bucket("v2s-sweeps")
        for k, v in s3.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv(STORAGE_ENV, "s3://v2s-sweeps/ray_results")
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        with RayNodes(workers=0, env=s3.env()):
            out = run_sweep(sweep, root=root, name="s3sweep", register=False)
            assert out.errors == 0 and len(out.rows) == 2, out.rows
            keys = s3.keys("v2s-sweeps", prefix)
            names = {k.rsplit("/", 1)[-1] for k in keys}
            assert any(n.startswith("experiment_state") for n in names), sorted(names)
            assert any(n.startswith("searcher-state") for n in names), sorted(names)
            assert "tuner.pkl" in names, sorted(names)
            for row in out.rows:  # each trial's Ray Train checkpoints, under the sweep's train/ prefix
                assert any(k.startswith(f"{prefix}train/{row.variant}/checkpoint_epoch_") for k in keys), row
            local = root / "ray_results/sweeps/s3sweep"
            assert not list(local.rglob("experiment_state*")) and not list(local.rglob("checkpoint_epoch_*"))

            client = MlflowClient(tracking_uri=out.tracking_uri)
            exp = client.get_run(out.parent_run_id).info.experiment_id
            runs_before = {r.info.run_id for r in client.search_runs([exp])}
            state = json.loads((local / STATE_FILE).read_text())
            (local / STATE_FILE).write_text(json.dumps({**state, "status": "RUNNING"}))
            capsys.readouterr()
            again = run_sweep(sweep, root=root, name="s3sweep", register=False)
            assert "restoring s3://v2s-sweeps/ray_results/sweeps/s3sweep" in capsys.readouterr().out
            assert not again.already_finished and again.parent_run_id == out.parent_run_id
            assert sorted((r.variant, r.epochs, r.run_id) for r in again.rows) == sorted(
                (r.variant, r.epochs, r.run_id) for r in out.rows
            )
            assert {r.info.run_id for r in client.search_runs([exp])} == runs_before  # nothing ran again
