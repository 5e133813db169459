"""Adversaries: a discriminator, its optimiser and its losses behind one object.

A GAN solver's generator step asks each adversary for its scores of the fake (`scores`), and trains each
adversary on a real and a fake batch (`update`), without knowing how that discriminator is conditioned or what
its loss is. The discriminator module and its optimiser stay in the solver's `modules` / `optimizers` under
the adversary's config name (checkpoints, schedules and DDP wrapping see them as before); an adversary looks
its module up at call time, so a module wrapped in DistributedDataParallel after construction is the one used.

Discriminators are called on real and fake separately (their BatchNorm statistics never mix the two). Their
gradients from the generator step are discarded (zeroed before the next update) instead of toggling
`requires_grad`, which DistributedDataParallel does not allow. Losses are computed in float32 outside autocast.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor, nn

from v2s_models.regnet_losses import regnet_discriminator_loss
from v2s_models.varietysound_discriminators import time_shift
from v2s_models.varietysound_losses import mel_discriminator_loss, tdad_loss


def optimiser_step(optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class Adversary:
    """One discriminator (`solver.modules[name]`) and its optimiser (`solver.optimizers[name]`)."""

    def __init__(self, solver: Any, name: str) -> None:
        self.solver = solver
        self.name = name

    @property
    def module(self) -> nn.Module:
        return self.solver.modules[self.name]

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        return self.solver.autocast()

    def step(self, loss: Tensor) -> None:
        optimiser_step(self.solver.optimizers[self.name], loss)


class VisualConditionedAdversary(Adversary):
    """REGNET's discriminator D(v, m): BCE real 1 / fake 0 (`regnet_discriminator_loss`) on the postnet mel."""

    def update(self, visual: Tensor, real: Tensor, fake: Tensor) -> dict[str, float]:
        with self.autocast():
            d_real = self.module(visual, real)
            d_fake = self.module(visual, fake.detach())
        loss = regnet_discriminator_loss(d_real.float(), d_fake.float())
        self.step(loss)
        return {
            "d": loss.item(),
            "d_real_prob": d_real.float().mean().item(),
            "d_fake_prob": d_fake.float().mean().item(),
        }

    def scores(self, visual: Tensor, fake: Tensor) -> Tensor:
        with self.autocast():
            return self.module(visual, fake).float()


class AlignmentAdversary(Adversary):
    """VarietySound's time-domain alignment discriminator (TDAD): positives (v, m); negatives (v, G(v, m)) and
    (v, S[m]), S a circular time shift of the real mel by [min, max] mel frames (`tdad_loss`)."""

    def __init__(self, solver: Any, name: str, *, shift: tuple[int, int]) -> None:
        super().__init__(solver, name)
        self.shift = shift

    def update(self, visual: Tensor, real: Tensor, fake: Tensor) -> dict[str, float]:
        lo, hi = self.shift
        hi = min(hi, real.shape[2] - lo)
        if hi < lo:
            raise ValueError(
                f"train.tdad_shift: min {lo} mel frames is too large for mels of {real.shape[2]} frames"
            )
        shifted = time_shift(real, min_shift=lo, max_shift=hi)
        with self.autocast():
            s_real, s_fake, s_shift = (
                self.module(real, visual),
                self.module(fake.detach(), visual),
                self.module(shifted, visual),
            )
        loss, parts = tdad_loss(s_real.float(), s_fake.float(), s_shift.float())
        self.step(loss)
        return {"d_tdad": loss.item(), **{f"d_tdad_{k}": v.item() for k, v in parts.items()}}

    def scores(self, visual: Tensor, fake: Tensor) -> Tensor:
        with self.autocast():
            return self.module(fake, visual).float()


class WindowedMelAdversary(Adversary):
    """VarietySound's multi-window mel discriminator: real and fake cropped at the same random windows, drawn
    once per step in `update` and reused by `scores` for the generator step (`mel_discriminator_loss`)."""

    def __init__(self, solver: Any, name: str) -> None:
        super().__init__(solver, name)
        self._starts: Any = None

    def update(self, visual: Tensor, real: Tensor, fake: Tensor) -> dict[str, float]:
        self._starts = self.solver.unwrapped(self.name).sample_starts(real.shape[0], real.shape[2])
        with self.autocast():
            m_real = self.module(real, starts=self._starts)
            m_fake = self.module(fake.detach(), starts=self._starts)
        loss, parts = mel_discriminator_loss([s.float() for s in m_real], [s.float() for s in m_fake])
        self.step(loss)
        return {"d_mel": loss.item(), **{f"d_mel_{k}": v.item() for k, v in parts.items()}}

    def scores(self, visual: Tensor, fake: Tensor) -> list[Tensor]:
        with self.autocast():
            return [s.float() for s in self.module(fake, starts=self._starts)]
