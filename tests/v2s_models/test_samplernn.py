"""Tests for SampleRNN and Zhou et al.'s Visual-to-Sound models (v2s_models/samplernn.py, video_encoders.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from v2s_models.audio import quantize_linear
from v2s_models.modules.video_encoders import FrameEncoder, samples_per_video_frame
from v2s_models.samplernn import SampleRNN, sample_from_logits, samplernn_debug, tbptt_chunks
from v2s_models.settings import ZHOU
from v2s_models.visual_samplernn import (
    VisualSampleRNN,
    zhou_flow_debug,
    zhou_flow_paper,
    zhou_frame_debug,
    zhou_frame_paper,
    zhou_seq_debug,
    zhou_seq_paper,
)

DEBUG_VISUAL_DIM, DEBUG_FLOW_DIM = 24, 12


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _silence_then(model_lookback: int, samples: torch.Tensor, silence: int = 128) -> torch.Tensor:
    pad = torch.full((samples.shape[0], model_lookback), silence, dtype=torch.long)
    return torch.cat([pad, samples.long()], dim=1)


def _tone_clip(batch: int, length: int) -> torch.Tensor:
    """Quantised test audio (B, N): two harmonics, a different pitch per clip."""
    t = np.arange(length) / 16000.0
    rows = [
        0.6 * np.sin(2 * np.pi * (300 + 170 * b) * t) + 0.2 * np.sin(2 * np.pi * 1234 * t)
        for b in range(batch)
    ]
    return torch.from_numpy(quantize_linear(np.stack(rows)).astype(np.int64))


def _visual(kind: str, batch: int, frames: int) -> dict[str, torch.Tensor]:
    out = {"visual": torch.randn(batch, frames, DEBUG_VISUAL_DIM)}
    if kind == "flow":
        out["flow"] = torch.randn(batch, frames, DEBUG_FLOW_DIM)
    return out


VISUAL_DEBUG: dict[str, Callable[[], VisualSampleRNN]] = {
    "frame": zhou_frame_debug,
    "seq": zhou_seq_debug,
    "flow": zhou_flow_debug,
}


# --- paper sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", [zhou_frame_paper, zhou_seq_paper, zhou_flow_paper])
def test_paper_size_chunk_shapes(preset: Callable[[], VisualSampleRNN]) -> None:
    """A 10 s clip at 16 kHz (160000 samples) with 156 frames of 4096-d features at 15.6 fps."""
    model = preset().eval()
    assert ZHOU.num_frames == 156 and ZHOU.num_samples == 160000
    feats = {"visual": torch.randn(1, ZHOU.num_frames, 4096)}
    if model.encoder == "flow":
        feats["flow"] = torch.randn(1, ZHOU.num_frames, 4096)
    clip = torch.randint(0, 256, (1, ZHOU.num_samples))
    chunks = list(tbptt_chunks(clip, chunk_len=1024, lookback=model.lookback, silence=model.silence))
    assert len(chunks) == 157, f"{len(chunks)=}"  # 156 full chunks + 256 samples
    assert chunks[-1][0] == 159744 and chunks[-1][1].shape == (1, 16 + 256), f"{chunks[-1][1].shape=}"
    with torch.no_grad():
        logits, state = model(chunks[0][1], hidden=None, start_sample=0, **feats)
        assert logits.shape == (1, 1024, 256), f"{logits.shape=}"
        assert [tuple(h.shape) for h in state.tiers] == [(1, 1, 1024)] * 2
        # The clip's last chunk still finds video frames (frame 155 covers its coarse steps).
        start, last = chunks[-1]
        logits, _ = model(last, hidden=state, start_sample=start, **feats)
        assert logits.shape == (1, 256, 256), f"{logits.shape=}"


def test_frame_step_matches_paper() -> None:
    assert samples_per_video_frame(ZHOU.sample_rate, ZHOU.fps) == 1026  # ceil(16000 / 15.6)
    assert samples_per_video_frame(159744 / 10, 15.6) == 1024  # the paper's s


def test_frame_encoder_repeats_each_frame_for_its_coarse_steps() -> None:
    enc = FrameEncoder(visual_dim=3, sample_rate=16000, fps=15.6, step_samples=16, proj_dim=None)
    visual = torch.arange(156, dtype=torch.float32).view(1, 156, 1).expand(2, -1, 3)
    cond = enc(
        visual, start_sample=1024, num_steps=64
    )  # samples 1024..2047: frame 0 until 1025, then frame 1
    assert cond.shape == (2, 64, 3), f"{cond.shape=}"
    first_samples = 1024 + 16 * torch.arange(64)
    assert torch.equal(cond[0, :, 0], (first_samples // 1026).float())
    last = enc(visual, start_sample=ZHOU.num_samples - 16, num_steps=1)  # the clip's last coarse step
    assert float(last[0, 0, 0]) == 155.0
    with pytest.raises(ValueError, match="visual features cover"):
        enc(visual, start_sample=156 * 1026, num_steps=1)
    with pytest.raises(ValueError, match="visual features cover"):
        enc(visual[:, :10], start_sample=10 * 1026 - 16, num_steps=2)


# --- truncated BPTT ------------------------------------------------------------------------------------------


def test_tbptt_hidden_carry_equals_one_long_forward() -> None:
    model = SampleRNN(frame_sizes=(16, 4), dim=24, n_rnn=2, emb_dim=8, cond_dim=5).eval()
    clip = torch.randint(0, 256, (3, 256))
    cond = torch.randn(3, 256 // 16, 5)
    full, _ = model(_silence_then(16, clip), cond=cond)
    hidden, parts = None, []
    for start, chunk in tbptt_chunks(clip, chunk_len=64, lookback=16, silence=model.silence):
        logits, hidden = model(chunk, hidden=hidden, cond=cond[:, start // 16 : (start + 64) // 16])
        hidden = hidden.detach()
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["frame", "seq", "flow"])
def test_visual_tbptt_carry_equals_one_long_forward(kind: str) -> None:
    model = VISUAL_DEBUG[kind]().eval()
    clip = torch.randint(0, 256, (2, 4096))
    feats = _visual(kind, 2, 5)  # 5 frames x 1026 samples cover 4096 samples
    full, _ = model(_silence_then(16, clip), **feats)
    hidden, parts = None, []
    for start, chunk in tbptt_chunks(clip, chunk_len=1024, lookback=16, silence=128):
        logits, hidden = model(chunk, hidden=hidden, start_sample=start, **feats)
        parts.append(logits)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


# --- gradients and overfitting ----------------------------------------------------------------------------------


def _loss(model: torch.nn.Module, clip: torch.Tensor, feats: dict[str, torch.Tensor]) -> torch.Tensor:
    logits, _ = model(_silence_then(16, clip), **feats)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, 256), clip.reshape(-1))


@pytest.mark.parametrize("kind", ["plain", "frame", "seq", "flow"])
def test_gradients_reach_every_parameter(kind: str) -> None:
    model = samplernn_debug() if kind == "plain" else VISUAL_DEBUG[kind]()
    feats = {} if kind == "plain" else _visual(kind, 2, 2)
    _loss(model, torch.randint(0, 256, (2, 128)), feats).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, f"no gradient reaches {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient at {name}"


@pytest.mark.parametrize("kind", ["plain", "frame", "seq", "flow"])
def test_debug_preset_overfits_one_batch(kind: str) -> None:
    model = samplernn_debug() if kind == "plain" else VISUAL_DEBUG[kind]()
    feats = {} if kind == "plain" else _visual(kind, 2, 2)
    clip = _tone_clip(2, 96)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(80):  # it memorises 192 samples within ~50 steps at lr 1e-2
        loss = _loss(model, clip, feats)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = float(_loss(model, clip, feats).detach())
    assert final <= 0.1 * first, f"{kind}: loss {first:.3f} -> {final:.3f}"


# --- incremental generation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame_sizes", "n_rnn", "cond_dim", "external_h0"),
    [((16, 4), 1, 0, False), ((16, 4), 2, 6, False), ((16, 4), 2, 0, True), ((32, 8, 2), 1, 3, False)],
)
def test_incremental_generation_matches_full_forward(
    frame_sizes: tuple[int, ...], n_rnn: int, cond_dim: int, external_h0: bool
) -> None:
    model = SampleRNN(
        frame_sizes=frame_sizes,
        mlp_context=2 if frame_sizes[-1] == 2 else 4,
        dim=24,
        n_rnn=n_rnn,
        emb_dim=8,
        cond_dim=cond_dim,
        external_h0=external_h0,
    ).eval()
    with torch.no_grad():  # a trained-looking h0 and output bias, so the test does not rest on zeros
        for tier in model.tiers:
            if tier.h0 is not None:
                tier.h0.normal_(0, 0.5)
    batch, n = 3, 192
    lookback = model.lookback
    cond = torch.randn(batch, n // lookback, cond_dim) if cond_dim else None
    h0 = torch.tanh(torch.randn(n_rnn, batch, 24)) if external_h0 else None
    gen = model.generate(
        batch=batch,
        num_samples=n,
        cond=cond,
        h0_init=h0,
        temperature=0.9,
        generator=torch.Generator().manual_seed(7),
    )
    again = model.generate(
        batch=batch,
        num_samples=n,
        cond=cond,
        h0_init=h0,
        temperature=0.9,
        generator=torch.Generator().manual_seed(7),
    )
    assert gen.shape == (batch, n) and gen.dtype == torch.long, f"{gen.shape=} {gen.dtype=}"
    assert torch.equal(gen, again), "same seed, different samples"
    assert len(torch.unique(gen)) > 10, "generation collapsed to a few levels; the test would be weak"

    seq = _silence_then(lookback, gen, silence=model.silence)
    with torch.no_grad():
        full, _ = model(seq, cond=cond, h0_init=h0)
    incremental = model.incremental_logits(seq, cond=cond, h0_init=h0)
    torch.testing.assert_close(incremental, full, atol=1e-4, rtol=1e-4)

    # Replaying the draws of the same seed on the teacher-forced logits gives the same samples, sample by sample.
    g = torch.Generator().manual_seed(7)
    replay = torch.stack(
        [sample_from_logits(full[:, t], temperature=0.9, generator=g) for t in range(n)], dim=1
    )
    assert torch.equal(replay, gen), f"first mismatch at {(replay != gen).nonzero()[:1].tolist()}"


@pytest.mark.parametrize("kind", ["frame", "seq", "flow"])
def test_visual_generation_is_the_model_forward(kind: str) -> None:
    """generate() uses the same visual conditioning (frame alignment, h0) as forward()."""
    model = VISUAL_DEBUG[kind]().eval()
    feats = _visual(kind, 2, 3)
    n = 2064  # crosses two video-frame boundaries (1026, 2052), and is not a multiple of 16 (2064 = 129 * 16)
    gen = model.generate(num_samples=n, generator=torch.Generator().manual_seed(3), **feats)
    with torch.no_grad():
        full, _ = model(_silence_then(16, gen), **feats)
    g = torch.Generator().manual_seed(3)
    replay = torch.stack([sample_from_logits(full[:, t], generator=g) for t in range(n)], dim=1)
    assert torch.equal(replay, gen)


def test_generation_cost_is_linear_in_length() -> None:
    """Each tier runs once per frame, on one frame per clip: the work per sample does not grow with length."""
    model = samplernn_debug().eval()
    calls: dict[str, list[tuple[int, ...]]] = {"coarse": [], "middle": [], "mlp": []}

    def counting(name: str, fn: Callable[..., object]) -> Callable[..., object]:
        def wrapped(*args: torch.Tensor) -> object:
            calls[name].append(tuple(args[0].shape))
            return fn(*args)

        return wrapped

    model.tiers[0].step = counting("coarse", model.tiers[0].step)
    model.tiers[1].step = counting("middle", model.tiers[1].step)
    model.mlp.step = counting("mlp", model.mlp.step)
    for n in (320, 640):
        for v in calls.values():
            v.clear()
        model.generate(batch=2, num_samples=n)
        assert len(calls["coarse"]) == n // 16 and len(calls["middle"]) == n // 4 and len(calls["mlp"]) == n
        assert set(calls["coarse"]) == {(2, 16)} and set(calls["middle"]) == {(2, 4)}
        assert set(calls["mlp"]) == {(2, 4)}


# --- conditioning and errors -------------------------------------------------------------------------------------


def test_seq_h0_changes_the_output() -> None:
    model = zhou_seq_debug().eval()
    seq = _silence_then(16, torch.randint(0, 256, (1, 64)))
    with torch.no_grad():
        a, _ = model(seq, torch.randn(1, 4, DEBUG_VISUAL_DIM))
        b, _ = model(seq, torch.randn(1, 4, DEBUG_VISUAL_DIM))
        c, _ = model(seq, torch.zeros(1, 4, DEBUG_VISUAL_DIM))
        d, _ = model(seq, torch.zeros(1, 4, DEBUG_VISUAL_DIM))
    assert (a - b).abs().max() > 1e-3
    torch.testing.assert_close(c, d)


def test_bad_inputs_raise_clear_errors() -> None:
    model = samplernn_debug()
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.randint(0, 256, (1, 16 + 20)))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        model(torch.full((1, 32), 256))
    with pytest.raises(ValueError, match="cond_dim=0"):
        model(torch.randint(0, 256, (1, 32)), cond=torch.randn(1, 1, 3))
    with pytest.raises(ValueError, match="h0_init"):
        model(torch.randint(0, 256, (1, 32)), h0_init=torch.zeros(2, 1, 32))
    frame = zhou_frame_debug()
    with pytest.raises(ValueError, match="visual"):
        frame(torch.randint(0, 256, (2, 32)), torch.randn(2, 3, 7))
    flow = zhou_flow_debug()
    with pytest.raises(ValueError, match="flow"):
        flow(torch.randint(0, 256, (1, 32)), torch.randn(1, 3, DEBUG_VISUAL_DIM))
    seq = zhou_seq_debug()
    with pytest.raises(ValueError, match="h0_init"):
        seq.sample_rnn.generate(batch=1, num_samples=4)
    with pytest.raises(ValueError, match="encoder"):
        VisualSampleRNN(encoder="audio", visual_dim=4, sample_rate=16000, fps=15.6)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frame size"):
        SampleRNN(frame_sizes=(16, 6))
