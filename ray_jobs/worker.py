"""The Ray Train worker: the only code `ray_jobs.train`'s TorchTrainer runs on each worker.

`train_fn_per_worker` builds the experiment's solver and runs the one epoch loop (`loop.run_epochs`) with the
worker's hooks (`RayEpochHooks`): its rank's shard of the data, resuming from Ray Train's checkpoint, DDP over
several workers, the batch hooks of `run_training`, losses averaged over workers with the throughput, and each
epoch's checkpoint reported to Ray Train, then logged to MLflow with its samples (rank 0). The driver
(`ray_jobs/train.py`) imports this module only when it starts the trainer, so that it stays light (no torch).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from ray import train as ray_train
from ray.train.torch import get_device, prepare_model

from v2s_models import registry
from v2s_models.settings import DataSettings
from v2s_models.tracking import MLflowTracker, NullTracker
from v2s_models.training import loop


def _mean_over_workers(metrics: Mapping[str, float], world_size: int, device: Any) -> dict[str, float]:
    if world_size == 1:
        return dict(metrics)
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(values)
    return dict(zip(keys, (values / world_size).tolist(), strict=True))


class RayEpochHooks(loop.EpochHooks):
    """The Ray Train worker's part of the one epoch loop (`loop.run_epochs`): its rank's shard, resuming from
    Ray's checkpoint, DDP over several workers, the batch hooks, metrics averaged over workers with throughput,
    and each epoch's checkpoint reported to Ray Train, then logged to MLflow and its samples written (rank 0)."""

    def __init__(self, config: Mapping[str, Any], *, rank: int, world: int, device: Any) -> None:
        self.config, self.rank, self.world_size, self.device = config, rank, world, device
        self.train_set: Any = None
        self.val_set: Any = None
        self.cfg = config["cfg"]
        # each worker's share of the global batch, as loop.run_epochs takes it
        self.batch_size = max(1, math.ceil(int(self.cfg["batch_size"]) / world))
        self.hooks = list(config.get("batch_hooks") or [])
        self.settings = DataSettings.from_dict(config["data_settings"])
        self.tracker: Any = NullTracker()
        if rank == 0 and config.get("tracking_uri") and config.get("mlflow_run_id"):
            self.tracker = MLflowTracker(tracking_uri=config["tracking_uri"], run_id=config["mlflow_run_id"])

    def restore(self) -> Mapping[str, Any] | None:
        checkpoint = ray_train.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as d:
            return loop.load_checkpoint(Path(d))

    def prepare(self, solver: Any, train_set: Any, val_set: Any) -> None:
        self.train_set, self.val_set = train_set, val_set
        if self.world_size > 1:
            # DistributedDataParallel over the trained modules. find_unused_parameters defaults to on: the
            # autoregressive solver's truncated-BPTT chunks leave some parameters without a gradient in a
            # backward pass (DDP then fails); a config whose every parameter always gets one may turn it off.
            unused = bool((self.cfg.get("train") or {}).get("ddp_find_unused_parameters", True))
            ddp_kwargs = {"find_unused_parameters": unused}
            solver.wrap_modules(lambda m: prepare_model(m, parallel_strategy_kwargs=ddp_kwargs))

    def batches(self, loader: Iterable[Any], *, epoch: int) -> Iterable[Any]:
        for hook in self.hooks:
            loader = hook(loader, rank=self.rank, epoch=epoch)
        return loader

    def reduce(self, metrics: dict[str, float], stats: loop.EpochStats) -> dict[str, float]:
        metrics["perf/clips_per_s"] = stats.clips / max(stats.train_s, 1e-9)
        metrics = _mean_over_workers(metrics, self.world_size, self.device)
        # the mean of per-worker rates times workers: the total rate
        metrics["perf/clips_per_s"] *= self.world_size
        metrics["perf/epoch_s"] = time.perf_counter() - stats.started
        return metrics

    def end_epoch(self, solver: Any, *, epoch: int, step: int, metrics: Mapping[str, float]) -> None:
        config, cfg = self.config, self.cfg
        with tempfile.TemporaryDirectory(prefix="v2s-ckpt-") as tmp:
            report_ckpt = None
            if self.rank == 0:
                loop.save_checkpoint(Path(tmp), solver, epoch=epoch, step=step, cfg=cfg, metrics=metrics)
                registry.write_checkpoint_meta(
                    tmp,
                    config=cfg,
                    data_settings=self.settings,
                    features=config["features"],
                    inference_modules=solver.inference_modules(),
                    extra={"run_name": config["run_name"]},
                )
                report_ckpt = ray_train.Checkpoint.from_directory(tmp)
            ray_train.report(
                dict(metrics), checkpoint=report_ckpt, checkpoint_dir_name=f"checkpoint_epoch_{epoch:05d}"
            )
        # Every rank waits until the controller has committed this epoch's checkpoint: a worker that dies right
        # after its report could otherwise take the report with it, and the epoch would be trained twice.
        ray_train.get_all_reported_checkpoints(consistency_mode=ray_train.CheckpointConsistencyMode.COMMITTED)
        if self.rank != 0:
            return
        # logged once the epoch is durable, so a restart does not log an epoch twice
        epochs = int(cfg["epochs"])
        self.tracker.log_metrics(dict(metrics), step=epoch)
        shown = ", ".join(
            f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if k.startswith(("train/", "val/"))
        )
        print(f"[train] epoch {epoch}/{epochs} {shown}", flush=True)
        every = int(config.get("artifacts_every") or 0)
        tracked = not isinstance(self.tracker, NullTracker)  # untracked runs (benchmarks) write no artifacts
        if tracked and (epoch == epochs or (every and epoch % every == 0)):
            has_val = self.val_set is not None and len(self.val_set) > 0
            dataset = self.val_set if has_val else self.train_set
            _write_artifacts(
                solver,
                self.tracker,
                dataset,
                solver.collate_fn(),
                self.batch_size,
                int(cfg.get("seed", 0)),
                epoch,
            )


