"""Ray Train entry point (ray_jobs/train.py) with real Ray, real gloo DDP and a real MLflow SQLite store.

- the REGNET debug config (the real GAN solver) on 2 workers, whose rank 1 dies abruptly (os._exit) at the
  first step of epoch 2, once: Ray replaces the worker group, training resumes from the epoch-1 checkpoint and
  finishes all epochs; the MLflow run has one value per epoch of each metric and ends FINISHED, with a model;
- a job that dies entirely (no restarts allowed) resumes when run again under the same run name, into the same
  MLflow run, and its first-epoch loss equals the plain loop's (same seed, same config, CPU). This one uses a
  small test-only solver (the REGNET debug generator trained on the mel loss alone), registered into
  `loop.SOLVERS` at test time: the driver sends its solver registry to the workers.

Both run on fake prepared data sets with the pipeline's layout (manifest + feature folders, random values).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch.nn.functional as F
from torch.utils.data import DataLoader

from v2s_models.data import MelVisualDataset, collate_dicts, read_manifest
from v2s_models.training import loop
from v2s_models.training.base import Solver

REPO = Path(__file__).resolve().parents[1]
FRAMES, VISUAL_DIM, N_MELS = 8, 16, 16  # the REGNET debug preset's sizes


class TinyMelSolver(Solver):
    """Test-only solver: the REGNET debug generator trained with MSE on both mel outputs (no GAN)."""

    paradigm = "gan_mel"

    def __init__(self, cfg: Any, **kwargs: Any) -> None:
        super().__init__(cfg, **kwargs)
        self.modules["generator"] = self.build_module("generator")
        self.build_optimizers()

    def datasets(self) -> tuple[MelVisualDataset, MelVisualDataset]:
        manifest = self.cfg["data"]["manifest"]
        train = read_manifest(manifest, split="train", root=self.root)
        val = read_manifest(manifest, split="val", root=self.root)
        return MelVisualDataset(train, root=self.root), MelVisualDataset(val, root=self.root)

    def collate_fn(self) -> Any:
        return collate_dicts

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        visual, mel = batch["visual"].to(self.device), batch["mel"].to(self.device)
        out = self.modules["generator"](visual, mel)
        loss = F.mse_loss(out.mel_decoder, mel) + F.mse_loss(out.mel_postnet, mel)
        opt = self.optimizers["generator"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"mel": float(loss.detach())}

    def validate(self, loader: DataLoader) -> dict[str, float]:
        g = self.unwrapped("generator")
        errs = [
            float(F.l1_loss(g.generate(b["visual"].to(self.device)), b["mel"].to(self.device)))
            for b in loader
        ]
        return {"mel_l1": float(np.mean(errs))}


def register_tiny_solver() -> None:
    loop.SOLVERS["gan_mel"] = f"{TinyMelSolver.__module__}.{TinyMelSolver.__qualname__}"


def write_fake_prepared_data(
    root: Path,
    *,
    train: int = 8,
    val: int = 4,
    seed: int = 0,
    frames: int = FRAMES,
    visual_dim: int = VISUAL_DIM,
    n_mels: int = N_MELS,
) -> Path:
    """A prepared-data folder with the pipeline's layout (manifest + per-clip regnet feature folders) holding
    random features: visual (frames, visual_dim) float16, mel (n_mels, 4 frames) float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(train + val):
        clip = f"cat{i % 2}/clip_{i:04d}"
        rel = Path("data/features/regnet") / clip
        d = root / rel
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "visual.npy", rng.standard_normal((frames, visual_dim)).astype(np.float16))
        np.save(d / "mel.npy", rng.random((n_mels, 4 * frames)).astype(np.float32))
        meta = {
            "key": f"fake-{seed}-{i}",
            "shapes": {"visual": [frames, visual_dim], "mel": [n_mels, 4 * frames]},
        }
        (d / "meta.json").write_text(json.dumps(meta))
        rows.append(
            {
                "clip_id": clip,
                "category": f"cat{i % 2}",
                "split": "train" if i < train else "val",
                "status": "ok",
                "features": {"regnet": str(rel)},
            }
        )
    manifest = root / "data/prepared/manifest.jsonl"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def tiny_config(**changes: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "name": "tiny",
        "paradigm": "gan_mel",
        "seed": 0,
        "model": {"generator": {"_component_": "v2s_models.builders.regnet_generator", "preset": "debug"}},
        "data": {"manifest": "data/prepared/manifest.jsonl", "preset": "regnet"},
        "optim": {"generator": {"name": "adam", "lr": 1.0e-3}},
        "losses": {"mel": 1.0},
        "batch_size": 4,
        "epochs": 2,
        "scaling": {"num_workers": 1, "use_gpu": False, "cpus_per_worker": 1},
    }
    cfg.update(changes)
    return cfg


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    write_fake_prepared_data(root)
    return root


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[None]:
    """A private 2-CPU Ray instance (its own temp dir: other Ray clusters on this machine are not touched)."""
    ray = pytest.importorskip("ray")
    tmp = Path(f"/tmp/v2s-rt-{uuid.uuid4().hex[:6]}")  # short: Ray's socket paths must stay < 108 chars
    old = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = str(tmp)
    # The dashboard stays on: without it Ray Train's placement-group cleaner cannot query the controller's
    # state (warnings every few seconds), and STACK.md reports Train inside Tune hanging without it.
    # PYTHONPATH lets the workers import this module's solver whatever the driver's working directory.
    ray.init(
        num_cpus=2,
        include_dashboard=True,
        _temp_dir=str(tmp / "ray"),
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},
    )
    try:
        yield
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = old
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture()
def tiny_solver() -> Iterator[None]:
    saved = dict(loop.SOLVERS)
    register_tiny_solver()
    yield
    loop.SOLVERS.clear()
    loop.SOLVERS.update(saved)


