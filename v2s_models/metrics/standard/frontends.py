"""Clip handling shared by the standard networks, as av-benchmark's `AudioDataset` reads a file.

mono (mean over channels) -> subtract the clip's mean -> resample to the network's rate -> keep the first
`seconds` (8 s by default, av-benchmark's `audio_length`); PaSST then zero-pads or cuts to exactly 10 s.

Resampling is torchaudio's `Resample` (default `sinc_interp_hann`, lowpass_filter_width 6, rolloff 0.99),
reimplemented because torchaudio does not install with this torch: the ratio is reduced by the gcd to
orig/new; a windowed-sinc kernel with cutoff base = min(orig, new) * rolloff (in units of the reduced rates)
is evaluated at t = (-width .. width + orig) / orig - phase, phase = j / new for each of the `new` output
phases j, clamped to +/- 6 zero crossings and tapered by cos^2(pi t base / 12); the padded signal is
convolved with stride `orig` and the phases interleaved, ceil(new * length / orig) samples kept.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


def to_mono(wave: np.ndarray) -> np.ndarray:
    """A mono float64 waveform (T,) from (T,) or (channels, T) (channels = the shorter axis)."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0) if x.shape[0] <= x.shape[1] else x.mean(axis=1)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty waveform (T,) or (channels, T), got shape {np.shape(wave)}")
    return x


def _sinc_kernel(orig: int, new: int) -> tuple[torch.Tensor, int]:
    base = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base)
    taps = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = (torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + taps) * base
    t = t.clamp(-LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = torch.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return sinc * window * (base / orig), width  # (new, 1, 2 width + orig)


def resample(wave: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """torchaudio-equivalent band-limited resampling of a mono waveform (T,) -> (ceil(T new / orig),), float64."""
    x = np.asarray(wave, dtype=np.float64)
    if orig_sr == new_sr:
        return x
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, width = _sinc_kernel(orig, new)
    signal = F.pad(torch.from_numpy(x)[None, None], (width, width + orig))
    out = F.conv1d(signal, kernel, stride=orig)  # (1, new, frames)
    out = out.transpose(1, 2).reshape(-1)
    return out[: math.ceil(new * x.size / orig)].numpy()


def prepare_clip(wave: np.ndarray, sample_rate: int, target_sr: int, seconds: float | None) -> np.ndarray:
    """mono, mean removed, resampled to `target_sr`, first `seconds` kept (None: all), as float32 (T,)."""
    x = to_mono(wave)
    x = resample(x - x.mean(), sample_rate, target_sr)
    if seconds is not None:
        x = x[: int(target_sr * seconds)]
    return x.astype(np.float32)


def pad_or_cut(wave: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end or cut to exactly `length` samples (PaSST's 10 s at 32 kHz)."""
    return wave[:length] if wave.size >= length else np.pad(wave, (0, length - wave.size))
