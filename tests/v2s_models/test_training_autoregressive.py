"""Tests for the autoregressive solver (v2s_models/training/autoregressive.py) on the prepared tiny data.

The data: the tiny built-in set, prepared once per test session by tests/conftest.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from v2s_models import components
from v2s_models.config import load_config
from v2s_models.interface import ModelInputs
from v2s_models.samplernn import SampleRNN, SampleRNNState
from v2s_models.training.autoregressive import AutoregressiveSolver, nats_to_bits
from v2s_models.training.loop import build_solver, fit, load_checkpoint, seed_everything

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs"
MANIFEST = Path("data/prepared/manifest.jsonl")
DEBUG_CONFIGS = {
    "frame": "zhou/frame_debug.yaml",
    "seq": "zhou/seq_debug.yaml",
    "flow": "zhou/flow_debug.yaml",
    "seq2seq": "correlation/seq2seq_debug.yaml",
}


@pytest.fixture(scope="module")
def data_root(tiny_data_root: Path) -> Path:
    """The prepared tiny data set (tests/conftest.py builds it once per session)."""
    return tiny_data_root


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _config(kind: str, **overrides: Any) -> dict[str, Any]:
    return load_config(CONFIGS / DEBUG_CONFIGS[kind], overrides)


def _solver(cfg: dict[str, Any], root: Path, seed: int | None = None) -> AutoregressiveSolver:
    seed_everything(int(cfg["seed"]) if seed is None else seed)  # the weights' initialisation
    solver = build_solver(cfg, root=root)
    assert isinstance(solver, AutoregressiveSolver)
    return solver


def _epoch_losses(cfg: dict[str, Any], root: Path) -> list[float]:
    solver = _solver(cfg, root)
    losses: list[float] = []
    original = solver.train_step

    def record(batch: Any) -> dict[str, float]:
        out = original(batch)
        losses.append(out["nll"])
        return out

    solver.train_step = record  # type: ignore[method-assign]
    fit(solver, cfg, epochs=1)
    return losses


# ---------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", list(DEBUG_CONFIGS))
def test_debug_config_trains_and_validates(kind: str, data_root: Path, tmp_path: Path) -> None:
    cfg = _config(kind)
    solver = _solver(cfg, data_root)
    metrics = fit(solver, cfg, checkpoint_dir=tmp_path / "ckpt", epochs=1)
    # The tiny data has no val split: validation ran on the test split and says so.
    for key in ("train/nll", "train/nll_bits", "val/test_split/nll", "val/test_split/nll_bits"):
        assert math.isfinite(metrics[key]), f"{key}: {metrics}"
    assert 3.0 < metrics["train/nll"] < 6.5, metrics  # near ln(256) = 5.55 nats after a few steps
    assert metrics["val/test_split/nll_bits"] == pytest.approx(metrics["val/test_split/nll"] / math.log(2))
    assert "val/test_split/gen_envelope_corr" in metrics and "val/test_split/gen_rms_ratio" in metrics
    assert load_checkpoint(tmp_path / "ckpt")["epoch"] == 1


def test_write_artifacts_writes_generated_and_real_wavs_and_a_plot(data_root: Path, tmp_path: Path) -> None:
    import soundfile as sf

    cfg = _config("flow", **{"train.artifact_clips": 2})
    solver = _solver(cfg, data_root)
    paths = solver.write_artifacts(tmp_path / "art", None)  # default: the validation (here test) clips
    assert sorted(p.suffix for p in paths) == [".png", ".png", ".wav", ".wav", ".wav", ".wav"], paths
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0, p
        if p.suffix == ".wav":
            wav, sr = sf.read(p)
            assert sr == 16000 and wav.shape == (int(cfg["train"]["artifact_seconds"] * sr),), (p, wav.shape)
    real = [p for p in paths if p.name.endswith("_real.wav")][0]
    clip = solver._val_set[0]  # the first clip's real excerpt, dequantised
    expected = clip["wav_q"][:1024].float() * (2 / 255) - 1
    assert np.allclose(sf.read(real)[0], expected.numpy(), atol=1 / 32767 + 1e-6)


def test_nll_bits_is_nats_over_ln2() -> None:
    assert nats_to_bits(math.log(256)) == pytest.approx(8.0)
    assert float(nats_to_bits(torch.tensor(2.0))) == pytest.approx(2.0 / math.log(2.0))


@pytest.mark.parametrize("kind", ["frame", "flow"])
def test_validation_nll_is_the_teacher_forced_cross_entropy(kind: str, data_root: Path) -> None:
    """validate() = cross-entropy of one uninterrupted forward over each clip's first window, from silence."""
    cfg = _config(kind, **{"train.val_generate_clips": 0, "train.val_max_seconds": 0.192})  # 3072 = 3 chunks
    solver = _solver(cfg, data_root)
    _, val = solver.datasets()
    loader = torch.utils.data.DataLoader(val, batch_size=3, collate_fn=solver.collate_fn())
    solver.train(False)
    metrics = solver.validate(loader)
    model = solver.unwrapped("model")
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            n = 3072
            wav = batch["wav_q"][:, :n]
            visual = batch["visual"][:, : math.ceil(n / solver.visual_hop)]
            extra = {}
            if kind == "flow":
                visual, extra["flow"] = visual[..., :1280], visual[..., 1280:]
            silence = torch.full((wav.shape[0], model.lookback), model.silence, dtype=torch.long)
            logits, _ = model(torch.cat([silence, wav], dim=1), visual, **extra)
            total += F.cross_entropy(logits.transpose(1, 2), wav, reduction="sum").item()
            count += wav.numel()
    assert metrics["test_split/nll"] == pytest.approx(total / count, rel=1e-5)
    assert metrics["test_split/nll_bits"] == pytest.approx(total / count / math.log(2), rel=1e-5)


