"""Planning a sweep before any trial starts: the space as Ray Tune domains, one trial's resources, how many trials
fit on the cluster at once, and the checks that fail early (data a trial needs, a trial larger than the cluster).

`ray_jobs.sweep` (the driver) calls these; they import neither Ray Train nor Optuna, so a check fails in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def tune_space(space: Mapping[str, Mapping[str, list[Any]]]) -> dict[str, Any]:
    """The declaration's distributions as Ray Tune domains (Optuna's sampler reads them through OptunaSearch)."""
    from ray import tune

    out = {}
    for key, dist in space.items():
        ((name, args),) = dist.items()
        if name == "choice":
            out[key] = tune.choice(list(args))
        elif name == "loguniform":
            out[key] = tune.loguniform(float(args[0]), float(args[1]))
        elif name == "uniform":
            out[key] = tune.uniform(float(args[0]), float(args[1]))
        else:  # randint, both bounds included
            out[key] = tune.randint(int(args[0]), int(args[1]) + 1)
    return out


def trial_resources(sweep: Any) -> tuple[float, float, int]:
    """(CPUs, GPUs, epochs) of one trial: its driver's reservation plus its Train workers (the largest over the
    grid's entries, or the space's extremes)."""
    from ray_jobs.studies import space_points, trial_config  # lazy: torch

    if sweep.kind == "grid":
        configs = [trial_config(sweep, label=label) for label in sweep.grid]
    else:
        configs = [trial_config(sweep, p) for p in space_points(sweep.space)]
    cpus = gpus = 0.0
    for cfg in configs:
        scaling = cfg.get("scaling") or {}
        workers = int(scaling.get("num_workers", 1))
        cpus = max(cpus, sweep.trial_cpu + workers * float(scaling.get("cpus_per_worker", 1)))
        gpus = max(gpus, workers * (1.0 if scaling.get("use_gpu") else 0.0))
    return cpus, gpus, max(int(c["epochs"]) for c in configs)


def derive_concurrency(cluster: Mapping[str, float], cpus: float, gpus: float) -> int:
    """How many trials fit on the cluster at once: CPUs / CPUs per trial (and GPUs alike), at least 1."""
    n = math.floor(float(cluster.get("CPU", 0.0)) / cpus + 1e-6) if cpus > 0 else 1
    if gpus > 0:
        n = min(n, math.floor(float(cluster.get("GPU", 0.0)) / gpus + 1e-6))
    return max(1, n)


def check_fits(cluster: Mapping[str, float], cpus: float, gpus: float, trial_cpu: float) -> None:
    """A ValueError, before any trial starts, when one trial needs more CPUs or GPUs than the whole cluster has
    (Tune would otherwise leave it pending for ever)."""
    have_cpu, have_gpu = float(cluster.get("CPU", 0.0)), float(cluster.get("GPU", 0.0))
    if cpus > have_cpu + 1e-6:
        raise ValueError(
            f"a trial needs {cpus:g} CPUs ({trial_cpu:g} for its driver + num_workers x scaling.cpus_per_worker) "
            f"but the Ray cluster has {have_cpu:g}: lower them (e.g. --set scaling.cpus_per_worker="
            f"{max(0.1, have_cpu - trial_cpu):g}) or add machines"
        )
    if gpus > have_gpu + 1e-6:
        raise ValueError(
            f"a trial needs {gpus:g} GPUs (scaling.use_gpu with num_workers workers) but the Ray cluster has "
            f"{have_gpu:g}: --set scaling.use_gpu=false, or a cluster with GPUs"
        )


def check_data(sweep: Any, root: Path) -> None:
    """Every trial's `data.manifest` exists under `root`, before Ray starts: a grid entry that trains on a subset
    nobody wrote (the correlation-filtered subsets) fails here, naming the entry and the file."""
    from ray_jobs.studies import space_points, trial_config  # lazy: torch

    configs = {f"GRID.{label}": trial_config(sweep, label=label) for label in sweep.grid}
    if sweep.kind == "study":
        configs["BASE"] = trial_config(sweep, space_points(sweep.space)[0])
    for where, cfg in configs.items():
        manifest = Path((cfg.get("data") or {}).get("manifest") or "data/prepared/manifest.jsonl")
        path = manifest if manifest.is_absolute() else root / manifest
        if not path.is_file():
            hint = (
                " (the correlation-filtered subsets: `dvc repro filter` writes them)"
                if "filtered" in manifest.parts
                else " (run `dvc repro` to prepare the data)"
            )
            raise FileNotFoundError(f"{sweep.path}: {where}: data.manifest {path} does not exist{hint}")
