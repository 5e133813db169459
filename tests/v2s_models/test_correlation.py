"""Tests for the correlation tower, the seq2seq generator and sequence_nll (v2s_models/correlation.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from v2s_models.audio import quantize_linear
from v2s_models.correlation import (
    correlation_debug,
    correlation_loss,
    correlation_paper,
    make_pairs,
    seq2seq_debug,
    seq2seq_paper,
    sequence_nll,
)
from v2s_models.samplernn import sample_from_logits, tbptt_chunks
from v2s_models.visual_samplernn import zhou_frame_debug

VIDEO_DIM, AUDIO_DIM = 24, 8


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)


def _with_silence(samples: torch.Tensor) -> torch.Tensor:
    return torch.cat([torch.full((samples.shape[0], 16), 128, dtype=torch.long), samples], dim=1)


# --- correlation tower -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("video_dim", [1024, 1280])
def test_paper_size_shapes(video_dim: int) -> None:
    """Up to 300 one-second steps of (1024-d RGB or our 1280-d) video and 128-d audio features."""
    model = correlation_paper(video_dim=video_dim).eval()
    video, audio = torch.randn(2, 300, video_dim), torch.randn(2, 300, 128)
    probs = model.score(video, audio)
    assert probs.shape == (2,), f"{probs.shape=}"
    assert bool(((probs > 0) & (probs < 1)).all())


def test_make_pairs_builds_positives_and_both_kinds_of_negatives() -> None:
    video, audio = torch.randn(4, 10, VIDEO_DIM), torch.randn(4, 10, AUDIO_DIM)
    v, a, labels = make_pairs(video, audio, generator=torch.Generator().manual_seed(0), min_shift=2)
    assert v.shape == (12, 10, VIDEO_DIM) and a.shape == (12, 10, AUDIO_DIM), f"{v.shape=} {a.shape=}"
    assert labels.tolist() == [1.0] * 4 + [0.0] * 8
    assert torch.equal(v[:4], video) and torch.equal(a[:4], audio)
    for i in range(4):
        # batch negatives: some other clip's audio; time-shift negatives: a rotation of the same clip's audio
        j = [k for k in range(4) if torch.equal(a[4 + i], audio[k])]
        assert len(j) == 1 and j[0] != i, f"pair {i}: {j}"
        shifts = [s for s in range(10) if torch.equal(a[8 + i], audio[i].roll(s, dims=0))]
        assert len(shifts) == 1 and 2 <= shifts[0] <= 8, f"pair {i}: {shifts}"
    _, _, only_shift = make_pairs(video[:1], audio[:1])
    assert only_shift.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="no negatives"):
        make_pairs(video[:1, :1], audio[:1, :1])


def test_padding_mask_ignores_padded_seconds() -> None:
    model = correlation_debug(video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM).eval()
    video, audio = torch.randn(1, 6, VIDEO_DIM), torch.randn(1, 6, AUDIO_DIM)
    padded_v = torch.cat([video, torch.randn(1, 4, VIDEO_DIM)], dim=1)
    padded_a = torch.cat([audio, torch.randn(1, 4, AUDIO_DIM)], dim=1)
    with torch.no_grad():
        ref = model(video, audio)
        masked = model(padded_v, padded_a, lengths=torch.tensor([6]))
    torch.testing.assert_close(masked, ref, atol=1e-5, rtol=1e-5)


def test_tower_gradients_reach_every_parameter() -> None:
    model = correlation_debug(video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM)
    v, a, labels = make_pairs(torch.randn(3, 5, VIDEO_DIM), torch.randn(3, 5, AUDIO_DIM))
    correlation_loss(model(v, a), labels).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def test_tower_overfits_one_batch() -> None:
    model = correlation_debug(video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM)
    v, a, labels = make_pairs(torch.randn(4, 6, VIDEO_DIM), torch.randn(4, 6, AUDIO_DIM))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = float(correlation_loss(model(v, a), labels).detach())
    for _ in range(150):
        loss = correlation_loss(model(v, a), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = float(correlation_loss(model(v, a), labels).detach())
    assert final <= 0.1 * first, f"{first:.3f} -> {final:.3f}"


def _synthetic_av(batch: int, seconds: int, mixing: torch.Tensor, g: torch.Generator) -> tuple:
    """Per-second video features and audio features that are a fixed function of the same second's video."""
    video = torch.randn(batch, seconds, VIDEO_DIM, generator=g)
    audio = torch.tanh(video @ mixing) + 0.1 * torch.randn(batch, seconds, AUDIO_DIM, generator=g)
    return video, audio


