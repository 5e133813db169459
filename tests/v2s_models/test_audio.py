"""The mel recipes and quantisation against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from v2s_models import audio
from v2s_models.settings import REGNET, ZHOU, DataSettings


def _sine(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _reference_regnet_mel(wav: np.ndarray, sr: int) -> np.ndarray:
    """The recipe written out with numpy's FFT: centred frames, reflect padding, periodic Hann, |X|."""
    n_fft, hop = 1024, 256
    padded = np.pad(wav.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    n_frames = 1 + wav.shape[0] // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] * window for i in range(n_frames)], axis=1)
    mag = np.abs(np.fft.rfft(frames, axis=0))
    mel = audio.mel_basis(sr, n_fft, 80, 125.0, 7600.0).astype(np.float64) @ mag
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    return np.clip((db + 100) / 100, 0, 1)[:, :860]


def test_regnet_settings_sizes():
    assert (REGNET.num_frames, REGNET.num_samples, REGNET.num_mel_frames) == (215, 220500, 860)
    assert (ZHOU.num_frames, ZHOU.num_samples) == (156, 160000)
    assert REGNET.mel_frames_per_video_frame == 4


def test_regnet_mel_matches_recipe_on_sine():
    wav = _sine(1000.0, 22050, 10.0)
    mel = audio.regnet_mel(wav, 22050, num_frames=860)
    assert mel.shape == (80, 860) and mel.dtype == np.float32
    ref = _reference_regnet_mel(wav, 22050)
    np.testing.assert_allclose(mel, ref, atol=2e-5)
    # the loudest band is the one whose centre is nearest 1 kHz
    import librosa

    centres = librosa.mel_frequencies(n_mels=82, fmin=125.0, fmax=7600.0)[1:-1]
    assert abs(int(np.argmax(mel[:, 430])) - int(np.argmin(np.abs(centres - 1000.0)))) <= 1
    # a 0.5-amplitude sine: |X| peak = 0.5 * sum(hann) / 2 = 128 -> the band's value is well above half scale
    assert 0.6 < mel[:, 430].max() <= 1.0


def test_regnet_mel_silence_and_short_input():
    assert np.all(audio.regnet_mel(np.zeros(22050, np.float32), 22050) == 0.0)
    short = audio.regnet_mel(_sine(440, 22050, 1.0), 22050, num_frames=860)
    assert short.shape == (80, 860) and np.all(short[:, 100:] == 0.0)


def test_regnet_mel_inverse_normalisation_round_trip():
    wav = _sine(2000.0, 22050, 1.0)
    mel01 = audio.regnet_mel(wav, 22050)
    lin = audio.regnet_mel_to_linear_mel(mel01)
    basis = audio.mel_basis(22050, 1024, 80, 125.0, 7600.0)
    import librosa

    direct = basis @ np.abs(librosa.stft(wav, n_fft=1024, hop_length=256, pad_mode="reflect"))
    mask = (mel01 > 0) & (mel01 < 1)
    np.testing.assert_allclose(lin[mask], direct[mask], rtol=1e-3)


def test_hifigan_mel_convention():
    wav = _sine(1000.0, 22050, 2.0)
    m = audio.hifigan_mel(wav, 22050)
    assert m.shape == (
        80,
        wav.shape[0] // 256,
    )  # reflect padding of (n_fft - hop) / 2 keeps one frame per hop
    assert m.min() >= np.log(1e-5) - 1e-6
    assert np.isclose(audio.hifigan_mel(np.zeros(4096, np.float32), 22050).max(), np.log(1e-5), atol=1e-3)


@pytest.mark.parametrize("levels", [256, 16])
def test_quantisation_round_trip(levels):
    x = np.linspace(-1, 1, 10001, dtype=np.float32)
    q = audio.quantize_linear(x, levels)
    assert q.min() == 0 and q.max() == levels - 1
    y = audio.dequantize_linear(q, levels)
    assert np.max(np.abs(y - x)) <= 1.0 / (levels - 1) + 1e-6
    np.testing.assert_array_equal(audio.quantize_linear(y, levels), q)  # idempotent on the grid


def test_data_settings_validation():
    with pytest.raises(ValueError, match="fps"):
        DataSettings(fps=0)
    with pytest.raises(ValueError, match="pad_mode"):
        DataSettings(pad_mode="mirror")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown data-settings keys"):
        DataSettings.from_dict({"fps": 10, "bogus": 1})
    assert DataSettings.from_dict(REGNET.to_dict()) == REGNET
