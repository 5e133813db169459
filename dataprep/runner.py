"""Running one function per clip across cores or a Ray cluster, collecting failures into a quarantine list.

Where the clips run (`run_clips(cluster=...)`, from `decode.cluster` / `features.cluster` in params.yaml):
- `None` (the default): `workers` local processes (in this process when workers <= 1);
- `"local"`: a Ray instance started for this call with `workers` CPUs;
- an address (`auto`, `127.0.0.1:6379`, `ray://head:10001`): the running cluster; `workers` then caps the clips
  in flight (0 or less: one per CPU of the cluster).

Each clip is one Ray task taking one CPU. The per-clip function is the same on every path, so the per-clip cache,
the quarantine and the atomic writes are too, and the outputs are byte-identical (tests/test_dataprep_ray.py).
On a cluster of several machines the input and output folders must be on storage every node mounts at the same
path (the tasks read and write files; only the small result rows travel through Ray).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from threadpoolctl import threadpool_limits

_worker_state: dict[str, Any] = {}
_RUN_KEY = "__v2s_run__"  # which run_clips call built _worker_state in a (reused) Ray worker process
LOCAL_CLUSTER = "local"


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


def _call_on_ray_worker(
    fn: Callable[..., ClipResult], item: Any, init: Callable[[], dict[str, Any]] | None, run_key: str
) -> ClipResult:
    """The body of one Ray task. Ray reuses worker processes across calls, so the per-process state is rebuilt
    when it belongs to another `run_clips` call (another stage, or other parameters)."""
    if _worker_state.get(_RUN_KEY) != run_key:
        _worker_state.clear()
        limit_threads(1)
        if init is not None:
            _worker_state.update(init())
        _worker_state[_RUN_KEY] = run_key
    return fn(item, _worker_state)


def _ray_connect(cluster: str, workers: int) -> bool:
    """Attaches to `cluster` (or starts a local instance); True when this call started Ray and must stop it."""
    import ray  # heavy, and needed only when a cluster is asked for

    if ray.is_initialized():
        return False
    if cluster == LOCAL_CLUSTER:
        ray.init(address="local", num_cpus=max(1, workers), include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=cluster, log_to_driver=False)
    return True


def _run_on_ray(
    fn: Callable[[Any, dict[str, Any]], ClipResult],
    items: Sequence[Any],
    *,
    workers: int,
    cluster: str,
    init: Callable[[], dict[str, Any]] | None,
    on_done: Callable[[], None],
) -> list[ClipResult]:
    """One Ray task per item, at most `workers` in flight (every CPU of the cluster when workers <= 0)."""
    import ray  # heavy, and needed only when a cluster is asked for

    started = _ray_connect(cluster, workers)
    try:
        limit = workers if workers > 0 else max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=1, max_retries=2)(_call_on_ray_worker)
        run_key = uuid.uuid4().hex
        shared_fn, shared_init = ray.put(fn), ray.put(init)
        results: list[ClipResult | None] = [None] * len(items)
        pending: dict[Any, int] = {}
        queue = iter(enumerate(items))
        while True:
            for i, item in queue:
                pending[task.remote(shared_fn, item, shared_init, run_key)] = i
                if len(pending) >= limit:
                    break
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                results[pending.pop(ref)] = ray.get(ref)
                on_done()
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
        if not isinstance(cluster, str) or not cluster.strip():
            raise ValueError(
                f"params.yaml: {desc}.cluster = {cluster!r}; expected null, 'local' or a Ray address"
            )
        out = _run_on_ray(
            fn, items, workers=workers, cluster=cluster.strip(), init=init, on_done=lambda: bar.update(1)
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
