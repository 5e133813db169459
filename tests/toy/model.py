"""A toy mel generator, added the way a user adds a model (docs/architecture.md, "Add a model"): the worked example
that tests/test_toy_model.py runs through training on Ray, registration, `v2s generate`, `v2s evaluate` and a sweep.

- `ToyMelGenerator`: visual features (B, T, visual_dim) -> mel (B, n_mels, 4T) in [0, 1], a small MLP applied to
  each video frame; it implements `v2s_models.interface.SoundModel`, which is all the gan_mel solver, generation,
  evaluation and the registry ask of it.
- `ToyDiscriminator`: mel (B, n_mels, 4T) -> scores (B, 1, T), one strided convolution per video frame.
- `ToyGan`: its part of the gan_mel paradigm (training/gan_system.py): a least-squares GAN step plus L1 and L2
  mel losses, with the weights `losses: {mel, l2, adv}` of the config. `l2` is a loss no built-in system has:
  the config is accepted because `config.validate` asks the generator's registered system for its `loss_keys`.

The config (tests/toy/toy.yaml) names the two classes as `_component_`s. They resolve because this module's
prefix is trusted (`V2S_TRUSTED_COMPONENTS=tests.toy`, read by v2s_models/components.py in every process,
Ray workers included); importing the module to resolve them runs `register_gan_system` below, so the gan_mel
solver trains the toy wherever its config is built. No library file knows about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from v2s_models.interface import ModelInputs
from v2s_models.training.adversarial import Adversary, optimiser_step
from v2s_models.training.gan_system import GanSystem, Generated, GenerationInputs, register_gan_system

MEL_FRAMES_PER_VIDEO_FRAME = 4  # the RegNet convention of the regnet preset's features (gan_mel checks it)
TRUSTED_PREFIX = (
    "tests.toy"  # the value of V2S_TRUSTED_COMPONENTS that makes this module's classes components
)


class ToyMelGenerator(nn.Module):
    """visual (B, T, visual_dim) -> mel (B, n_mels, 4T) in [0, 1], frame by frame (no context across frames)."""

    def __init__(self, *, visual_dim: int = 2560, n_mels: int = 80, hidden: int = 16) -> None:
        super().__init__()
        self.visual_dim, self.n_mels = visual_dim, n_mels
        self.net = nn.Sequential(
            nn.LayerNorm(visual_dim),
            nn.Linear(visual_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_mels * MEL_FRAMES_PER_VIDEO_FRAME),
        )

    def forward(self, visual: Tensor) -> Tensor:
        b, t, d = visual.shape
        assert d == self.visual_dim, f"{visual.shape=}, expected visual_dim {self.visual_dim}"
        mel = torch.sigmoid(self.net(visual)).view(b, t, MEL_FRAMES_PER_VIDEO_FRAME, self.n_mels)
        return mel.permute(0, 3, 1, 2).reshape(b, self.n_mels, t * MEL_FRAMES_PER_VIDEO_FRAME)

    # SoundModel (v2s_models.interface): all that generation, evaluation and the registry call
    def model_inputs(self) -> ModelInputs:
        return ModelInputs(
            visual_dim=self.visual_dim, n_mels=self.n_mels, mel_frames_per_step=MEL_FRAMES_PER_VIDEO_FRAME
        )

    def start_video(
        self, *, generator: torch.Generator, reference_mel: Tensor | None = None, temperature: float = 1.0
    ) -> None:
        """Nothing is shared across a video's windows: the toy draws no noise and takes no reference."""
        return None

    def generate_windows(self, windows: Tensor, context: None, *, num_samples: int | None = None) -> Tensor:
        return self(windows)


class ToyDiscriminator(nn.Module):
    """mel (B, n_mels, 4T) -> scores (B, 1, T): one strided convolution over each video frame's 4 mel frames."""

    def __init__(self, *, n_mels: int = 80, hidden: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(n_mels, hidden, MEL_FRAMES_PER_VIDEO_FRAME, stride=MEL_FRAMES_PER_VIDEO_FRAME),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, 1, 1),
        )

    def forward(self, mel: Tensor) -> Tensor:
        return self.net(mel)


class LeastSquaresAdversary(Adversary):
    """The toy discriminator with its optimiser and its least-squares loss (real -> 1, fake -> 0)."""

    def update(self, visual: Tensor, real: Tensor, fake: Tensor) -> dict[str, float]:
        with self.autocast():
            d_real, d_fake = self.module(real), self.module(fake.detach())
        loss = (d_real.float() - 1).pow(2).mean() + d_fake.float().pow(2).mean()
        self.step(loss)
        return {"d": loss.item()}

    def scores(self, visual: Tensor, fake: Tensor) -> Tensor:
        with self.autocast():
            return self.module(fake).float()


class ToyGan(GanSystem):
    """The toy's part of the gan_mel paradigm: a D step, then a G step on `mel` * L1 + `l2` * MSE + `adv` * LSGAN."""

    name = "toy"
    required = ("generator", "discriminator")
    loss_keys = ("mel", "l2", "adv")

    def __init__(self, solver: Any) -> None:
        super().__init__(solver)
        self.adversary = LeastSquaresAdversary(solver, "discriminator")

    def check_loss_weights(self, weights: Mapping[str, float]) -> None:
        if set(weights) != set(self.loss_keys):
            raise ValueError(
                f"losses: the toy takes the weights {list(self.loss_keys)}, got {sorted(weights)}"
            )

    def train_step(self, visual: Tensor, mel: Tensor) -> dict[str, float]:
        solver, w = self.solver, self.solver.loss_weights
        with solver.autocast():
            fake = solver.modules["generator"](visual).float()
        losses = self.adversary.update(visual, mel, fake)
        g_mel, g_l2 = F.l1_loss(fake, mel), F.mse_loss(fake, mel)
        g_adv = (self.adversary.scores(visual, fake) - 1).pow(2).mean()
        total = w["mel"] * g_mel + w["l2"] * g_l2 + w["adv"] * g_adv
        optimiser_step(solver.optimizers["generator"], total)
        parts = {"g_mel": g_mel.item(), "g_l2": g_l2.item(), "g_adv": g_adv.item()}
        return {**losses, "g_total": total.item(), **parts}

    def generate(self, batch: GenerationInputs) -> Generated:
        return Generated(mel=self.generator(batch.visual), reference=[None] * len(batch.clip_ids))


register_gan_system(ToyMelGenerator, ToyGan)
