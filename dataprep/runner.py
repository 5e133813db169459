"""Running one function per clip across cores or a Ray cluster, collecting failures into a quarantine list.

Where the clips run (`run_clips(cluster=...)`, from `decode.cluster` / `features.cluster` in params.yaml):
- `None` (the default): `workers` local processes (in this process when workers <= 1);
- `"local"`: a Ray instance started for this call with `workers` CPUs;
- an address (`auto`, `127.0.0.1:6379`, `ray://head:10001`): the running cluster; `workers` then caps the clips
  in flight (0 or less: one per CPU of the cluster).

Each clip is one Ray task taking one CPU (`v2s_models/ray_tasks.py`, the runner the evaluation's clips use too).
The per-clip function is the same on every path, so the per-clip cache, the quarantine and the atomic writes are
too, and the outputs are byte-identical (tests/test_dataprep_ray.py).
On a cluster of several machines the input and output folders must be on storage every node mounts at the same
path (the tasks read and write files; only the small result rows travel through Ray).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from typing import Any

from threadpoolctl import threadpool_limits

from v2s_models import ray_tasks

_worker_state: dict[str, Any] = {}  # a pool process's state (`init()`)


@dataclass
class ClipResult:
    clip_id: str
    status: str  # "ok" | "cached" | "quarantined"
    reason: str | None = None
    row: dict[str, Any] | None = None


def limit_threads(n: int = 1) -> None:
    """One worker process per core: keep each process's native thread pools to `n` threads.

    The BLAS pool is limited through threadpoolctl, after numpy has loaded it: the environment variables act only
    on libraries loaded later, and a spawned worker re-imports the parent's main module (numpy included) before
    this runs. It matters for the bytes, not only the speed: OpenBLAS's matrix product (the mel filter bank)
    rounds differently with 1 and 2 threads, so without it the features depended on the machine's core count and
    on whether the clips ran in the pool or on Ray.
    """
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)
    os.environ["OPENBLAS_NUM_THREADS"] = str(n)
    import numpy  # noqa: F401 (loads the BLAS library, so that the limit below reaches it)

    threadpool_limits(limits=n)
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(n)
    except ImportError:
        pass


def _init_worker(init: Callable[[], dict[str, Any]] | None) -> None:
    limit_threads(1)
    if init is not None:
        _worker_state.update(init())


def _call(fn: Callable[..., ClipResult], item: Any) -> ClipResult:
    return fn(item, _worker_state)


def _ray_worker_state(init: Callable[[], dict[str, Any]] | None) -> dict[str, Any]:
    """A Ray worker's state for one `run_clips` call (built on the first task it runs for it), as a pool
    process's: one thread, then `init()`."""
    limit_threads(1)
    return init() if init is not None else {}


def _call_with_state(
    fn: Callable[[Any, dict[str, Any]], ClipResult], state: dict[str, Any], item: Any
) -> ClipResult:
    return fn(item, state)


def _run_on_ray(
    fn: Callable[[Any, dict[str, Any]], ClipResult],
    items: Sequence[Any],
    *,
    workers: int,
    cluster: str,
    init: Callable[[], dict[str, Any]] | None,
    on_done: Callable[[], None],
) -> list[ClipResult]:
    """One Ray task of one CPU per item (`v2s_models.ray_tasks`), at most `workers` in flight (every CPU of the
    cluster when workers <= 0)."""
    import ray  # heavy, and needed only when a cluster is asked for

    started = ray_tasks.connect(cluster, num_cpus=max(1, workers))
    try:
        limit = workers if workers > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
        results = ray_tasks.map_tasks(
            partial(_call_with_state, fn),
            items,
            setup=partial(_ray_worker_state, init),
            cpus_per_task=1,
            in_flight=limit,
            on_done=lambda _n: on_done(),
        )
    finally:
        if started:
            ray.shutdown()
    return [r for r in results if r is not None]


def run_clips(
    fn: Callable[[Any, dict[str, Any]], ClipResult],
    items: Sequence[Any],
    *,
    workers: int,
    desc: str,
    init: Callable[[], dict[str, Any]] | None = None,
    progress: bool = True,
    cluster: str | None = None,
) -> list[ClipResult]:
    """Applies `fn(item, state)` to every item; results come back in the order of `items`.

    `cluster` None: in `workers` processes (in this process when workers <= 1); otherwise as Ray tasks on that
    cluster ("local" or an address, see the module docstring). `fn` and the items must be picklable (module-level
    functions, plain data). `init` builds per-process state once (a loaded network, say).
    """
    from tqdm import tqdm

    bar = tqdm(
        total=len(items), desc=desc, unit="clip", disable=not progress, file=sys.stderr, smoothing=0.05
    )
    if cluster is not None:
        cluster = ray_tasks.check_cluster(cluster, setting=f"params.yaml: {desc}.cluster")
        out = _run_on_ray(
            fn, items, workers=workers, cluster=cluster, init=init, on_done=lambda: bar.update(1)
        )
        bar.close()
        return out
    results: list[ClipResult | None] = [None] * len(items)
    if workers <= 1 or len(items) <= 1:
        state = init() if init is not None else {}
        with threadpool_limits(limits=1):  # the BLAS rounding of the worker processes (see limit_threads)
            for i, item in enumerate(items):
                results[i] = fn(item, state)
                bar.update(1)
    else:
        ctx = mp.get_context("spawn")  # fork after torch/OpenMP start-up can deadlock
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(init,)
        ) as ex:
            futures = {ex.submit(_call, fn, item): i for i, item in enumerate(items)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
    bar.close()
    return [r for r in results if r is not None]


def summarize(results: Iterable[ClipResult], stage: str) -> dict[str, int]:
    counts = {"ok": 0, "cached": 0, "quarantined": 0}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    print(
        f"[{stage}] {counts['ok']} processed, {counts['cached']} unchanged (cached), "
        f"{counts['quarantined']} quarantined",
        file=sys.stderr,
    )
    return counts