def test_crop_takes_the_video_steps_of_the_audio_window(data_root: Path) -> None:
    """Random windows start on the video grid; the visual crop is the window's frames (flow: split halves)."""
    solver = _solver(_config("flow"), data_root)
    hop, batch, frames = solver.visual_hop, 3, 156
    wav = torch.arange(160000).repeat(batch, 1)  # sample index as the value
    visual = torch.arange(frames, dtype=torch.float32)[None, :, None].repeat(batch, 1, 2560)
    visual[:, :, 1280:] += 1000.0  # motion half
    torch.manual_seed(3)
    w, v, extra = solver.crop(wav, visual, seconds=0.128, random=True)
    assert (
        w.shape == (batch, 2048) and v.shape == (batch, 2, 1280) and extra["flow"].shape == (batch, 2, 1280)
    )
    starts = w[:, 0]
    assert (starts % hop == 0).all() and len(set(starts.tolist())) > 1, starts
    for b in range(batch):
        assert torch.equal(w[b], torch.arange(int(starts[b]), int(starts[b]) + 2048))
        first_frame = int(starts[b]) // hop
        assert v[b, :, 0].tolist() == [first_frame, first_frame + 1]
        assert extra["flow"][b, :, 0].tolist() == [first_frame + 1000.0, first_frame + 1001.0]
    w, v, _ = solver.crop(wav, visual, seconds=None, random=False)
    assert w.shape == (batch, 160000) and v.shape == (batch, frames, 1280)


def test_train_step_is_one_adam_step_per_tbptt_chunk(data_root: Path) -> None:
    cfg = _config("seq2seq", **{"train.max_seconds": 0.192})  # 3072 samples: 3 chunks of 1024
    solver = _solver(cfg, data_root)
    train, _ = solver.datasets()
    batch = solver.collate_fn()([train[0], train[1]])
    first = solver.train_step(batch)
    # Adam's step count per parameter: the SampleRNN learns on every chunk; the video encoder and the learned
    # initial states only on the first (later chunks carry the detached state), so they get no gradient there.
    state = solver.optimizers["model"].state_dict()["state"]
    names = [n for n, p in solver.unwrapped("model").named_parameters() if p.requires_grad]
    steps = {name: int(state[i]["step"]) for i, name in enumerate(names)}
    first_chunk_only = {n for n in names if n.startswith("encoder.") or n.endswith(".h0")}
    assert {steps[n] for n in first_chunk_only} == {1}, steps
    assert {steps[n] for n in names if n not in first_chunk_only} == {3}, steps
    assert first["nll_bits"] == pytest.approx(first["nll"] / math.log(2))
    for _ in range(8):
        last = solver.train_step(batch)
    assert last["nll"] < first["nll"] - 0.3, (first, last)  # the same clips: the loss must fall


