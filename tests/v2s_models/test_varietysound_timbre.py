"""Tests for VarietySound's timbre-vector pooling and reference window (varietysound_encoders.AcousticEncoder,
issue 13 item 1)."""

from __future__ import annotations

import pytest
import torch

from v2s_models.varietysound import DEBUG_N_MELS, DEBUG_VIDEO_DIM, build_varietysound
from v2s_models.varietysound_encoders import TIMBRE_POOLINGS, AcousticEncoder, loudest_window

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


def _strikes(onsets: list[int], length: int = 200) -> torch.Tensor:
    """A (1, n_mels, length) mel: a quiet floor and the same decaying strike at each onset."""
    mel = torch.full((1, N_MELS, length), 0.1)
    strike = torch.linspace(0.9, 0.2, 12)[None, :] * torch.linspace(1.0, 0.5, N_MELS)[:, None]
    for onset in onsets:
        mel[0, :, onset : onset + 12] = strike
    return mel


def test_loudest_window_starts_a_few_frames_before_the_loudest_frame_and_stays_inside() -> None:
    mel = _strikes([100])
    window = loudest_window(mel, 24, lead=4)
    assert window.shape == (1, N_MELS, 24) and torch.equal(window, mel[:, :, 96:120])
    assert torch.equal(
        loudest_window(_strikes([2]), 24, lead=4), _strikes([2])[:, :, :24]
    )  # clamped at the start
    assert torch.equal(
        loudest_window(_strikes([185]), 24, lead=4), _strikes([185])[:, :, 176:]
    )  # and at the end
    assert torch.equal(
        loudest_window(mel[:, :, :20], 24), mel[:, :, :20]
    )  # shorter than the window: unchanged
    both = loudest_window(torch.cat([_strikes([10]), _strikes([150])]), 24, lead=4)  # one window per sample
    assert torch.equal(both[0], _strikes([10])[0, :, 6:30]) and torch.equal(
        both[1], _strikes([150])[0, :, 146:170]
    )


def test_a_reference_window_hides_the_event_rate_from_the_timbre_vector() -> None:
    torch.manual_seed(0)
    kwargs = dict(n_mels=N_MELS, units=1, channels=16, groups=4, lstm_layers=1, lstm_hidden=8, resample=False)
    whole = AcousticEncoder(**kwargs, pooling="max").eval()
    windowed = AcousticEncoder(**kwargs, pooling="max", reference_window=32).eval()
    windowed.load_state_dict(whole.state_dict())
    one, five = _strikes([20]), _strikes([20, 55, 90, 125, 160])
    with torch.no_grad():
        assert not torch.allclose(
            whole.timbre(one), whole.timbre(five)
        )  # the whole reference tells them apart
        assert torch.equal(windowed.timbre(one), windowed.timbre(five))  # one strike's window cannot


def test_the_generator_passes_the_reference_window_on_and_refuses_a_negative_one() -> None:
    g = build_varietysound("debug", reference_window=16).eval()
    assert g.acoustic_encoder.reference_window == 16
    with torch.no_grad():
        mel = g(
            torch.randn(2, 16, DEBUG_VIDEO_DIM),
            torch.rand(2, N_MELS, 40),
            generator=torch.Generator().manual_seed(0),
        )
    assert mel.shape == (2, N_MELS, 64)
    assert (
        build_varietysound("debug").acoustic_encoder.reference_window == 0
    )  # off by default: the paper's encoder
    with pytest.raises(ValueError, match="reference_window"):
        build_varietysound("debug", reference_window=-1)
