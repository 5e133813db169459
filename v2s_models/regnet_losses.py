"""REGNET's losses: the discriminator's BCE and the generator's weighted sum (gan, mel(, silence)); the paper's
weights (`PAPER_LOSS_WEIGHTS`: gan 1, mel 10000). Sources: `regnet`'s docstring.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from v2s_models.regnet import RegnetOutput

PAPER_LOSS_WEIGHTS: dict[str, float] = {"gan": 1.0, "mel": 10000.0}

GENERATOR_LOSS_KEYS = ("gan", "mel", "silence")


def regnet_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """D loss: (BCE(d_real, 1) + BCE(d_fake, 0)) / 2, over probabilities of any (equal) shape."""
    if d_real.shape != d_fake.shape:
        raise ValueError(f"d_real and d_fake must have the same shape, got {d_real.shape} and {d_fake.shape}")
    real = F.binary_cross_entropy(d_real, torch.ones_like(d_real))
    fake = F.binary_cross_entropy(d_fake, torch.zeros_like(d_fake))
    return 0.5 * (real + fake)


def regnet_generator_loss(
    d_fake: torch.Tensor | None,
    mel_out: RegnetOutput,
    real_mel: torch.Tensor,
    *,
    weights: Mapping[str, float],
) -> dict[str, torch.Tensor]:
    """G loss = w_gan * BCE(d_fake, 1) + w_mel * [MSE(decoder) + MSE(postnet)] (+ w_silence * the same vs 0).

    `weights` must name "gan" and "mel" (paper: 1 and 10000); "silence" (the authors' unused silence loss,
    pulling both mels towards 0) is optional and 0 by default. `d_fake` may be None when w_gan == 0.
    Returns {"total", "gan", "mel", "silence"}: the weighted total and the unweighted terms.
    """
    unknown = set(weights) - set(GENERATOR_LOSS_KEYS)
    missing = {"gan", "mel"} - set(weights)
    if unknown or missing:
        raise ValueError(
            f"generator loss weights must have keys 'gan' and 'mel' (and optionally 'silence'); "
            f"unknown {sorted(unknown)}, missing {sorted(missing)}"
        )
    for name, out in (("mel_decoder", mel_out.mel_decoder), ("mel_postnet", mel_out.mel_postnet)):
        if out.shape != real_mel.shape:
            raise ValueError(
                f"{name} {tuple(out.shape)} and real_mel {tuple(real_mel.shape)} differ in shape"
            )
    zero = real_mel.new_zeros(())
    if d_fake is None:
        if weights["gan"] != 0:
            raise ValueError("d_fake is None but the 'gan' weight is not 0")
        gan = zero
    else:
        gan = F.binary_cross_entropy(d_fake, torch.ones_like(d_fake))
    mel = F.mse_loss(mel_out.mel_decoder, real_mel) + F.mse_loss(mel_out.mel_postnet, real_mel)
    w_silence = weights.get("silence", 0.0)
    silence = zero
    if w_silence != 0:
        silence = mel_out.mel_decoder.pow(2).mean() + mel_out.mel_postnet.pow(2).mean()
    total = weights["gan"] * gan + weights["mel"] * mel + w_silence * silence
    return {"total": total, "gan": gan.detach(), "mel": mel.detach(), "silence": silence.detach()}
