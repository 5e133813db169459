"""The plain training loop, checkpoints and RNG state: shared by tests, benchmarks and the Ray Train worker.

Checkpoint (`checkpoint.pt`, read back with `torch.load(weights_only=True)`):
    {"solver": Solver.state_dict(), "epoch": completed epochs, "step": global steps,
     "data": {"epoch": next epoch, "batch": 0}, "rng": {"torch", "numpy", "python"}, "config_hash", "metrics"}
A checkpoint is written at the end of every epoch, so the data position to resume from is the start of the next
epoch; the epoch's shuffling is a function of (seed, epoch), so a resumed run sees the same batches.
"""

from __future__ import annotations

import importlib
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from v2s_models.config import config_hash
from v2s_models.finetune import InitFrom, initialise
from v2s_models.training.base import Solver
from v2s_models.training.checkpoint import CHECKPOINT_FILE, load_checkpoint

SOLVERS: dict[str, str] = {
    "gan_mel": "v2s_models.training.gan_mel.GanMelSolver",
    "autoregressive": "v2s_models.training.autoregressive.AutoregressiveSolver",
    "correlation": "v2s_models.training.contrastive.CorrelationSolver",
    "vocoder": "v2s_models.training.vocoder.VocoderSolver",
}


def solver_class(paradigm: str) -> type[Solver]:
    try:
        dotted = SOLVERS[paradigm]
    except KeyError:
        raise ValueError(f"unknown paradigm {paradigm!r}; known: {sorted(SOLVERS)}") from None
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def build_solver(
    cfg: Mapping[str, Any],
    *,
    init_weights: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    **kwargs: Any,
) -> Solver:
    """The config's solver. `init_weights` ({module: state_dict}, `finetune.source_weights(...).state`) starts
    it from another model's weights and freezes the prefixes of `cfg["init_from"]["freeze"]`
    (`v2s_models.finetune`). Without them `init_from` is not applied: the Ray driver resolves the reference once
    and passes the weights on, and code that rebuilds a package's solver loads the package's own weights."""
    solver = solver_class(cfg["paradigm"])(cfg, **kwargs)
    if init_weights is not None:
        spec = InitFrom.parse(cfg.get("init_from"))
        initialise(solver, init_weights, spec.freeze if spec is not None else ())
    return solver


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))  # noqa: NPY002 (global state that third-party code may draw from)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()  # noqa: NPY002
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _py_state_to_tensor(random.getstate()),
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    random.setstate(_tensor_to_py_state(state["python"]))


def _py_state_to_tensor(s: tuple[Any, ...]) -> dict[str, Any]:
    version, internal, gauss = s
    return {
        "version": int(version),
        "internal": torch.tensor(internal, dtype=torch.int64),
        "gauss": None if gauss is None else float(gauss),
    }


def _tensor_to_py_state(d: Mapping[str, Any]) -> tuple[Any, ...]:
    return (d["version"], tuple(int(x) for x in d["internal"].tolist()), d["gauss"])


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    epoch: int,
    collate_fn: Callable[..., Any] | None = None,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    drop_last: bool = False,
) -> DataLoader:
    """A loader whose order depends only on (seed, epoch) (and the rank when distributed)."""
    if world_size > 1:
        sampler: Any = DistributedSampler(
            dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        sampler.set_epoch(epoch)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    else:
        sampler = None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        collate_fn=collate_fn,
        num_workers=num_workers,
        drop_last=drop_last and world_size == 1,
    )


def save_checkpoint(
    path: Path,
    solver: Solver,
    *,
    epoch: int,
    step: int,
    cfg: Mapping[str, Any],
    metrics: Mapping[str, float] | None = None,
) -> Path:
    """Writes `path/checkpoint.pt` atomically (temporary name, then rename)."""
    path.mkdir(parents=True, exist_ok=True)
    payload = {
        "solver": solver.state_dict(),
        "epoch": epoch,
        "step": step,
        "data": {"epoch": epoch, "batch": 0},
        "rng": rng_state(),
        "config_hash": config_hash(cfg),
        "metrics": dict(metrics or {}),
    }
    tmp = path / (CHECKPOINT_FILE + ".part")
    torch.save(payload, tmp)
    tmp.replace(path / CHECKPOINT_FILE)
    return path / CHECKPOINT_FILE


def run_epoch(solver: Solver, loader: Iterable[Any], *, max_steps: int | None = None) -> dict[str, float]:
    """One pass over `loader`; returns the mean of each loss."""
    solver.train(True)
    sums: dict[str, float] = {}
    n = 0
    for i, batch in enumerate(loader):
        if max_steps is not None and i >= max_steps:
            break
        losses = solver.train_step(batch)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n += 1
    return {f"train/{k}": v / max(1, n) for k, v in sums.items()}


@dataclass(frozen=True)
class EpochStats:
    """What `run_epochs` measured of one epoch, for `EpochHooks.reduce`."""

    epoch: int  # 1-based
    steps: int  # optimiser steps this process took
    clips: int  # training clips this process saw
    train_s: float  # seconds of the training pass (validation not included)
    started: float  # time.perf_counter() at the start of the epoch


