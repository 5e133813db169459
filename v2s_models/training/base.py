"""The solver interface: what every paradigm's training code provides to the loops (plain and Ray Train).

A solver owns one paradigm's modules, optimisers, schedulers, losses and steps; it is built from a validated
experiment config (v2s_models.config) and knows nothing of Ray, MLflow or DVC. The loop that drives it
(`v2s_models.training.loop.fit`, or `ray_jobs.train`'s worker function) owns epochs, checkpoints and logging.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from v2s_models.config import build_lr_schedule, build_optimizer, instantiate
from v2s_models.params import project_data_settings
from v2s_models.settings import DataSettings


class Solver(ABC):
    """Base class of the four paradigms (gan_mel, autoregressive, correlation, vocoder).

    Subclasses set `self.modules` (trained and auxiliary nn.Modules by config name), `self.optimizers` and
    `self.schedulers` (by the same names) in `__init__`, and implement `datasets`, `train_step`, `validate`.
    """

    paradigm: str = ""

    def __init__(
        self,
        cfg: Mapping[str, Any],
        *,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        root: Path | str = ".",
    ) -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.rank = rank
        self.world_size = world_size
        self.root = Path(root)  # paths in the config (manifest, features) are relative to this folder
        self.loss_weights: dict[str, float] = {k: float(v) for k, v in cfg["losses"].items()}
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.amp_dtype: torch.dtype | None = None  # set by the Ray loop on GPU (bf16 autocast)

    # ----------------------------------------------------------------------------------------- building
    def data_settings(self, preset: str) -> DataSettings:
        """The data preset `preset` (a config's `data.preset`) as the project defines it: `presets.<preset>` of
        `root`/params.yaml, the file the data stages ran with, else the built-in presets (`settings.PRESETS`).
        An unknown preset is an error naming it, the file and the defined presets."""
        return project_data_settings(preset, self.root)

    def build_module(self, name: str, **extra: Any) -> nn.Module:
        """Instantiates `model.<name>` of the config and moves it to the device."""
        module = instantiate(self.cfg["model"][name], **extra)
        return module.to(self.device)

    def build_optimizers(self) -> None:
        """One optimiser per `optim.<name>` entry, over `self.modules[name]`, and its schedule."""
        for name, spec in self.cfg["optim"].items():
            params = [p for p in self.modules[name].parameters() if p.requires_grad]
            self.optimizers[name] = build_optimizer(spec, params, key=f"optim.{name}")
            self.schedulers[name] = build_schedule(
                self.optimizers[name], self.cfg.get("schedule", {}), epochs=int(self.cfg["epochs"])
            )

    def wrap_modules(self, wrap: Callable[[nn.Module], nn.Module], names: list[str] | None = None) -> None:
        """Wraps the trained modules (e.g. with DistributedDataParallel via ray.train.torch.prepare_model)."""
        for name in names if names is not None else list(self.optimizers):
            self.modules[name] = wrap(self.modules[name])

    def unwrapped(self, name: str) -> nn.Module:
        m = self.modules[name]
        return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m

    # ----------------------------------------------------------------------------------------- training
    @abstractmethod
    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """(train, validation) data sets over the prepared features named by `cfg['data']`."""

    def collate_fn(self) -> Callable[[list[Any]], Any] | None:
        return None

    @abstractmethod
    def train_step(self, batch: Any) -> dict[str, float]:
        """One optimisation step (all of this paradigm's networks); returns scalar losses."""

    @abstractmethod
    def validate(self, loader: DataLoader) -> dict[str, float]:
        """Validation metrics computed from vision alone (never the real audio as input)."""

    def end_epoch(self) -> None:
        for s in self.schedulers.values():
            s.step()

    def write_artifacts(self, out_dir: Path, loader: DataLoader | None) -> list[Path]:
        """Files a researcher looks at (mel images, wav, mp4); rank 0 only. Default: none."""
        return []

    def train(self, mode: bool = True) -> None:
        for m in self.modules.values():
            m.train(mode)

    # ------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "modules": {k: self.unwrapped(k).state_dict() for k in self.modules},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for k, sd in state["modules"].items():
            self.unwrapped(k).load_state_dict(sd)
        for k, sd in state.get("optimizers", {}).items():
            self.optimizers[k].load_state_dict(sd)
        for k, sd in state.get("schedulers", {}).items():
            self.schedulers[k].load_state_dict(sd)

    def inference_modules(self) -> list[str]:
        """Names of the modules generation needs (the rest, e.g. discriminators, are training-only)."""
        return [k for k in self.modules if "discriminator" not in k and not k.startswith("d_")]


def build_schedule(
    optimizer: torch.optim.Optimizer, spec: Mapping[str, Any], *, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-epoch learning-rate schedules of the papers (`v2s_models.config.build_lr_schedule`).

    constant; linear_decay (REGNET: constant for `constant_epochs`, then linear to 0 at `epochs`);
    exponential (HiFi-GAN: gamma per epoch, 0.999); or a registered schedule `{_component_: ...}`.
    """
    return build_lr_schedule(spec, optimizer, epochs=epochs)