@pytest.mark.parametrize("kind", ["frame", "seq2seq"])
def test_same_seed_same_first_epoch_losses(kind: str, data_root: Path) -> None:
    cfg = _config(kind, **{"data.val_split": None})  # losses only: no validation
    a, b = _epoch_losses(cfg, data_root), _epoch_losses(cfg, data_root)
    assert len(a) == 2 and a == b, (a, b)
    other = _epoch_losses({**cfg, "seed": 1}, data_root)
    assert other != a, "a different seed must change the initialisation and the windows"


@pytest.mark.parametrize(("kind", "val_split"), [("frame", "val"), ("flow", None)])
def test_resume_equals_uninterrupted_training(
    kind: str, val_split: str | None, data_root: Path, tmp_path: Path
) -> None:
    cfg = _config(kind, **{"train.val_generate_clips": 0, "data.val_split": val_split})
    straight = _solver(cfg, data_root)
    m_straight = fit(straight, cfg, checkpoint_dir=tmp_path / "a", epochs=2)

    first = _solver(cfg, data_root)
    fit(first, cfg, checkpoint_dir=tmp_path / "b", epochs=1)
    resumed = _solver(cfg, data_root, seed=123)  # other initial weights: the checkpoint must replace them
    m_resumed = fit(resumed, cfg, checkpoint_dir=tmp_path / "b", epochs=2)

    assert m_resumed == m_straight
    sa, sb = straight.state_dict(), resumed.state_dict()
    for k, v in sa["modules"]["model"].items():
        assert torch.equal(v, sb["modules"]["model"][k]), k
    assert sa["optimizers"]["model"]["state"].keys() == sb["optimizers"]["model"]["state"].keys()


def test_bad_configs_fail_with_the_key(data_root: Path) -> None:
    cfg = _config("seq")
    cfg["model"]["model"]["visual_dim"] = 2560
    solver = _solver(cfg, data_root)
    with pytest.raises(ValueError, match="visual_dim"):
        solver.datasets()
    with pytest.raises(ValueError, match="visual_part"):
        _solver(_config("flow", **{"data.visual_part": "appearance"}), data_root)
    with pytest.raises(ValueError, match="tbptt_chunk"):
        _solver(_config("seq", **{"train.tbptt_chunk": 1000}), data_root)
    with pytest.raises(ValueError, match="losses"):
        _solver(_config("seq", **{"losses": {"mel": 1.0}}), data_root)


def test_generation_is_reproducible_and_uses_vision_only(data_root: Path) -> None:
    """Same weights + same val_seed -> the same snippet; replacing the real audio changes nothing."""
    solver = _solver(_config("seq"), data_root)
    _, val = solver.datasets()
    loader = torch.utils.data.DataLoader(val, batch_size=2, collate_fn=solver.collate_fn())
    a = solver.generate_clips(loader, 2, 0.016)
    b = solver.generate_clips(loader, 2, 0.016)
    assert a is not None and b is not None and a["generated"].shape == (2, 256)
    assert torch.equal(a["generated"], b["generated"])
    assert np.abs(a["generated"].numpy()).max() <= 1.0
    items = [{**val[i], "wav_q": torch.randint(0, 256, val[i]["wav_q"].shape)} for i in (0, 1)]
    other_audio = solver.generate_clips([solver.collate_fn()(items)], 2, 0.016)
    assert other_audio is not None and torch.equal(other_audio["generated"], a["generated"])
    assert not torch.equal(other_audio["real"], a["real"])


@pytest.mark.parametrize(
    "name",
    [f"zhou/{enc}_{size}.yaml" for enc in ("frame", "seq", "flow") for size in ("paper", "demo")]
    + ["correlation/seq2seq_paper.yaml", "correlation/seq2seq_demo.yaml"],
)
def test_shipped_configs_build_their_solver(name: str) -> None:
    cfg = load_config(CONFIGS / name)
    solver = build_solver(cfg)
    model = solver.unwrapped("model")
    paper = name.endswith("_paper.yaml")
    assert model.sample_rnn.dim == (1024 if paper else 64), name
    assert cfg["batch_size"] == (128 if paper else 16) and cfg["optim"]["model"]["lr"] == 1e-3
    assert solver.chunk_len == 1024 and solver.grad_clip == 1.0