def train_fn_per_worker(config: dict[str, Any]) -> None:
    """The only code on Ray Train workers: build the solver, then the one epoch loop (`loop.run_epochs`) with
    the worker's hooks (sharding, resume from Ray's checkpoint, reporting)."""

    loop.SOLVERS.update(config.get("solvers") or {})
    cfg = config["cfg"]
    ctx = ray_train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = get_device()
    torch.set_num_threads(max(1, int(config.get("cpus_per_worker", 1))))
    # The same order as loop.fit's callers: seed, build, then run_epochs seeds again (or restores).
    loop.seed_everything(int(cfg.get("seed", 0)))
    solver = loop.build_solver(
        cfg,
        device=device,
        rank=rank,
        world_size=world,
        root=config["root"],
        init_weights=config.get("init_weights"),
    )
    if device.type == "cuda":
        solver.amp_dtype = torch.bfloat16
    hooks = RayEpochHooks(config, rank=rank, world=world, device=device)
    loop.run_epochs(solver, cfg, hooks, max_steps_per_epoch=config.get("max_steps_per_epoch"))


def _write_artifacts(
    solver: Any, tracker: Any, dataset: Any, collate: Any, batch_size: int, seed: int, epoch: int
) -> None:
    """Rank 0: the solver's files (mel images, audio, video) for a few clips, logged under `epoch_<n>/`.

    The random number generators (torch, numpy, Python) are put back as they were: drawing samples must not move
    the training that follows, or a tracked run (which writes them) would train a different model from an
    untracked one with the same seed (session 9 measured that: the demo VarietySound left the untracked run's
    path right after its first samples, at epoch 4)."""
    # CPU torch, numpy and Python (a GPU generator is not put back: never run on one)
    state = loop.rng_state()
    try:
        _write_artifacts_now(solver, tracker, dataset, collate, batch_size, seed, epoch)
    finally:
        loop.set_rng_state(state)


def _write_artifacts_now(
    solver: Any, tracker: Any, dataset: Any, collate: Any, batch_size: int, seed: int, epoch: int
) -> None:
    loader = loop.make_loader(
        dataset, batch_size=batch_size, shuffle=False, seed=seed, epoch=0, collate_fn=collate
    )
    with tempfile.TemporaryDirectory(prefix="v2s-artifacts-") as tmp:
        solver.train(False)
        with torch.no_grad():
            paths = solver.write_artifacts(Path(tmp), loader)
        solver.train(True)
        if paths:
            tracker.log_artifact(Path(tmp), artifact_path=f"epoch_{epoch:05d}")
            for path in sorted(Path(tmp).rglob("*_mel.png")):  # the same images on MLflow's step slider
                tracker.log_image(path, key=f"samples/{path.stem}", step=epoch)
