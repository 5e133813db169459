"""HiFi-GAN's losses (Kong et al., 2020): small pure functions, their weights in a mapping
(``DEFAULT_LOSS_WEIGHTS``: adv 1, fm 2, mel 45), and the log-mel in torch that the mel L1 loss compares.

The authors compute the L1 mel loss on a mel with fmax = sample_rate / 2 (``fmax_for_loss: null``)
while the input mel stops at 8 kHz; ``HIFIGAN_LOSS_MEL`` keeps that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from v2s_models.audio import mel_basis
from v2s_models.settings import HIFIGAN_MEL, MelSettings

HIFIGAN_LOSS_MEL = dataclasses.replace(HIFIGAN_MEL, fmax=11025.0)
"""The mel the authors' mel L1 loss uses: the input recipe with fmax raised to the Nyquist frequency."""

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"adv": 1.0, "fm": 2.0, "mel": 45.0}
"""Generator loss weights (paper): LSGAN adversarial 1, feature matching 2, mel L1 45."""


# ---------------------------------------------------------------------------------------------------------------
# Losses (pure functions; weights in DEFAULT_LOSS_WEIGHTS or a config mapping)


def discriminator_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor]
) -> torch.Tensor:
    """LSGAN discriminator loss summed over sub-discriminators: sum_k E[(1 - D_k(x))^2] + E[D_k(G(s))^2]."""
    if len(real_scores) != len(fake_scores):
        raise ValueError(f"{len(real_scores)} real vs {len(fake_scores)} fake score tensors")
    return sum(
        (
            torch.mean((1.0 - r) ** 2) + torch.mean(f**2)
            for r, f in zip(real_scores, fake_scores, strict=True)
        ),
        torch.zeros(()),
    )


def generator_adversarial_loss(fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator loss summed over sub-discriminators: sum_k E[(1 - D_k(G(s)))^2]."""
    return sum((torch.mean((1.0 - f) ** 2) for f in fake_scores), torch.zeros(()))


def feature_matching_loss(
    real_fmaps: Sequence[Sequence[torch.Tensor]], fake_fmaps: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Feature matching: sum over sub-discriminators and layers of E|D_k^i(x) - D_k^i(G(s))| (real detached).

    Unweighted; the paper's factor 2 is ``DEFAULT_LOSS_WEIGHTS["fm"]``.
    """
    total = torch.zeros(())
    for rs, fs in zip(real_fmaps, fake_fmaps, strict=True):
        for r, f in zip(rs, fs, strict=True):
            total = total + torch.mean(torch.abs(r.detach() - f))
    return total


def mel_l1_loss(real_log_mel: torch.Tensor, fake_log_mel: torch.Tensor) -> torch.Tensor:
    """L1 distance of log mels (B, n_mels, T); unweighted (the paper's 45 is ``DEFAULT_LOSS_WEIGHTS["mel"]``)."""
    assert real_log_mel.shape == fake_log_mel.shape, f"{real_log_mel.shape=} {fake_log_mel.shape=}"
    return F.l1_loss(fake_log_mel, real_log_mel)


def generator_loss(
    *,
    fake_scores: Sequence[torch.Tensor],
    real_fmaps: Sequence[Sequence[torch.Tensor]],
    fake_fmaps: Sequence[Sequence[torch.Tensor]],
    real_log_mel: torch.Tensor,
    fake_log_mel: torch.Tensor,
    weights: Mapping[str, float] = DEFAULT_LOSS_WEIGHTS,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted generator loss over all sub-discriminators (MPD and MSD lists concatenated).

    Returns (total, parts) with parts {"adv", "fm", "mel"} unweighted (detached) for logging.
    """
    unknown = set(weights) - {"adv", "fm", "mel"}
    if unknown:
        raise ValueError(f"unknown HiFi-GAN loss weights {sorted(unknown)}; known: adv, fm, mel")
    parts = {
        "adv": generator_adversarial_loss(fake_scores),
        "fm": feature_matching_loss(real_fmaps, fake_fmaps),
        "mel": mel_l1_loss(real_log_mel, fake_log_mel),
    }
    total = sum((weights.get(k, 0.0) * v for k, v in parts.items()), torch.zeros(()))
    return total, {k: v.detach() for k, v in parts.items()}


class LogMelSpectrogram(nn.Module):
    """Differentiable HiFi-GAN-convention log mel for the mel loss: waveform (B, N) or (B, 1, N) ->
    (B, n_mels, N // hop).

    The same recipe as ``v2s_models.audio.hifigan_mel`` (reflect pad (n_fft - hop) / 2, uncentred Hann STFT,
    sqrt(|X|^2 + 1e-9), Slaney mel from ``audio.mel_basis``, log of max(., 1e-5)), in torch so gradients flow.
    """

    def __init__(self, *, sample_rate: int = 22050, settings: MelSettings = HIFIGAN_LOSS_MEL) -> None:
        super().__init__()
        self.settings = settings
        basis = mel_basis(sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax)
        self.register_buffer("basis", torch.from_numpy(np.ascontiguousarray(basis)), persistent=False)
        self.register_buffer("window", torch.hann_window(settings.win), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim == 3:
            assert wav.shape[1] == 1, f"{wav.shape=}, expected (B, 1, N)"
            wav = wav[:, 0]
        assert wav.ndim == 2, f"{wav.shape=}, expected (B, N)"
        s = self.settings
        pad = (s.n_fft - s.hop) // 2
        x = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x,
            s.n_fft,
            hop_length=s.hop,
            win_length=s.win,
            window=self.window,
            center=False,
            return_complex=True,
        )
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
        return torch.log(torch.clamp(self.basis @ mag, min=1e-5))