class EpochHooks:
    """What a runner adds around the one epoch loop, `run_epochs`.

    The loop itself (seeding or resuming, the (seed, epoch)-ordered loaders, the training pass, validation, the
    solver's schedules, the global step) is the same for every runner; a runner says where a run resumes from,
    which shard of the data this process trains, what wraps an epoch's batches, how the epoch's metrics are
    combined, and where the checkpoint goes. `LocalHooks` is the plain loop's (`fit`); the Ray Train worker
    (`ray_jobs.train`) adds sharding over workers, DDP, reporting and checkpoint storage through its own.
    """

    rank: int = 0
    world_size: int = 1

    def restore(self) -> Mapping[str, Any] | None:
        """The checkpoint to resume from (`load_checkpoint`'s dict), or None to start at epoch 0."""
        return None

    def prepare(self, solver: Solver, train_set: Dataset, val_set: Dataset | None) -> None:
        """After seeding or restoring, before the first epoch, with the solver's data sets (the Ray worker wraps
        modules in DDP here and keeps the data sets for its samples)."""

    def batches(self, loader: Iterable[Any], *, epoch: int) -> Iterable[Any]:
        """What the epoch iterates (`epoch` 1-based); the tests' fault injector wraps it."""
        return loader

    def reduce(self, metrics: dict[str, float], stats: EpochStats) -> dict[str, float]:
        """The epoch's metrics as the run records them (the Ray worker: means over workers, throughput)."""
        return metrics

    def end_epoch(self, solver: Solver, *, epoch: int, step: int, metrics: Mapping[str, float]) -> None:
        """After the epoch's metrics are final: checkpoint, report, log."""


class LocalHooks(EpochHooks):
    """The plain loop's hooks: resume from and checkpoint into a local folder, then call `on_epoch_end`."""

    def __init__(
        self,
        cfg: Mapping[str, Any],
        *,
        checkpoint_dir: Path | None = None,
        resume: bool = True,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.on_epoch_end = on_epoch_end

    def restore(self) -> Mapping[str, Any] | None:
        d = self.checkpoint_dir
        if d is not None and self.resume and (d / CHECKPOINT_FILE).is_file():
            return load_checkpoint(d)
        return None

    def end_epoch(self, solver: Solver, *, epoch: int, step: int, metrics: Mapping[str, float]) -> None:
        if self.checkpoint_dir is not None:
            save_checkpoint(
                self.checkpoint_dir, solver, epoch=epoch, step=step, cfg=self.cfg, metrics=metrics
            )
        if self.on_epoch_end is not None:
            self.on_epoch_end(epoch, dict(metrics))


def run_epochs(
    solver: Solver,
    cfg: Mapping[str, Any],
    hooks: EpochHooks,
    *,
    epochs: int | None = None,
    max_steps_per_epoch: int | None = None,
) -> dict[str, float]:
    """The one epoch loop of every runner: trains `solver` to `epochs` (default `cfg['epochs']`) and returns the
    last epoch's metrics. Batch size is global: each of `hooks.world_size` processes takes
    ceil(batch_size / world_size) clips a step from its shard. Every process seeds alike (the sampler, not the
    RNG, separates their data), so rank 0's RNG state in a checkpoint restores every rank."""
    seed = int(cfg.get("seed", 0))
    rank, world = hooks.rank, hooks.world_size
    batch_size = max(1, math.ceil(int(cfg["batch_size"]) / world))
    train_set, val_set = solver.datasets()
    start, step = 0, 0
    state = hooks.restore()
    if state is not None:
        solver.load_state_dict(state["solver"])
        set_rng_state(state["rng"])
        start, step = int(state["data"]["epoch"]), int(state.get("step", 0))
    else:
        seed_everything(seed)
    hooks.prepare(solver, train_set, val_set)
    collate = solver.collate_fn()
    has_val = val_set is not None and len(val_set) > 0
    total = epochs if epochs is not None else int(cfg["epochs"])
    metrics: dict[str, float] = {}
    for epoch in range(start, total):
        started = time.perf_counter()
        loader = make_loader(
            train_set, batch_size=batch_size, shuffle=True, seed=seed, epoch=epoch, collate_fn=collate,
            rank=rank, world_size=world,
        )  # fmt: skip
        metrics = run_epoch(solver, hooks.batches(loader, epoch=epoch + 1), max_steps=max_steps_per_epoch)
        steps = len(loader) if max_steps_per_epoch is None else min(len(loader), int(max_steps_per_epoch))
        clips = min(len(loader.sampler) if loader.sampler is not None else len(train_set), steps * batch_size)
        step += steps
        train_s = time.perf_counter() - started
        if has_val:
            val_loader = make_loader(
                val_set, batch_size=batch_size, shuffle=False, seed=seed, epoch=0, collate_fn=collate,
                rank=rank, world_size=world,
            )  # fmt: skip
            solver.train(False)
            with torch.no_grad():
                metrics.update({f"val/{k}": v for k, v in solver.validate(val_loader).items()})
        solver.end_epoch()
        metrics = hooks.reduce(metrics, EpochStats(epoch + 1, steps, clips, train_s, started))
        metrics["epoch"] = epoch + 1
        hooks.end_epoch(solver, epoch=epoch + 1, step=step, metrics=metrics)
    return metrics


def fit(
    solver: Solver,
    cfg: Mapping[str, Any],
    *,
    checkpoint_dir: Path | None = None,
    resume: bool = True,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    max_steps_per_epoch: int | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Trains `solver` for `cfg['epochs']` (or `epochs`) without Ray; checkpoints into `checkpoint_dir`.
    `run_epochs` with `LocalHooks`: the Ray Train worker runs the same loop."""
    hooks = LocalHooks(cfg, checkpoint_dir=checkpoint_dir, resume=resume, on_epoch_end=on_epoch_end)
    return run_epochs(solver, cfg, hooks, epochs=epochs, max_steps_per_epoch=max_steps_per_epoch)
