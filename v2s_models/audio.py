"""Audio feature recipes: the two mel conventions and sample quantisation.

RegNet convention (REGNET, VarietySound; ../shared/PAPERS.md section 1):
    |STFT| (power 1, n_fft 1024, hop 256, Hann, centred with reflect padding) -> 80 Slaney mel bands
    125-7600 Hz -> 20*log10(max(mel, 1e-5)) - 20 -> (x + 100) / 100 clipped to [0, 1] -> first N frames.
    Centre/reflect padding is librosa's stft default at the time of the authors' code (librosa < 0.10).

HiFi-GAN convention (Kong et al. 2020): reflect-pad (n_fft - hop) / 2 each side, uncentred STFT,
    magnitude sqrt(re^2 + im^2 + 1e-9), 80 Slaney mel bands 0-8000 Hz, natural log of max(mel, 1e-5).
"""

from __future__ import annotations

import functools

import numpy as np

from v2s_models.settings import HIFIGAN_MEL, REGNET_MEL, MelSettings

REGNET_REF_LEVEL_DB = 20.0
REGNET_MIN_LEVEL_DB = -100.0


@functools.lru_cache(maxsize=16)
def mel_basis(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-normalised mel filter bank, (n_mels, n_fft // 2 + 1) float32."""
    import librosa

    return librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(
        np.float32
    )


def _stft_magnitude(wav: np.ndarray, n_fft: int, hop: int, win: int, center: bool) -> np.ndarray:
    import librosa

    spec = librosa.stft(
        wav.astype(np.float32),
        n_fft=n_fft,
        hop_length=hop,
        win_length=win,
        window="hann",
        center=center,
        pad_mode="reflect",
    )
    return np.abs(spec)


def regnet_mel(
    wav: np.ndarray,
    sample_rate: int = 22050,
    settings: MelSettings = REGNET_MEL,
    num_frames: int | None = None,
) -> np.ndarray:
    """RegNet-convention mel of a mono waveform (N,) -> (n_mels, T) float32 in [0, 1].

    With `num_frames`, keeps the first `num_frames` frames (860 for 10 s at 22050 Hz), padding with the
    silence value 0 if the waveform is shorter.
    """
    if wav.ndim != 1:
        raise ValueError(f"regnet_mel expects a mono waveform (N,), got shape {wav.shape}")
    mag = _stft_magnitude(wav, settings.n_fft, settings.hop, settings.win, center=True)
    basis = mel_basis(sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax)
    mel = basis @ mag
    db = 20.0 * np.log10(np.maximum(1e-5, mel)) - REGNET_REF_LEVEL_DB
    out = np.clip((db - REGNET_MIN_LEVEL_DB) / -REGNET_MIN_LEVEL_DB, 0.0, 1.0).astype(np.float32)
    if num_frames is not None:
        out = _fix_frames(out, num_frames, fill=0.0)
    return out


def regnet_mel_to_linear_mel(mel01: np.ndarray) -> np.ndarray:
    """Inverts the RegNet normalisation: [0, 1] mel -> linear mel magnitude (same shape)."""
    db = mel01 * -REGNET_MIN_LEVEL_DB + REGNET_MIN_LEVEL_DB + REGNET_REF_LEVEL_DB
    return np.power(10.0, db / 20.0).astype(np.float32)


def hifigan_mel(
    wav: np.ndarray,
    sample_rate: int = 22050,
    settings: MelSettings = HIFIGAN_MEL,
    num_frames: int | None = None,
) -> np.ndarray:
    """HiFi-GAN-convention log mel of a mono waveform (N,) -> (n_mels, T) float32 (natural log)."""
    if wav.ndim != 1:
        raise ValueError(f"hifigan_mel expects a mono waveform (N,), got shape {wav.shape}")
    pad = (settings.n_fft - settings.hop) // 2
    padded = np.pad(wav.astype(np.float32), (pad, pad), mode="reflect")
    import librosa

    spec = librosa.stft(
        padded,
        n_fft=settings.n_fft,
        hop_length=settings.hop,
        win_length=settings.win,
        window="hann",
        center=False,
    )
    mag = np.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
    basis = mel_basis(sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax)
    out = np.log(np.maximum(basis @ mag, 1e-5)).astype(np.float32)
    if num_frames is not None:
        out = _fix_frames(out, num_frames, fill=float(np.log(1e-5)))
    return out


def mel(
    wav: np.ndarray, sample_rate: int, settings: MelSettings, num_frames: int | None = None
) -> np.ndarray:
    """Dispatches on `settings.kind`."""
    if settings.kind == "regnet":
        return regnet_mel(wav, sample_rate, settings, num_frames)
    if settings.kind == "hifigan":
        return hifigan_mel(wav, sample_rate, settings, num_frames)
    raise ValueError(f"unknown mel convention {settings.kind!r}; known: 'regnet', 'hifigan'")


def _fix_frames(m: np.ndarray, num_frames: int, fill: float) -> np.ndarray:
    if m.shape[1] >= num_frames:
        return np.ascontiguousarray(m[:, :num_frames])
    out = np.full((m.shape[0], num_frames), fill, dtype=m.dtype)
    out[:, : m.shape[1]] = m
    return out


def quantize_linear(wav: np.ndarray, levels: int = 256) -> np.ndarray:
    """Linear quantisation of [-1, 1] samples to integers 0..levels-1 (SampleRNN's q_levels)."""
    x = np.clip(wav, -1.0, 1.0)
    q = np.floor((x + 1.0) / 2.0 * (levels - 1) + 0.5)
    return q.astype(np.uint8 if levels <= 256 else np.int32)


def dequantize_linear(q: np.ndarray, levels: int = 256) -> np.ndarray:
    """Inverse of `quantize_linear`: integers 0..levels-1 -> [-1, 1] float32."""
    return (q.astype(np.float32) / (levels - 1) * 2.0 - 1.0).astype(np.float32)
