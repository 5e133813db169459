"""Mel-convention conversion: RegNet-convention mels -> HiFi-GAN-convention log mels, and mel -> linear spectrum.

Why: the generators (REGNET, VarietySound) output RegNet-convention mels (80 Slaney bands 125-7600 Hz,
20 log10 - 20 dB, normalised to [0, 1], centred frames), while the released HiFi-GAN weights expect natural-log mels
over 0-8000 Hz with (n_fft - hop) / 2 reflect padding. ``regnet_to_hifigan_mel`` lets the pretrained vocoder voice
any generator's output before a matched vocoder is trained.

Recipe (every step in torch so that it also runs on generator outputs on a GPU):
1. Denormalise [0, 1] -> linear mel magnitude (``audio.regnet_mel_to_linear_mel``'s formula; values at the 0 floor
   become 1e-4, i.e. -80 dB).
2. Linear magnitude spectrum (513 bins) from the 80 RegNet bands: non-negative least squares, solved by
   multiplicative updates (Lee & Seung) from the "band mean" estimate s0_f = sum_k B_kf (m_k / |B_k|) / sum_k B_kf,
   which is already the exact answer for a spectrum flat inside each band. Fast (a few matrix products of
   80 x 513), where scipy's NNLS would take seconds per clip.
3. Bins outside the RegNet bands (below ~125 Hz and above ~7600 Hz; columns of the basis that are zero) carry no
   information. They get the magnitude of the nearest covered bin (flat extrapolation): speech-like and impact
   sounds have no sharp edges at 125 Hz or 7.6 kHz, and a zero there would put log(1e-5) into the HiFi-GAN bands
   0-125 Hz (3 bands) and 7.6-8 kHz (2 bands), which the vocoder never saw in training.
4. Frame alignment: RegNet frame t is centred on sample t * hop, a HiFi-GAN frame t on t * hop + hop / 2 (it spans
   [t hop - (n_fft - hop) / 2, t hop + (n_fft + hop) / 2)). Both give one frame per hop, half a hop apart, so
   HiFi-GAN frame t is the mean (in linear magnitude) of RegNet frames t and t + 1; the last frame repeats. The test
   checks that this shift lowers the error against ``audio.hifigan_mel`` of the same clip.
5. HiFi-GAN basis @ spectrum -> log(max(., 1e-5)).

Measured (3 s of each clip, tests/v2s_models/test_vocoders.py), mean |log error| against ``hifigan_mel`` of the
same waveform in the bands centred in 125-7600 Hz: hitting_metal 0.235 (0.327 without the half-hop shift),
hammer_anvil 0.099 (0.179), dog_barking 0.097 (0.172). The error sits in quiet bins: RegNet clips at -100 dB
(a linear mel of 1e-4, where HiFi-GAN's floor is 1e-5), so what lies below is lost; on hitting_metal, bins louder
than 1e-3 have error 0.11, those quieter 0.51. Ten multiplicative NNLS iterations are enough: 30 and 100 change the
error by under 0.001.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from v2s_models.audio import REGNET_MIN_LEVEL_DB, REGNET_REF_LEVEL_DB, mel_basis
from v2s_models.settings import HIFIGAN_MEL, REGNET_MEL, MelSettings

LOG_FLOOR = 1e-5
DEFAULT_NNLS_ITERS = 10


@functools.lru_cache(maxsize=8)
def _basis_tensor(sample_rate: int, settings: MelSettings) -> torch.Tensor:
    b = mel_basis(sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax)
    return torch.from_numpy(np.ascontiguousarray(b))


def _as_tensor(x: np.ndarray | torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if isinstance(x, torch.Tensor):
        return x.float()
    raise ValueError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


def _check_mel(mel: torch.Tensor, n_mels: int, name: str) -> None:
    if mel.ndim not in (2, 3) or mel.shape[-2] != n_mels or mel.shape[-1] < 1:
        raise ValueError(
            f"{name} must be ({n_mels}, T) or (B, {n_mels}, T) with T >= 1, got {tuple(mel.shape)}"
        )
    if not torch.isfinite(mel).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def mel_to_linear_spectrogram(
    mel_magnitude: torch.Tensor,
    basis: torch.Tensor,
    *,
    n_iter: int = DEFAULT_NNLS_ITERS,
    extrapolate: bool = True,
) -> torch.Tensor:
    """Non-negative linear magnitude spectrum S >= 0 with basis @ S ~ mel_magnitude.

    mel_magnitude (..., n_mels, T) linear (not log); basis (n_mels, F) -> (..., F, T).
    ``extrapolate`` fills bins no filter covers with the nearest covered bin's magnitude (else they stay 0).
    """
    assert mel_magnitude.shape[-2] == basis.shape[0], f"{mel_magnitude.shape=} {basis.shape=}"
    basis = basis.to(mel_magnitude)
    eps = 1e-10
    row_sum = basis.sum(dim=1, keepdim=True)  # (n_mels, 1)
    col_sum = basis.sum(dim=0)  # (F,)
    covered = col_sum > 0
    # band-mean start: exact for spectra flat inside each band, and strictly positive where covered
    band_mean = mel_magnitude / (row_sum + eps)
    spec = (basis.T @ band_mean) / (col_sum[:, None] + eps)
    target = basis.T @ mel_magnitude  # (..., F, T), fixed numerator of the multiplicative update
    for _ in range(n_iter):
        spec = spec * target / (basis.T @ (basis @ spec) + eps)
    if extrapolate and not bool(covered.all()):
        idx = torch.nonzero(covered).flatten()
        lo, hi = int(idx[0]), int(idx[-1])
        spec = spec.clone()
        spec[..., :lo, :] = spec[..., lo : lo + 1, :]
        spec[..., hi + 1 :, :] = spec[..., hi : hi + 1, :]
    return spec


def regnet_mel_to_magnitude(mel01: torch.Tensor) -> torch.Tensor:
    """RegNet [0, 1] mel -> linear mel magnitude, as ``audio.regnet_mel_to_linear_mel`` but in torch."""
    db = mel01 * -REGNET_MIN_LEVEL_DB + REGNET_MIN_LEVEL_DB + REGNET_REF_LEVEL_DB
    return torch.pow(10.0, db / 20.0)


def regnet_to_hifigan_mel(
    mel01: np.ndarray | torch.Tensor,
    *,
    sample_rate: int = 22050,
    regnet: MelSettings = REGNET_MEL,
    hifigan: MelSettings = HIFIGAN_MEL,
    nnls_iter: int = DEFAULT_NNLS_ITERS,
    half_hop_shift: bool = True,
) -> np.ndarray | torch.Tensor:
    """RegNet-convention mel in [0, 1], (80, T) or (B, 80, T) -> HiFi-GAN-convention natural-log mel, same shape.

    Returns the input's type (numpy float32 or a float tensor on the input's device). See the module docstring.
    """
    is_numpy = isinstance(mel01, np.ndarray)
    mel = _as_tensor(mel01, "mel01")
    _check_mel(mel, regnet.n_mels, "mel01")
    if (regnet.n_fft, regnet.hop) != (hifigan.n_fft, hifigan.hop):
        raise ValueError(
            f"conventions must share n_fft and hop, got {(regnet.n_fft, regnet.hop)} and {(hifigan.n_fft, hifigan.hop)}"
        )
    if mel.min() < -1e-6 or mel.max() > 1.0 + 1e-6:
        raise ValueError(
            f"mel01 must be a RegNet-convention mel in [0, 1], got values in [{float(mel.min()):.3g}, "
            f"{float(mel.max()):.3g}]"
        )
    src = _basis_tensor(sample_rate, regnet).to(mel.device)
    dst = _basis_tensor(sample_rate, hifigan).to(mel.device)
    spec = mel_to_linear_spectrogram(regnet_mel_to_magnitude(mel.clamp(0.0, 1.0)), src, n_iter=nnls_iter)
    if half_hop_shift:
        nxt = torch.cat([spec[..., 1:], spec[..., -1:]], dim=-1)
        spec = 0.5 * (spec + nxt)
    out = torch.log(torch.clamp(dst @ spec, min=LOG_FLOOR))
    assert out.shape == mel.shape, f"{out.shape=} {mel.shape=}"
    return out.numpy() if is_numpy else out
