"""BatchNorm re-estimation: the running statistics a trained model generates with, measured on the data.

BatchNorm normalises with batch statistics while training and with its running averages at generation. The
running averages trail the weights by their momentum (0.1), and at a high learning rate over a short run the
weights move faster than the averages follow: REGNET's demo generated about 0.06 below the real mel's level and
noise floor with its running statistics and at the real level with batch statistics (docs/results.md, issue 13
item 4). Re-estimation runs the model in eval mode, its BatchNorm layers in train mode with momentum None
(PyTorch's cumulative average: every batch weighs the same), without gradients, over the training data, so each
layer's running mean is the mean of its batch means and its running variance the mean of its batch (unbiased)
variances, taken with the final weights. Dropout stays off, as at generation.

- `batchnorm_layers(module)`: the BatchNorm layers of a module (none: re-estimation leaves it unchanged).
- `reestimating_batchnorm(module)`: context manager; resets the statistics, sets momentum None, restores each
  layer's momentum and mode on exit; the caller runs the forward passes with the layers in train mode
  (`set_batchnorm_train`).
- `recalibrate_package(package_dir, root=..., out=...)`: an existing gan_mel package re-estimated over its
  training split (`GanMelSolver.recalibrate_batchnorm`), written as a new package; the training option is
  `train.bn_recalibrate: true` (`training/gan_mel.py`).

    python -m v2s_models.training.batchnorm PACKAGE --root DATA_ROOT --out NEW_PACKAGE
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from v2s_models.package import load_package, save_package
from v2s_models.training.loop import build_solver

log = logging.getLogger(__name__)


def batchnorm_layers(module: nn.Module) -> list[_BatchNorm]:
    """The module's BatchNorm layers (1d, 2d, 3d, SyncBatchNorm) that track running statistics."""
    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def set_batchnorm_train(module: nn.Module) -> None:
    """Puts only the BatchNorm layers of `module` in train mode (the rest keep their mode)."""
    for layer in batchnorm_layers(module):
        layer.train(True)


@contextmanager
def reestimating_batchnorm(module: nn.Module) -> Iterator[list[_BatchNorm]]:
    """Resets the running statistics of `module`'s BatchNorm layers and sets their momentum to None (cumulative
    average); yields the layers. Every forward pass the caller makes with them in train mode then counts equally.
    On exit each layer gets back its momentum and mode; the re-estimated statistics stay."""
    layers = batchnorm_layers(module)
    saved = [(layer.momentum, layer.training) for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    try:
        yield layers
    finally:
        for layer, (momentum, training) in zip(layers, saved, strict=True):
            layer.momentum = momentum
            layer.train(training)


def recalibrate_package(package_dir: str | Path, *, root: str | Path, out: str | Path) -> dict[str, object]:
    """Re-estimates the BatchNorm statistics of a gan_mel package over its config's training split (data under
    `root`) and writes the result as a new package in `out` (the same config, weights but the statistics
    unchanged; `extra.bn_recalibrated` says what was done). Returns {"layers": n, "clips": clips seen, "out"}.
    A model without BatchNorm is written unchanged with layers 0 (and a warning)."""
    package = load_package(package_dir)
    if package.paradigm != "gan_mel":
        raise ValueError(
            f"{package_dir}: BatchNorm re-estimation runs gan_mel packages, this one is {package.paradigm!r}"
        )
    cfg = copy.deepcopy(package.config)
    solver = build_solver(cfg, root=Path(root))
    for name, module in package.modules.items():
        solver.modules[name].load_state_dict(module.state_dict())
    report = solver.recalibrate_batchnorm()  # type: ignore[attr-defined]
    if not report["layers"]:
        log.warning("%s has no BatchNorm layer: nothing to re-estimate, the weights are copied", package_dir)
    modules = {name: solver.modules[name] for name in package.modules}
    save_package(
        out,
        paradigm=package.paradigm,
        config=package.config,
        data_settings=package.data_settings,
        features=package.features,
        modules=modules,
        extra={**package.extra, "bn_recalibrated": {**report, "source": str(package_dir)}},
    )
    return {**report, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Re-estimate a gan_mel package's BatchNorm statistics over its training split"
    )
    parser.add_argument("package", type=Path, help="package folder (v2s_model.yaml, model.pt)")
    parser.add_argument("--root", type=Path, default=Path("."), help="folder holding data/ (default: .)")
    parser.add_argument("--out", type=Path, required=True, help="folder of the new package")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    if args.out.resolve() == args.package.resolve():
        parser.error("--out must differ from the package (the source is read, never overwritten)")
    torch.set_num_threads(max(1, args.threads))
    print(json.dumps(recalibrate_package(args.package, root=args.root, out=args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
