"""REGNET in the gan_mel paradigm. One step:
    1. G forward with the real mel fed to the audio forwarding regularizer (training only) and the generator's
       own noise z ~ N(0, 1);
    2. D update: `regnet_discriminator_loss` = (BCE(D(v, m), 1) + BCE(D(v, G(v)), 0)) / 2, on the postnet mel;
    3. G update: `regnet_generator_loss`, weights {gan, mel(, silence)} from `cfg['losses']` (paper 1 / 10000).
Validation calls G without the real mel (the regularizer's output is zero) and with seeded noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from v2s_models.regnet import RegnetDiscriminator, RegnetGenerator, RegnetOutput
from v2s_models.regnet_losses import GENERATOR_LOSS_KEYS, regnet_generator_loss
from v2s_models.training.adversarial import VisualConditionedAdversary, optimiser_step
from v2s_models.training.gan_system import GanSystem, Generated, GenerationInputs, register_gan_system


class RegnetGan(GanSystem):
    name = "regnet"
    required = ("generator", "discriminator")
    visual_dim_key = "visual_dim"
    loss_keys = GENERATOR_LOSS_KEYS  # gan, mel (required), silence (optional)

    def __init__(self, solver: Any) -> None:
        super().__init__(solver)
        self.discriminator = VisualConditionedAdversary(solver, "discriminator")

    def check_components(self) -> None:
        g, d = self.generator, self.solver.modules["discriminator"]
        if not isinstance(d, RegnetDiscriminator):
            raise ValueError(
                f"model.discriminator: builds a {type(d).__name__}, expected RegnetDiscriminator"
            )
        if d.visual_dim != g.visual_dim or d.n_mels != g.n_mels:
            raise ValueError(
                f"model.discriminator: visual_dim / n_mels ({d.visual_dim} / {d.n_mels}) differ from the "
                f"generator's ({g.visual_dim} / {g.n_mels})"
            )

    def check_loss_weights(self, weights: Mapping[str, float]) -> None:
        keys = set(weights)
        unknown, missing = keys - set(self.loss_keys), {"gan", "mel"} - keys
        if unknown or missing:
            raise ValueError(
                f"losses: REGNET takes weights gan, mel (and optionally silence); "
                f"unknown {sorted(unknown)}, missing {sorted(missing)}"
            )

    def train_step(self, visual: Tensor, mel: Tensor) -> dict[str, float]:
        solver = self.solver
        with solver.autocast():
            out = solver.modules["generator"](visual, mel)  # real mel -> the regularizer; noise drawn inside
        out = RegnetOutput(mel_decoder=out.mel_decoder.float(), mel_postnet=out.mel_postnet.float())
        losses = self.discriminator.update(visual, mel, out.mel_postnet)
        g = regnet_generator_loss(
            self.discriminator.scores(visual, out.mel_postnet), out, mel, weights=solver.loss_weights
        )
        optimiser_step(solver.optimizers["generator"], g["total"])
        losses.update({"g_total": g["total"].item(), "g_gan": g["gan"].item(), "g_mel": g["mel"].item()})
        if solver.loss_weights.get("silence", 0.0):
            losses["g_silence"] = g["silence"].item()
        return losses

    def generate(self, batch: GenerationInputs) -> Generated:
        g, visual, n = self.generator, batch.visual, len(batch.clip_ids)
        noise = torch.randn(n, g.noise_dim, generator=batch.rng).to(visual.device)
        return Generated(mel=g(visual, None, noise).mel_postnet, reference=[None] * n)


register_gan_system(RegnetGenerator, RegnetGan)
