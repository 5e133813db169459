"""What an architecture adds to the gan_mel paradigm: its components, loss weights, training step and
vision-only generation. `GanMelSolver` (training/gan_mel.py) holds everything the architectures share (data,
checks of the data against the generator, validation metrics, artifacts, checkpoints) and calls one
`GanSystem` for the rest, chosen by the generator class the config builds (`register_gan_system`).

To train a new mel generator with this paradigm: implement `v2s_models.interface.SoundModel` in it (the solver
reads its widths from `model_inputs()`), subclass `GanSystem` in your own module, list the `losses` weights it
reads in `loss_keys` and its own `train` options in `train_keys`, build your discriminators' `Adversary`
objects (training/adversarial.py) in `__init__`, and call `register_gan_system(YourGenerator, YourSystem)`
where your module is imported. `config.validate` asks the system registered for the generator's class
(`gan_system_for_class`) for its `loss_keys` and `train_keys` when a config loads, so a key your system reads
is accepted and any other is refused, naming the closest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class GenerationInputs:
    """One batch for vision-only generation (`GanSystem.generate`), on the solver's device except the
    reference mels.

    visual (B, T, D); clip_ids (B); real_mel (B, n_mels, 4T), the clips' own mels (REGNET ignores them;
    VarietySound's background with `train.val_background: real`, and its own-reference pass); references:
    {clip: the clip whose mel is its timbre reference} and reference_mels: {clip: mel (n_mels, L) on the CPU}
    (empty for a system that takes no reference); rng: the generator of the batch's random draws; rng_own: a
    second one, seeded alike, for the own-reference pass, so that the first pass's draws do not depend on
    whether it runs; own_reference: also generate with each clip's own mel as its reference.
    """

    visual: Tensor
    clip_ids: list[str]
    real_mel: Tensor
    references: Mapping[str, str]
    reference_mels: Mapping[str, Tensor]
    rng: torch.Generator
    rng_own: torch.Generator
    own_reference: bool = False


@dataclass
class Generated:
    """One batch of vision-only generation: the mels, each clip's reference clip id (None: no reference), and,
    when asked for, the mels generated with each clip's own mel as its reference."""

    mel: Tensor
    reference: list[str | None]
    own_reference: Tensor | None = None


class GanSystem:
    """One architecture's part of the gan_mel paradigm (see the module docstring)."""

    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ("generator",)  # config `model.<name>` components
    optional: ClassVar[tuple[str, ...]] = ()
    visual_dim_key: ClassVar[str] = "visual_dim"  # the generator's argument that sets its visual width
    takes_reference: ClassVar[bool] = False  # generation needs a reference sound (its mel)
    loss_keys: ClassVar[tuple[str, ...]] = ()  # the `losses` weights it reads; config.validate refuses others
    # its own `train` options, beside the paradigm's (config.TRAIN_KEYS); config.validate refuses others
    train_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, solver: Any) -> None:
        self.solver = solver

    @property
    def generator(self) -> nn.Module:
        return self.solver.unwrapped("generator")

    @property
    def has_background(self) -> bool:
        """The generator takes a background sound (VarietySound's background encoder)."""
        return False

    def check_components(self) -> None:
        """Raises ValueError when the built components do not fit together."""

    def check_train_keys(self, train: Mapping[str, Any], shared: tuple[str, ...]) -> None:
        """Raises ValueError naming a `train` key that neither the paradigm (`shared`) nor this system reads: a
        generator built by a function without a return annotation is checked against every system's keys when
        its config loads, and narrowed to its own system's here."""
        unknown = sorted(set(train) - set(shared) - set(self.train_keys))
        if unknown:
            own = ", ".join(self.train_keys) or "none"
            raise ValueError(f"train: {self.name} does not read {unknown} (its own train options: {own})")

    def check_loss_weights(self, weights: Mapping[str, float]) -> None:
        """Raises ValueError naming the unknown or missing `losses` keys (here: the keys not in `loss_keys`;
        override to require some)."""
        unknown = sorted(set(weights) - set(self.loss_keys))
        if unknown:
            raise ValueError(f"losses: {self.name} takes {', '.join(self.loss_keys)}; unknown {unknown}")

    def train_step(self, visual: Tensor, mel: Tensor) -> dict[str, float]:
        raise NotImplementedError

    def generate(self, batch: GenerationInputs) -> Generated:
        """Vision-only generation of one batch (eval mode, no gradients, under the solver's autocast)."""
        raise NotImplementedError


_SYSTEMS: dict[type, type[GanSystem]] = {}


def register_gan_system(generator_class: type, system: type[GanSystem]) -> None:
    """Trains generators of `generator_class` (and its subclasses) with `system` in the gan_mel paradigm."""
    _SYSTEMS[generator_class] = system


def gan_system_for_class(generator_class: type) -> type[GanSystem] | None:
    """The system registered for `generator_class` or its nearest registered base class; None when none is."""
    for cls in generator_class.__mro__:
        if cls in _SYSTEMS:
            return _SYSTEMS[cls]
    return None


def gan_systems() -> dict[type, type[GanSystem]]:
    """{generator class: its system}, as registered so far in this process."""
    return dict(_SYSTEMS)


def no_gan_system(generator_class: type) -> str:
    """Why a generator of `generator_class` cannot be trained in the gan_mel paradigm (no system registered)."""
    known = ", ".join(sorted(c.__name__ for c in _SYSTEMS))
    return (
        f"builds a {generator_class.__name__}; the gan_mel paradigm trains {known} "
        "(register another with training.gan_system.register_gan_system)"
    )


def gan_system_for(generator: nn.Module) -> type[GanSystem]:
    system = gan_system_for_class(type(generator))
    if system is None:
        raise ValueError(f"model.generator: {no_gan_system(type(generator))}")
    return system
