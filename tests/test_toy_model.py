"""The extension story (issue 12, item 7): a model added from outside the library goes the whole way.

The toy (tests/toy/model.py, config tests/toy/toy.yaml) is a per-frame MLP mel generator with a one-layer
discriminator and its own `GanSystem`; no library file names it (checked first). Its components resolve because
its module prefix is trusted (`V2S_TRUSTED_COMPONENTS=tests.toy`, in this process, the Ray workers and every
command), and importing its module to resolve them registers its `GanSystem`: that is all the registration there
is. On the prepared tiny data set it is:
1. trained on Ray Train (`ray_jobs.train.run_training`, a private Ray instance), logged to a SQLite MLflow store;
2. registered (`v2s promote RUN --name toy --alias champion`);
3. voiced onto a video (`v2s generate VIDEO --model models:/toy@champion`);
4. evaluated (`v2s evaluate models:/toy@champion`, a fresh process, as a user runs it);
5. swept: a two-entry grid over its adversarial weight (`python -m ray_jobs.sweep DECLARATION`), each trial a
   child run of one parent run, the best registered.
Sizes are tiny (4 training clips, 2 epochs, 2 clips evaluated) so that it runs in CI on 2 cores.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import ray
import soundfile as sf
from mlflow import MlflowClient

from ray_jobs.train import run_training
from tests.test_sweeps import base_env, child_runs, make_project
from tests.toy.model import TRUSTED_PREFIX
from v2s_models import components
from v2s_models.cli import main
from v2s_models.config import load_config

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ("v2s_models", "dataprep", "ray_jobs", "experiments")
CONFIG = REPO / "tests/toy/toy.yaml"
SWEEP = '''"""Does the toy model need its adversarial loss? (tests/test_toy_model.py's two-trial sweep)"""

BASE = "{config}"
GRID = {{"mel_only": {{"losses.adv": 0.0}}, "with_adv": {{"losses.adv": 0.1}}}}
SET = {{"epochs": 1, "scaling.cpus_per_worker": 0.9}}  # a trial takes one CPU: both run at once on 2 cores
OBJECTIVE = {{"metric": "val/mel_l1", "mode": "min"}}
METRICS = ["val/onset_corr"]
REGISTER_AS = "toy-sweep"
'''


def v2s(*argv: str | Path) -> int:
    """The `v2s` command in this process."""
    return main([str(a) for a in argv])


@contextmanager
def private_ray(env_vars: dict[str, str]) -> Iterator[None]:
    """A 2-CPU Ray instance of this process, with its own temp dir (other Ray clusters here are not touched)."""
    tmp = Path(f"/tmp/v2s-toy-{uuid.uuid4().hex[:6]}")  # short: Ray's socket paths must stay < 108 chars
    ray.init(
        num_cpus=2, include_dashboard=True, _temp_dir=str(tmp / "ray"), runtime_env={"env_vars": env_vars}
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_a_toy_model_trains_registers_generates_evaluates_and_sweeps(
    tiny_data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for package in LIBRARY:  # the toy is added from outside: no library file names it
        for path in (REPO / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "ToyMelGenerator" not in text and "ToyGan" not in text, path
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    env_vars = {components.TRUSTED_ENV: TRUSTED_PREFIX, "PYTHONPATH": str(REPO)}
    for key, value in env_vars.items():
        monkeypatch.setenv(key, value)
    root = make_project(tmp_path / "project", tiny_data_root)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(tracking_uri=uri)

    # 1. training on Ray, logged to MLflow with its model
    cfg = load_config(CONFIG)
    with private_ray(env_vars):
        out = run_training(
            cfg, root=root, storage=root / "ray_results", tracking_uri=uri, experiment="toy", max_failures=0
        )
    assert out.epochs == 2 and out.metrics["epoch"] == 2, out.metrics
    run = client.get_run(out.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model.generator._component_"] == "tests.toy.model.ToyMelGenerator"
    for key in ("train/g_mel", "train/d", "val/test_split/mel_l1"):
        history = [m.step for m in client.get_metric_history(out.mlflow_run_id, key)]
        assert history == [1, 2], (key, history)
    assert out.model_uri is not None and out.model_uri.startswith("models:/m-")
    seconds["train"] = time.perf_counter() - t0

    # 2. registration
    assert (
        v2s("promote", out.mlflow_run_id, "--name", "toy", "--alias", "champion", "--tracking-uri", uri) == 0
    )
    version = client.get_model_version_by_alias("toy", "champion")
    assert version.run_id == out.mlflow_run_id

    # 3. `v2s generate` on a video of the data set (2.1 s: one window), voiced by Griffin-Lim
    video = sorted((root / "data/raw/synthfoley").glob("*/*.mp4"))[0]
    sound = tmp_path / "toy.mp4"
    assert (
        v2s("generate", video, "--model", "models:/toy@champion", "--vocoder", "griffin_lim", "--out", sound)
        == 0
    )
    assert sound.stat().st_size > 0, capsys.readouterr().err
    wav, sr = sf.read(str(sound.with_suffix(".wav")), dtype="float32")
    assert sr == 22050 and np.all(np.isfinite(wav)) and wav.std() > 0, (sr, wav.shape)
    with av.open(str(sound)) as muxed:
        assert {s.type for s in muxed.streams} >= {"video", "audio"}, muxed.streams
    with av.open(str(video)) as source:
        duration = float(source.duration) / av.time_base
    assert abs(len(wav) / sr - duration) < 0.05, (len(wav) / sr, duration)
    seconds["register_generate"] = time.perf_counter() - t0 - sum(seconds.values())

    # 4. `v2s evaluate`, in a fresh process as a user runs it; its figures are logged to the model's run
    ev_out = tmp_path / "evaluation"
    cmd = [sys.executable, "-m", "v2s_models.cli", "evaluate", "models:/toy@champion", "--root", str(root),
           "--out", str(ev_out), "--max-clips", "2", "--samples", "0", "--bootstrap", "100"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads((ev_out / "metrics.json").read_text())
    assert doc["clips"] == 2 and doc["model"] in doc["systems"], sorted(doc)
    model_figures = doc["systems"][doc["model"]]
    assert {"onset_f1", "mcd_db"} <= set(model_figures), sorted(model_figures)
    assert (ev_out / "table.md").is_file()
    seconds["evaluate"] = time.perf_counter() - t0 - sum(seconds.values())

    # 5. a two-trial sweep (an ablation grid declared in this test's folder), on its own Ray instance
    declaration = tmp_path / "toy_adversarial.py"
    declaration.write_text(SWEEP.format(config=CONFIG))
    ray_tmp = Path(f"/tmp/v2s-ts-{uuid.uuid4().hex[:6]}")
    sweep_env = base_env(RAY_TMPDIR=str(ray_tmp), **env_vars)
    try:
        sweep = subprocess.run(
            [sys.executable, "-m", "ray_jobs.sweep", str(declaration), "--root", str(root), "--num-cpus", "2"],
            cwd=REPO, env=sweep_env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    log = sweep.stdout + sweep.stderr
    assert sweep.returncode == 0, log[-6000:]
    parent, children = child_runs(uri, "toy_adversarial")
    assert parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == ["mel_only", "with_adv"]
    assert all(c.info.status == "FINISHED" for c in children), [c.info.status for c in children]
    best = client.get_model_version_by_alias("toy-sweep", "candidate")
    assert best.run_id == parent.data.tags["v2s.sweep.best_run_id"]
    seconds["sweep"] = time.perf_counter() - t0 - sum(seconds.values())
    print("toy model, seconds per step:", json.dumps({k: round(v, 1) for k, v in seconds.items()}))
