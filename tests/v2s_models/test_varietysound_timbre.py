"""Tests for VarietySound's timbre-vector pooling (varietysound_encoders.AcousticEncoder, issue 13 item 1)."""

from __future__ import annotations

import pytest
import torch

from v2s_models.varietysound import DEBUG_N_MELS, DEBUG_VIDEO_DIM, build_varietysound
from v2s_models.varietysound_encoders import TIMBRE_POOLINGS, AcousticEncoder

N_MELS = DEBUG_N_MELS
LENGTH = 64


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _encoder(pooling: str, seed: int = 0) -> AcousticEncoder:
    torch.manual_seed(seed)
    return AcousticEncoder(
        n_mels=N_MELS, units=1, channels=16, groups=4, lstm_layers=1, lstm_hidden=8, resample=False,
        pooling=pooling,
    ).eval()  # fmt: skip


def test_default_pooling_is_the_papers_final_hidden_state() -> None:
    enc = _encoder("last")
    assert AcousticEncoder(n_mels=N_MELS, units=1, channels=16, groups=4).pooling == "last"
    mel = torch.rand(2, N_MELS, LENGTH, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = c = mel
        for unit in enc.units:
            x, c = unit(x, c)
        _, (h_n, _) = enc.lstm(x.transpose(1, 2))
        expected = torch.cat([h_n[-2], h_n[-1]], dim=-1)
        assert torch.equal(enc.timbre(mel), expected)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_mean_and_max_pool_the_lstm_outputs_over_time(pooling: str) -> None:
    enc = _encoder(pooling)
    mel = torch.rand(3, N_MELS, LENGTH, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        x = c = mel
        for unit in enc.units:
            x, c = unit(x, c)
        h, _ = enc.lstm(x.transpose(1, 2))  # (B, L, 16)
        expected = h.mean(dim=1) if pooling == "mean" else h.amax(dim=1)
        out = enc.timbre(mel)
    assert out.shape == (3, 16), f"{out.shape=}"
    assert torch.allclose(out, expected), f"{(out - expected).abs().max()=}"


def test_pooling_keeps_the_state_dict_and_the_generator_passes_it_on() -> None:
    keys = {p: set(_encoder(p).state_dict()) for p in TIMBRE_POOLINGS}
    assert keys["last"] == keys["mean"] == keys["max"]
    g = build_varietysound("debug", timbre_pooling="max").eval()
    assert g.acoustic_encoder.pooling == "max"
    video = torch.randn(2, 16, DEBUG_VIDEO_DIM)
    with torch.no_grad():
        mel = g(video, torch.rand(2, N_MELS, 40), generator=torch.Generator().manual_seed(0))
    assert mel.shape == (2, N_MELS, 64), f"{mel.shape=}"


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(ValueError, match="timbre pooling"):
        _encoder("median")
