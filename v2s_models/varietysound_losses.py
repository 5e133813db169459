"""VarietySound's losses (eq. 1-7): G = lambda_m * L1(mel) + lambda_a * LSGAN adversarial summed over both
discriminators, weights as a mapping (Table 3: {"mel": 10000, "adv": 1}); the discriminators' LSGAN losses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

PAPER_LOSS_WEIGHTS: dict[str, float] = {"mel": 10000.0, "adv": 1.0}
"""Table 3: lambda_m = 10000 (the authors' demo page says 1e5), lambda_a = 1."""

OPTIONAL_LOSS_WEIGHTS: tuple[str, ...] = ("mel_peak", "event_shape")
"""Not in the paper (off unless weighted): `mel_peak`, the timing-tolerant L1 of `mel_peak_l1_loss`;
`event_shape`, the spectral-shape L1 on the real mel's loud frames of `event_shape_l1_loss`."""


# ----------------------------------------------------------------------------------------------------------
# Losses (pure functions; weights come from config as a mapping)


def mel_l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """L_mel (eq. 2): mean absolute error between mels of equal shape."""
    if pred.shape != target.shape:
        raise ValueError(f"mel_l1_loss needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return F.l1_loss(pred, target)


def mel_peak_l1_loss(pred: Tensor, target: Tensor, *, window: int) -> Tensor:
    """Timing-tolerant L1 (not in the paper): L1 between the mels' running maxima over `window` frames.

    Under plain L1 a short strike whose exact frame the video cannot pin down (one video frame spans several mel
    frames) costs half as much left out as drawn one frame off, so the decoder learns to leave short strikes out.
    Between running maxima, a one-frame strike drawn d < window / 2 frames off costs 2d / window of what leaving
    it out costs, so the term asks for the peak near the right place.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"mel_peak_l1_loss needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if window < 1:
        raise ValueError(f"mel_peak_l1_loss: window must be at least 1 frame, got {window}")
    if window == 1:
        return F.l1_loss(pred, target)
    return F.l1_loss(
        F.max_pool1d(pred, kernel_size=window, stride=1), F.max_pool1d(target, kernel_size=window, stride=1)
    )


def event_shape_l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Spectral shape at the events (not in the paper): L1 between the mels' per-frame shapes (each frame minus
    its mean over the bands, so the level drops out), weighted by how far the real frame's mean rises above the
    real clip's median frame (0 at and below it), weights summing to 1 per clip.

    Under the whole-mel L1 a strike's pitch sits in a few bands of a few frames, while the noise floor covers
    every band of every frame, so the pitch carries little of the loss (docs/results.md, issue 13 item 1). Here
    only the loud frames count and only the distribution of energy over the bands, which is where the pitch is.
    Mels (B, n_mels, L); a clip without a frame above its median adds 0.
    """
    if pred.shape != target.shape or pred.dim() != 3:
        raise ValueError(
            f"event_shape_l1_loss needs equal (B, n_mels, L) shapes, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    energy = target.mean(dim=1)  # (B, L)
    weight = (energy - energy.median(dim=1, keepdim=True).values).clamp_min(0.0)
    weight = weight / weight.sum(dim=1, keepdim=True).clamp_min(1e-8)
    error = ((pred - pred.mean(dim=1, keepdim=True)) - (target - target.mean(dim=1, keepdim=True))).abs()
    return (error.mean(dim=1) * weight).sum(dim=1).mean()


def _sum_terms(terms: list[Tensor]) -> Tensor:
    return torch.stack(terms).sum() if terms else torch.zeros(())


def lsgan_generator_loss(fake_scores: Sequence[Tensor]) -> Tensor:
    """Least-squares generator term: sum over score tensors of mean((1 - D(fake))^2)."""
    return _sum_terms([torch.mean((1.0 - s) ** 2) for s in fake_scores])


def lsgan_discriminator_loss(real_scores: Sequence[Tensor], fake_scores: Sequence[Tensor]) -> Tensor:
    """Least-squares discriminator term: sum of mean((1 - D(real))^2) + mean(D(fake)^2)."""
    return _sum_terms(
        [torch.mean((1.0 - s) ** 2) for s in real_scores] + [torch.mean(s**2) for s in fake_scores]
    )


def _check_weights(weights: Mapping[str, float]) -> None:
    required, optional = set(PAPER_LOSS_WEIGHTS), set(OPTIONAL_LOSS_WEIGHTS)
    if not required <= set(weights) <= required | optional:
        raise ValueError(
            f"loss weights must have the keys {sorted(required)} (optional: {sorted(optional)}), "
            f"got {sorted(weights)}"
        )


def generator_loss(
    mel_pred: Tensor,
    mel_target: Tensor,
    *,
    weights: Mapping[str, float] = PAPER_LOSS_WEIGHTS,
    tdad_fake: Tensor | None = None,
    mel_d_fake: Sequence[Tensor] | None = None,
    peak_window: int = 4,
) -> tuple[Tensor, dict[str, Tensor]]:
    """L_G (eq. 1-3) = weights['mel'] * L1 + weights['adv'] * (LSGAN(TDAD) + LSGAN(mel D)), plus
    weights['mel_peak'] * `mel_peak_l1_loss` over `peak_window` frames and weights['event_shape'] *
    `event_shape_l1_loss` when those optional weights are given.

    `tdad_fake` (B, L') = D_t(G(v, m) | v); `mel_d_fake` = D_m(G(v, m)). Pass None for a discriminator that
    is switched off (Table 7). Returns (total, parts): 'mel', 'adv_tdad', 'adv_mel', and 'mel_peak' /
    'event_shape' when their weights are given (unweighted, detached).
    """
    _check_weights(weights)
    mel = mel_l1_loss(mel_pred, mel_target)
    zero = mel_pred.new_zeros(())
    adv_t = lsgan_generator_loss([tdad_fake]) if tdad_fake is not None else zero
    adv_m = lsgan_generator_loss(mel_d_fake) if mel_d_fake is not None else zero
    total = weights["mel"] * mel + weights["adv"] * (adv_t + adv_m)
    parts = {"mel": mel.detach(), "adv_tdad": adv_t.detach(), "adv_mel": adv_m.detach()}
    if weights.get("mel_peak", 0.0):
        peak = mel_peak_l1_loss(mel_pred, mel_target, window=peak_window)
        total = total + weights["mel_peak"] * peak
        parts["mel_peak"] = peak.detach()
    if weights.get("event_shape", 0.0):
        shape = event_shape_l1_loss(mel_pred, mel_target)
        total = total + weights["event_shape"] * shape
        parts["event_shape"] = shape.detach()
    return total, parts


def tdad_loss(real: Tensor, fake: Tensor, shifted: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """L_Dt (eq. 4-6): real = D_t(m | v), fake = D_t(G(v, m) | v) (detached input), shifted = D_t(S[m] | v).

    Returns (total, parts) with parts 'real', 'fake', 'shifted' (detached).
    """
    l_real = torch.mean((1.0 - real) ** 2)
    l_fake = torch.mean(fake**2)
    l_shift = torch.mean(shifted**2)
    total = l_real + l_fake + l_shift
    return total, {"real": l_real.detach(), "fake": l_fake.detach(), "shifted": l_shift.detach()}


def mel_discriminator_loss(
    real_scores: Sequence[Tensor], fake_scores: Sequence[Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """L_Dm (eq. 7), summed over the windows. Returns (total, parts) with parts 'real', 'fake' (detached)."""
    if len(real_scores) != len(fake_scores):
        raise ValueError(f"need as many real as fake scores, got {len(real_scores)} and {len(fake_scores)}")
    l_real = lsgan_discriminator_loss(real_scores, [])
    l_fake = lsgan_discriminator_loss([], fake_scores)
    return l_real + l_fake, {"real": l_real.detach(), "fake": l_fake.detach()}
