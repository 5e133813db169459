"""Where the evaluation's per-clip work runs: in this process, or as Ray tasks on a cluster (`evaluate.cluster`).

    cluster None (params.yaml `evaluate.cluster: null`, the default): one clip after another in this process;
    "local": a Ray instance started for the evaluation (one CPU per task, every CPU of this machine);
    an address ("auto", "127.0.0.1:6379", "ray://head:10001"): the running cluster, every CPU of it.

The per-clip functions are the same on both paths and each clip's work is seeded on its own (generation,
Griffin-Lim, the scorers), so the figures do not depend on where a clip ran or in which order the clips finished
(tests/v2s_models/test_evaluation_cluster.py compares the two metrics.json). Float sums depend on how many
threads share them (OpenBLAS's products, torch's convolutions and STFTs round differently with 1 and 2 threads),
so each Ray task runs with this process's thread counts (torch's and each native pool's) and reserves that many
CPUs (at most a node's): on a cluster of N CPUs, N / threads clips at once. What a task needs (the model package,
the clip's arrays) travels through Ray's object store, so the workers need no access to the prepared data; the
results come back in the order of the clips. Progress: a line (or a tqdm bar) per finished clip on both paths.

The Ray tasks themselves (connecting, the tasks in flight, the per-worker state, the order of the results) are
`v2s_models/ray_tasks.py`'s, which the data stages' runner (`dataprep/runner.py`) uses too; this module adds what
the evaluation needs: the in-process path, the thread counts and CPUs per task, and the progress of each clip.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from v2s_models import ray_tasks
from v2s_models.evaluation.progress import progress

T = TypeVar("T")
R = TypeVar("R")


def check_cluster(cluster: str | None) -> str | None:
    """`cluster` stripped, None for None; anything else but a non-empty string is refused."""
    return ray_tasks.check_cluster(cluster, setting="evaluate.cluster")


class ClipRunner:
    """Applies per-clip functions to lists of items, in this process or on Ray (module docstring)."""

    def __init__(self, cluster: str | None = None) -> None:
        self.cluster = check_cluster(cluster)
        self._ray: Any = None
        self._started = False

    def __enter__(self) -> ClipRunner:
        if self.cluster is not None:
            import ray  # heavy, and needed only when a cluster is asked for

            self._ray = ray
            self._started = ray_tasks.connect(self.cluster, num_cpus=os.cpu_count() or 1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def map(
        self,
        fn: Callable[[Any, T], R],
        items: Sequence[T],
        *,
        shared: Callable[[], Any],
        desc: str,
    ) -> list[R]:
        """[fn(state, item) for item in items] in the items' order; `shared()` builds the state (a generator, a
        vocoder) once here or once per Ray worker process. `fn`, `shared` and the items must be picklable
        (module-level functions or functools.partial of them, plain data, torch modules)."""
        if self._ray is None:
            state = shared()
            return [fn(state, item) for item in progress(items, desc=desc)]
        return self._map_on_ray(fn, items, shared=shared, desc=desc)

    def _map_on_ray(
        self, fn: Callable[[Any, T], R], items: Sequence[T], *, shared: Callable[[], Any], desc: str
    ) -> list[R]:
        ray = self._ray
        threads = thread_counts()
        node_cpus = max((int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")), default=1)
        cpus = max(1, min(threads["torch"], node_cpus))
        limit = max(1, int(ray.cluster_resources().get("CPU", 1)) // cpus)
        t0 = time.perf_counter()
        with _bar(len(items), desc) as tick:
            return ray_tasks.map_tasks(
                fn,
                items,
                setup=partial(_worker_state, threads, shared),
                cpus_per_task=cpus,
                in_flight=limit,
                on_done=lambda n: tick(n, time.perf_counter() - t0),
            )


def thread_counts() -> dict[str, Any]:
    """This process's thread counts: torch's and each native pool's (threadpoolctl's user APIs: blas, openmp)."""
    import torch
    from threadpoolctl import threadpool_info

    pools: dict[str, int] = {}
    for pool in threadpool_info():
        pools[pool["user_api"]] = max(pools.get(pool["user_api"], 1), int(pool["num_threads"]))
    return {"torch": torch.get_num_threads(), "pools": pools}


def _worker_state(threads: dict[str, Any], shared: Callable[[], Any]) -> Any:
    """A Ray worker's state for one evaluation (built on the first task it runs for it): this process's thread
    counts (`threads`, so that float sums round as in the caller), then `shared()`."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(threads["torch"]))
    threadpool_limits(limits=dict(threads["pools"]))  # kept for the process (not used as a context)
    return shared()


@contextmanager
def _bar(total: int, desc: str) -> Iterator[Callable[[int, float], None]]:
    """Progress of out-of-order completions: tqdm on a terminal, else the lines `progress` prints."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=total, desc=desc, unit="clip", leave=False) as bar:
            yield lambda _i, _s: bar.update(1)
        return

    def line(i: int, seconds: float) -> None:
        print(f"{desc}: {i}/{total} clips ({seconds:.1f} s)", file=sys.stderr, flush=True)

    yield line