class _ToyFlowSampleRNN(nn.Module):
    """A user's model, unknown to the solver: mean-pooled appearance and flow -> a small SampleRNN's initial
    state. It implements SoundModel and the autoregressive forward, nothing else."""

    def __init__(self, *, visual_dim: int, flow_dim: int) -> None:
        super().__init__()
        self.inputs = ModelInputs(visual_dim=visual_dim + flow_dim, flow_dim=flow_dim, output="waveform")
        self.to_h0 = nn.Linear(visual_dim + flow_dim, 16)
        self.sample_rnn = SampleRNN(frame_sizes=(16, 4), dim=16, q_levels=256, emb_dim=8, external_h0=True)
        self.lookback, self.silence = self.sample_rnn.lookback, self.sample_rnn.silence

    def _h0(self, visual: Tensor, flow: Tensor) -> Tensor:
        return torch.tanh(self.to_h0(torch.cat([visual, flow], dim=-1).mean(dim=1)))[None]  # (1, B, 16)

    def forward(
        self,
        samples_q: Tensor,
        visual: Tensor,
        *,
        flow: Tensor,
        hidden: SampleRNNState | None = None,
        start_sample: int = 0,
    ) -> tuple[Tensor, SampleRNNState]:
        h0 = self._h0(visual, flow) if hidden is None else None
        return self.sample_rnn(samples_q, hidden=hidden, h0_init=h0)

    def model_inputs(self) -> ModelInputs:
        return self.inputs

    def start_video(
        self, *, generator: torch.Generator, reference_mel: Tensor | None = None, temperature: float = 1.0
    ) -> tuple[torch.Generator, float]:
        return generator, temperature

    def generate_windows(
        self,
        windows: Tensor,
        context: tuple[torch.Generator, float],
        *,
        num_samples: int | None = None,
        background_mel: Tensor | None = None,
    ) -> Tensor:
        assert num_samples is not None
        visual, flow = self.inputs.split_flow(windows)
        assert flow is not None, f"{windows.shape=}"
        q = self.sample_rnn.generate(
            batch=windows.shape[0],
            num_samples=num_samples,
            h0_init=self._h0(visual, flow),
            generator=context[0],
            temperature=context[1],
        )
        return q.float().cpu() / 127.5 - 1.0


@pytest.fixture
def toy_component() -> Any:
    components.register("tests.toy_flow_samplernn", _ToyFlowSampleRNN)
    yield "tests.toy_flow_samplernn"
    components.unregister("tests.toy_flow_samplernn")


def test_a_user_model_with_the_interface_trains_validates_and_writes_artifacts(
    toy_component: str, data_root: Path, tmp_path: Path
) -> None:
    """The solver asks the model's model_inputs() only: a flow model it has never seen trains unchanged."""
    cfg = _config("flow")
    cfg["model"]["model"] = {"_component_": toy_component, "visual_dim": 1280, "flow_dim": 1280}
    solver = _solver(cfg, data_root)
    assert (
        solver.visual_part == "all" and solver.visual_hop == 1026
    )  # 16 kHz / 15.6 fps, from the data preset
    metrics = fit(solver, cfg, epochs=1)
    for key in ("train/nll", "val/test_split/nll", "val/test_split/gen_envelope_corr"):
        assert math.isfinite(metrics[key]), f"{key}: {metrics}"
    paths = solver.write_artifacts(tmp_path / "art", None)
    assert sorted(p.suffix for p in paths) == [".png", ".wav", ".wav"], paths

    cfg["model"]["model"]["visual_dim"] = 1000
    with pytest.raises(ValueError, match=r"model\.model\.visual_dim is 1000 .* give 1280"):
        _solver(cfg, data_root).datasets()


def test_models_without_the_interface_or_with_another_frame_rate_are_refused(data_root: Path) -> None:
    cfg = _config("seq")
    cfg["model"]["model"] = {"_component_": "v2s_models.builders.correlation_tower", "preset": "debug"}
    with pytest.raises(ValueError, match="builds a CorrelationTower; the autoregressive paradigm trains"):
        _solver(cfg, data_root)
    # The Frame encoder indexes video frames by its own sample rate / fps: they must be the data preset's.
    with pytest.raises(ValueError, match="steps 640 samples per visual step but data preset 'zhou' has 1026"):
        _solver(_config("frame", **{"model.model.fps": 25.0}), data_root)
