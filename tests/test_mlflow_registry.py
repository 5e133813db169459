"""MLflow round trip of a trained model (v2s_models/registry.py, tracking.py, `v2s promote`, `v2s ui`).

The REGNET debug config (experiments/configs/regnet/debug.yaml, the real GanMelSolver) is trained one epoch by
the plain loop on a fake prepared data set of the real feature sizes, turned into a package, logged as an MLflow
model, promoted to `candidate` then `champion` with the `v2s promote` command, loaded back as
`models:/<name>@champion`, and must generate exactly what the trained generator generated before logging.
Everything runs against a SQLite store in a temporary folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from v2s_models import registry
from v2s_models.config import load_config
from v2s_models.package import load_package
from v2s_models.settings import REGNET
from v2s_models.training import loop

REPO = Path(__file__).resolve().parents[1]
DEBUG_CONFIG = REPO / "experiments/configs/regnet/debug.yaml"
FRAMES, VISUAL_DIM, N_MELS = 215, 2560, 80  # the prepared regnet features' sizes
FEATURES = {"preset": "regnet", "extractor": "efficientnet_lite0", "image_size": 112, "flow": "dis"}


def write_prepared_data(root: Path, *, clips: int = 6, seed: int = 0) -> None:
    """Manifest + per-clip regnet feature folders (the pipeline's layout) with random features."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(clips):
        clip = f"cat{i % 2}/clip_{i:04d}"
        rel = Path("data/features/regnet") / clip
        (root / rel).mkdir(parents=True)
        np.save(root / rel / "visual.npy", rng.standard_normal((FRAMES, VISUAL_DIM)).astype(np.float16))
        np.save(root / rel / "mel.npy", rng.random((N_MELS, 4 * FRAMES)).astype(np.float32))
        (root / rel / "meta.json").write_text(json.dumps({"key": f"fake-{i}"}))
        split = "train" if i < clips - 2 else "val"
        rows.append({"clip_id": clip, "category": f"cat{i % 2}", "split": split, "status": "ok",
                     "features": {"regnet": str(rel)}})  # fmt: skip
    (root / "data/prepared").mkdir(parents=True)
    (root / "data/prepared/manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One epoch of the REGNET debug config; its checkpoint, package and the generator's own output."""
    if not DEBUG_CONFIG.is_file():
        pytest.skip(f"{DEBUG_CONFIG} not found")
    root = tmp_path_factory.mktemp("project")
    write_prepared_data(root)
    cfg = load_config(DEBUG_CONFIG, {"epochs": 1})
    loop.seed_everything(0)
    solver = loop.build_solver(cfg, device="cpu", root=root)
    ckpt = root / "ckpt"
    loop.fit(solver, cfg, checkpoint_dir=ckpt, epochs=1)
    registry.write_checkpoint_meta(
        ckpt,
        config=cfg,
        data_settings=REGNET,
        features=FEATURES,
        inference_modules=solver.inference_modules(),
    )
    visual = torch.randn(2, FRAMES, VISUAL_DIM, generator=torch.Generator().manual_seed(1))
    generator = solver.unwrapped("generator").eval()
    # its SoundModel interface, each clip one video, draws from one CPU generator seeded with 7
    rng = torch.Generator().manual_seed(7)
    with torch.inference_mode():
        expected = torch.cat(
            [
                generator.generate_windows(visual[i : i + 1], generator.start_video(generator=rng))
                for i in range(2)
            ]
        )
    package = registry.package_from_checkpoint(ckpt, root / "package")
    return {
        "root": root,
        "cfg": cfg,
        "ckpt": ckpt,
        "package": package,
        "visual": visual,
        "expected": expected,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def test_package_keeps_weights_and_data_settings(trained: dict[str, Any]) -> None:
    pkg = load_package(trained["package"])
    assert pkg.paradigm == "gan_mel" and list(pkg.modules) == ["generator"]
    assert (
        pkg.data_settings == REGNET
        and pkg.data_settings.fps == 21.5
        and pkg.data_settings.sample_rate == 22050
    )
    assert pkg.features["extractor"] == "efficientnet_lite0"
    assert pkg.extra["epoch"] == 1
    out = registry.generate(pkg, trained["visual"], seed=7)
    assert out.shape == (2, N_MELS, 4 * FRAMES), f"{out.shape=}"
    assert torch.equal(out, trained["expected"])
    assert not torch.equal(out, registry.generate(pkg, trained["visual"], seed=8)), "the seed must matter"


def test_resolve_checkpoint_and_ray_run_folders(trained: dict[str, Any], tmp_path: Path) -> None:
    from_ckpt = registry.resolve_model(trained["ckpt"])
    assert torch.equal(registry.generate(from_ckpt, trained["visual"], seed=7), trained["expected"])
    run_dir = tmp_path / "run"  # Ray Train's layout: <storage>/<run name>/checkpoint_*/
    for name in ("checkpoint_epoch_00001", "checkpoint_epoch_00002"):
        (run_dir / name).mkdir(parents=True)
        for f in trained["ckpt"].iterdir():
            (run_dir / name / f.name).write_bytes(f.read_bytes())
    assert registry.latest_checkpoint(run_dir).name == "checkpoint_epoch_00002"
    from_run = registry.resolve_model(run_dir)
    assert torch.equal(registry.generate(from_run, trained["visual"], seed=7), trained["expected"])
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "checkpoint.pt").write_bytes((trained["ckpt"] / "checkpoint.pt").read_bytes())
    with pytest.raises(ValueError, match="pass the experiment config"):
        registry.resolve_model(bare)
    assert torch.equal(
        registry.generate(registry.resolve_model(bare, config=trained["cfg"]), trained["visual"], seed=7),
        trained["expected"],
    )


@pytest.mark.slow
def test_log_promote_load_champion_generates_the_same(trained: dict[str, Any], store: str) -> None:
    import mlflow
    from mlflow import MlflowClient

    from v2s_models.cli import main as v2s
    from v2s_models.tracking import MLflowTracker

    tracker = MLflowTracker.create(
        tracking_uri=store, experiment="regnet", run_name="regnet_debug", artifact_root=None
    )
    tracker.log_metrics({"train/mel": 1.0}, step=1)
    model_uri = registry.log_model(trained["package"], tracking_uri=store, run_id=tracker.run_id)
    tracker.end()
    assert model_uri.startswith("models:/m-")
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    assert client.search_registered_models() == [], "logging a model must not register it"

    assert (
        v2s(
            [
                "promote",
                tracker.run_id,
                "--name",
                "regnet-debug",
                "--alias",
                "candidate",
                "--tracking-uri",
                store,
            ]
        )
        == 0
    )
    assert str(client.get_model_version_by_alias("regnet-debug", "candidate").version) == "1"
    assert v2s(["promote", "models:/regnet-debug@candidate", "--name", "regnet-debug", "--alias", "champion",
                "--tracking-uri", store]) == 0  # fmt: skip
    assert str(client.get_model_version_by_alias("regnet-debug", "champion").version) == "1"
    # promoting the same model again reuses its version instead of registering a copy
    again = registry.promote(model_uri, name="regnet-debug", alias="champion", tracking_uri=store)
    assert again["version"] == "1"
    assert len(client.search_model_versions("name = 'regnet-debug'")) == 1

    champion = registry.resolve_model("models:/regnet-debug@champion", tracking_uri=store)
    assert champion.data_settings == REGNET
    assert torch.equal(registry.generate(champion, trained["visual"], seed=7), trained["expected"])

    mlflow.set_tracking_uri(store)
    try:
        pyfunc = mlflow.pyfunc.load_model("models:/regnet-debug@champion")
        out = pyfunc.predict(trained["visual"].numpy(), params={"seed": 7})
    finally:
        mlflow.set_tracking_uri(None)
    np.testing.assert_array_equal(out, trained["expected"].numpy())

    with pytest.raises(ValueError, match="alias"):
        registry.promote(model_uri, name="regnet-debug", alias="production", tracking_uri=store)
    assert v2s(["promote", "0" * 32, "--name", "regnet-debug", "--tracking-uri", store]) != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_v2s_ui_serves_the_project_store(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "v2s_models.cli", "ui", "--root", str(tmp_path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the server's workers are stopped with it
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"v2s ui did not answer on port {port}: {err[-2000:]}")
                time.sleep(1)
        assert (tmp_path / "mlflow.db").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
