"""Mel-cepstral distortion (MCD), as VarietySound's ablations report it (Tables 7-8; full model 4.14 dB).

    c = DCT-II (orthonormal, over the mel axis) of the natural-log mel amplitude, per frame
    MCD = mean over frames t of (10 / ln 10) * sqrt(2 * sum_{k=1..K} (c_k[t] - c'_k[t])^2)    [dB]

c0 (overall level) is excluded, so a gain change does not count; K = 24 cepstra by default (c1..c24, the
order of the usual SPTK mel-cepstrum analysis; VarietySound does not state its K). The two mels are
frame-aligned by index and trimmed to the shorter one (no DTW: generated and real audio share the video's time
axis). With natural-log amplitudes and orthonormal DCT the figure is, for K = n_mels - 1, the RMS log-spectral
distance in dB over mel bands, times sqrt(2).

Mel conventions (`convention`): "regnet" (v2s_models.audio.regnet_mel: 20 log10 amplitude - 20 dB, scaled by
1/100 and shifted into [0, 1]), "ln" (natural log amplitude, as v2s_models.audio.hifigan_mel), "log10"
(log10 amplitude) and "db" (20 log10 amplitude). Each is turned into natural log amplitude before the DCT;
additive offsets only touch c0, so they need no care.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from v2s_models.audio import REGNET_MIN_LEVEL_DB, regnet_mel

MelConvention = Literal["regnet", "ln", "log10", "db"]
DEFAULT_NUM_CEPSTRA = 24
_DB_TO_LN = math.log(10.0) / 20.0  # 20 log10 a -> ln a


def to_natural_log(log_mel: np.ndarray, convention: MelConvention) -> np.ndarray:
    """A log mel in one of the project's conventions -> natural log amplitude (up to an additive constant)."""
    x = np.asarray(log_mel, dtype=np.float64)
    if convention == "regnet":
        return x * -REGNET_MIN_LEVEL_DB * _DB_TO_LN  # [0, 1] -> dB (offset dropped) -> ln
    if convention == "ln":
        return x
    if convention == "log10":
        return x * math.log(10.0)
    if convention == "db":
        return x * _DB_TO_LN
    raise ValueError(f"unknown mel convention {convention!r}; known: 'regnet', 'ln', 'log10', 'db'")


def mel_cepstra(log_mel: np.ndarray, convention: MelConvention = "regnet") -> np.ndarray:
    """Mel cepstra of a log mel spectrogram (n_mels, T) -> (T, n_mels): orthonormal DCT-II over the mel axis
    of the natural-log amplitude, c0 first."""
    from scipy.fft import dct

    if np.ndim(log_mel) != 2:
        raise ValueError(f"expected a mel spectrogram (n_mels, T), got shape {np.shape(log_mel)}")
    return dct(to_natural_log(log_mel, convention), type=2, norm="ortho", axis=0).T


def mel_cepstral_distortion(
    mel_a: np.ndarray,
    mel_b: np.ndarray,
    *,
    convention: MelConvention = "regnet",
    num_cepstra: int = DEFAULT_NUM_CEPSTRA,
) -> float:
    """MCD in dB between two log mels (n_mels, T_a) and (n_mels, T_b) of the same convention (module doc).

    Uses c1..c{num_cepstra}; frames are compared by index over min(T_a, T_b). Identical inputs give 0.
    """
    if np.shape(mel_a)[0] != np.shape(mel_b)[0]:
        raise ValueError(f"mel band counts differ: {np.shape(mel_a)} vs {np.shape(mel_b)}")
    n_mels = np.shape(mel_a)[0]
    if not 1 <= num_cepstra <= n_mels - 1:
        raise ValueError(f"num_cepstra must be in 1..{n_mels - 1} for {n_mels} mel bands, got {num_cepstra}")
    frames = min(np.shape(mel_a)[1], np.shape(mel_b)[1])
    if frames == 0:
        raise ValueError("MCD needs at least one frame in each mel")
    ca = mel_cepstra(np.asarray(mel_a)[:, :frames], convention)[:, 1 : num_cepstra + 1]
    cb = mel_cepstra(np.asarray(mel_b)[:, :frames], convention)[:, 1 : num_cepstra + 1]
    per_frame = (10.0 / math.log(10.0)) * np.sqrt(2.0 * np.sum((ca - cb) ** 2, axis=1))
    return float(per_frame.mean())


def mcd_waveforms(
    wave_a: np.ndarray, wave_b: np.ndarray, sr: int, *, num_cepstra: int = DEFAULT_NUM_CEPSTRA
) -> float:
    """MCD (dB) between two mono waveforms (N,), through RegNet-convention mels (the data preset's recipe,
    22050 Hz; other rates are resampled first)."""

    a, b = _at_22050(wave_a, sr), _at_22050(wave_b, sr)
    return mel_cepstral_distortion(
        regnet_mel(a, 22050), regnet_mel(b, 22050), convention="regnet", num_cepstra=num_cepstra
    )


def _at_22050(wave: np.ndarray, sr: int) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=0)
    if sr == 22050:
        return wave
    import librosa

    return librosa.resample(wave, orig_sr=sr, target_sr=22050).astype(np.float32)