def test_tower_separates_matched_from_mismatched_pairs() -> None:
    """Audio is a fixed function of the same second's video: other-clip and time-shifted audio must score low."""
    g = torch.Generator().manual_seed(1)
    mixing = torch.randn(VIDEO_DIM, AUDIO_DIM, generator=g) / VIDEO_DIM**0.5
    model = correlation_debug(video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(500):  # a plateau at the class prior (~150 steps), then AUC ~0.98 by step 500
        v, a, labels = make_pairs(*_synthetic_av(16, 8, mixing, g), generator=g)
        loss = correlation_loss(model(v, a), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    v, a, labels = make_pairs(*_synthetic_av(64, 8, mixing, g), generator=g)
    probs = model.score(v, a)
    pos, roll_neg, shift_neg = probs[:64], probs[64:128], probs[128:]
    # Ranking quality (AUC) against each kind of negative, and plain accuracy at 0.5.
    for name, neg in [("other clip", roll_neg), ("time shift", shift_neg)]:
        auc = float((pos[:, None] > neg[None, :]).float().mean())
        assert auc > 0.9, f"AUC vs {name} negatives: {auc:.3f}"
    accuracy = float(((probs > 0.5).float() == labels).float().mean())
    assert accuracy > 0.8, f"{accuracy=:.3f}"


# --- seq2seq generator -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("video_dim", [1024, 1280])
def test_seq2seq_paper_size_chunk_shapes(video_dim: int) -> None:
    model = seq2seq_paper(video_dim=video_dim).eval()
    visual = torch.randn(2, 10, video_dim)  # 10 one-second steps
    clip = torch.randint(0, 256, (2, 160000))
    start, chunk = next(tbptt_chunks(clip, chunk_len=1024, lookback=16, silence=128))
    with torch.no_grad():
        logits, state = model(chunk, visual, start_sample=start)
    assert logits.shape == (2, 1024, 256), f"{logits.shape=}"
    assert [tuple(h.shape) for h in state.tiers] == [(1, 2, 1024)] * 2


def test_seq2seq_h0_initialisation_changes_the_output() -> None:
    model = seq2seq_debug(video_dim=VIDEO_DIM).eval()
    seq = _with_silence(torch.randint(0, 256, (1, 64)))
    with torch.no_grad():
        a, _ = model(seq, torch.randn(1, 5, VIDEO_DIM))
        b, _ = model(seq, torch.randn(1, 5, VIDEO_DIM))
    assert (a - b).abs().max() > 1e-3
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    visual = torch.randn(2, 5, VIDEO_DIM)
    s1 = model.generate(visual, num_samples=200, generator=g())
    s2 = model.generate(visual, num_samples=200, generator=g())
    s3 = model.generate(torch.randn(2, 5, VIDEO_DIM), num_samples=200, generator=g())
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)


def test_seq2seq_generation_is_the_model_forward() -> None:
    model = seq2seq_debug(video_dim=VIDEO_DIM).eval()
    visual = torch.randn(2, 5, VIDEO_DIM)
    gen = model.generate(visual, num_samples=160, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        full, _ = model(_with_silence(gen), visual)
    g = torch.Generator().manual_seed(5)
    replay = torch.stack([sample_from_logits(full[:, t], generator=g) for t in range(160)], dim=1)
    assert torch.equal(replay, gen)


def test_seq2seq_gradients_reach_every_parameter() -> None:
    model = seq2seq_debug(video_dim=VIDEO_DIM)
    clip = torch.randint(0, 256, (2, 64))
    logits, _ = model(_with_silence(clip), torch.randn(2, 5, VIDEO_DIM))
    torch.nn.functional.cross_entropy(logits.reshape(-1, 256), clip.reshape(-1)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"


def _tones(length: int, freqs: list[float]) -> torch.Tensor:
    t = np.arange(length) / 16000.0
    rows = [0.7 * np.sin(2 * np.pi * f * t) for f in freqs]
    return torch.from_numpy(quantize_linear(np.stack(rows)).astype(np.int64))


def test_seq2seq_overfits_and_retrieval_by_likelihood_works() -> None:
    """Two clips, each visual paired with its own tone: the debug model overfits the batch (loss -90 %) and
    sequence_nll then ranks each clip's own audio first (the retrieval experiment in miniature)."""
    model = seq2seq_debug(video_dim=VIDEO_DIM)
    visual = torch.randn(2, 5, VIDEO_DIM)
    audio = _tones(96, [440.0, 1900.0])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def loss_fn() -> torch.Tensor:
        logits, _ = model(_with_silence(audio), visual)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, 256), audio.reshape(-1))

    first = float(loss_fn().detach())
    for _ in range(120):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = float(loss_fn().detach())
    assert final <= 0.1 * first, f"{first:.3f} -> {final:.3f}"
    model.eval()
    # nll[i, j]: audio j under visual i
    nll = torch.stack([sequence_nll(model, audio, visual[i : i + 1].expand(2, -1, -1)) for i in range(2)])
    assert nll.shape == (2, 2)
    assert bool((nll.diagonal() < nll.flip(1).diagonal()).all()), f"{nll=}"


@pytest.mark.parametrize("which", ["seq2seq", "frame"])
def test_sequence_nll_equals_the_full_forward_cross_entropy(which: str) -> None:
    model = seq2seq_debug(video_dim=VIDEO_DIM) if which == "seq2seq" else zhou_frame_debug()
    model.eval()
    visual = torch.randn(3, 2, VIDEO_DIM)
    clip = torch.randint(0, 256, (3, 320))
    with torch.no_grad():
        logits, _ = model(_with_silence(clip), visual)
        expected = torch.nn.functional.cross_entropy(logits.transpose(1, 2), clip, reduction="none").mean(1)
    got = sequence_nll(model, clip, visual, chunk_len=64)
    assert got.shape == (3,), f"{got.shape=}"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="multiples of 16"):
        sequence_nll(model, clip[:, :100], visual)