def _metric_history(tracking_uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow import MlflowClient

    hist = MlflowClient(tracking_uri=tracking_uri).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in hist)


@pytest.fixture(scope="module")
def regnet_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fake prepared data of the real regnet feature sizes (215 frames x 2560, mel 80 x 860)."""
    root = tmp_path_factory.mktemp("regnet_project")
    write_fake_prepared_data(root, train=4, val=2, frames=215, visual_dim=2560, n_mels=80)
    return root


@pytest.mark.slow
def test_killed_worker_is_replaced_and_training_resumes(
    regnet_project: Path, ray_instance: None, tmp_path: Path
) -> None:
    """The real REGNET debug config (GAN solver, generator + discriminator under DDP) on 2 gloo workers."""
    from mlflow import MlflowClient

    from ray_jobs.train import run_training
    from tests.faults import CrashAt
    from v2s_models.config import load_config

    config = REPO / "experiments/configs/regnet/debug.yaml"
    if not config.is_file():
        pytest.skip(f"{config} not found")
    cfg = load_config(config, {"epochs": 3, "scaling.num_workers": 2})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    marker = tmp_path / "fault.marker"
    out = run_training(
        cfg,
        root=regnet_project,
        storage=tmp_path / "ray_results",
        tracking_uri=uri,
        experiment="test-ray-train",
        max_failures=1,
        batch_hooks=[CrashAt(rank=1, epoch=2, step=0, marker=str(marker))],
    )
    assert marker.is_file(), "the fault was never injected: rank 1 did not reach epoch 2"
    assert "rank 1 exited at epoch 2 step 0" in marker.read_text()
    assert out.epochs == 3 and out.metrics["epoch"] == 3
    assert loop.load_checkpoint(out.checkpoint)["epoch"] == 3
    checkpoints = sorted(p.name for p in out.run_dir.glob("checkpoint_epoch_*"))
    assert checkpoints[-1] == "checkpoint_epoch_00003", checkpoints

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(out.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["scaling.num_workers"] == "2"
    assert run.data.tags["data.fingerprint"] and run.data.tags["v2s.config_hash"]
    # One value per epoch of every metric: epoch 1 was committed before the crash, so it was neither
    # retrained nor logged twice, and epoch 2 was logged once, after the restart.
    keys = [k for k in run.data.metrics if k.startswith(("train/", "val/"))]
    assert any(k.startswith("train/") for k in keys) and any(k.startswith("val/") for k in keys), keys
    for key in keys:
        history = _metric_history(uri, out.mlflow_run_id, key)
        assert [s for s, _ in history] == [1, 2, 3], (key, history)
        assert all(np.isfinite(v) for _, v in history), (key, history)
    assert out.model_uri is not None and out.model_uri.startswith("models:/m-")
    assert (out.package / "v2s_model.yaml").is_file()


@pytest.mark.slow
def test_dead_job_resumes_under_same_name_with_plain_loop_losses(
    project: Path, ray_instance: None, tiny_solver: None, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from ray_jobs.train import run_training
    from tests.faults import CrashAt

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = tiny_config(epochs=2)
    kwargs: dict[str, Any] = dict(
        root=project, storage=tmp_path / "ray_results", tracking_uri=uri, experiment="test-ray-train"
    )

    # The plain loop, same seed and config: its first-epoch mean loss is the reference.
    loop.seed_everything(0)
    solver = loop.build_solver(cfg, device="cpu", root=project)
    plain = loop.fit(solver, cfg, epochs=1)

    with pytest.raises(Exception):  # noqa: B017 (Ray's TrainingFailedError; the exact type is Ray's business)
        run_training(
            cfg,
            max_failures=0,
            batch_hooks=[CrashAt(rank=0, epoch=2, step=1, marker=str(tmp_path / "m"))],
            **kwargs,
        )
    state = json.loads((tmp_path / "ray_results/tiny/v2s_run.json").read_text())
    assert state["status"] == "FAILED"
    run_id = state["mlflow_run_id"]
    first = _metric_history(uri, run_id, "train/mel")
    assert [s for s, _ in first] == [1], "epoch 1 was reported before the job died"
    assert first[0][1] == pytest.approx(plain["train/mel"], rel=1e-6, abs=1e-9)  # bitwise here

    out = run_training(cfg, **kwargs)  # same name and storage: Ray Train V2 hands back the epoch-1 checkpoint
    assert out.resumed_from_epoch == 1
    assert out.mlflow_run_id == run_id, "a resumed job must continue the same MLflow run"
    assert [s for s, _ in _metric_history(uri, run_id, "train/mel")] == [1, 2]
    assert MlflowClient(tracking_uri=uri).get_run(run_id).info.status == "FINISHED"

    again = run_training(cfg, **kwargs)  # finished runs are not retrained
    assert again.already_finished and again.model_uri == out.model_uri
    with pytest.raises(ValueError, match="another config"):
        run_training(tiny_config(epochs=2, seed=1), **kwargs)


def test_overrides_parse() -> None:
    from ray_jobs.train import parse_overrides

    assert parse_overrides(["losses.mel=100", "scaling.use_gpu=true", "name=x"]) == {
        "losses.mel": 100,
        "scaling.use_gpu": True,
        "name": "x",
    }
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["losses.mel"])


def test_production_code_has_no_test_fault_switch() -> None:
    """The fault injector lives in tests/ (a batch hook); no production module reads a test-only variable."""
    for path in (REPO / "ray_jobs").glob("*.py"):
        text = path.read_text()
        assert "V2S_TEST_" not in text and "FaultSpec" not in text, path


def test_cli_rejects_bad_config_before_starting_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ray_jobs.train import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparadigm: nope\n")
    assert main([str(bad), "--root", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().err
    assert main([str(tmp_path / "missing.yaml"), "--root", str(tmp_path)]) == 2


def test_project_root_refuses_an_uploaded_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ray_jobs.cluster import ROOT_ENV, project_root

    monkeypatch.delenv(ROOT_ENV, raising=False)
    uploaded = tmp_path / "runtime_resources" / "working_dir_files" / "_ray_pkg_x"
    uploaded.mkdir(parents=True)
    monkeypatch.chdir(uploaded)
    with pytest.raises(ValueError, match="--root"):
        project_root()
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    assert project_root() == tmp_path.resolve()


def test_an_attempt_that_died_before_its_state_file_leaves_no_second_mlflow_run(tmp_path: Path) -> None:
    """A lost node can kill a trial between creating its MLflow run and writing the state file; the next attempt
    takes that RUNNING run over (same Ray run directory and config) instead of starting a second one. A run of
    another config, or one already ended, is never adopted."""
    from mlflow import MlflowClient

    from ray_jobs.train import _open_tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = {"name": "toy", "paradigm": "gan_mel", "epochs": 1}
    tags = {"v2s.ray_run_dir": str(tmp_path / "runs" / "toy"), "v2s.config_hash": "abc"}

    def attempt(tags: dict[str, str]) -> str:
        run_dir = tmp_path / "runs" / "toy"
        (run_dir / "state.json").unlink(missing_ok=True)  # the first attempt died before writing it
        shutil.rmtree(run_dir, ignore_errors=True)
        tracker = _open_tracker(
            cfg, root=tmp_path, run_name="toy", run_dir=run_dir, state={}, tracking_uri=uri,
            experiment="exp", tags=tags,
        )  # fmt: skip
        return str(tracker.run_id)

    first = attempt(tags)
    assert attempt(tags) == first
    assert attempt({**tags, "v2s.config_hash": "other"}) != first
    client = MlflowClient(tracking_uri=uri)
    client.set_terminated(first, status="FAILED")
    assert attempt(tags) != first
    exp = client.get_experiment_by_name("exp")
    assert len(client.search_runs([exp.experiment_id])) == 3


def test_writing_samples_leaves_the_random_generators_as_they_were(tmp_path: Path) -> None:
    """A tracked run writes samples every few epochs; an untracked one does not. Drawing them must not move the
    training that follows (session 9: the tracked demo VarietySound left the untracked run's path at epoch 4)."""
    import random

    import torch

    from ray_jobs.worker import _write_artifacts

    class Drawing:  # a solver whose samples draw from every generator, as generation and vocoding may
        def train(self, mode: bool) -> None:
            pass

        def write_artifacts(self, out_dir: Path, loader: Any) -> list[Path]:
            torch.rand(3), np.random.rand(3), random.random()  # noqa: NPY002
            return []

    class NoTracker:
        def log_artifact(self, *a: Any, **k: Any) -> None:
            raise AssertionError("nothing was written, nothing to log")

    loop.seed_everything(5)
    expected = (torch.rand(2), np.random.rand(2), random.random())  # noqa: NPY002
    loop.seed_everything(5)
    _write_artifacts(Drawing(), NoTracker(), [0, 1], None, 1, 0, 1)
    after = (torch.rand(2), np.random.rand(2), random.random())  # noqa: NPY002
    assert (
        torch.equal(after[0], expected[0])
        and np.array_equal(after[1], expected[1])
        and after[2] == expected[2]
    )
