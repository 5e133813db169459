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

The data stages have their own runner (`dataprep/runner.py`: a process pool or Ray tasks writing per-clip files
with a cache and a quarantine); the library may not import dataprep, so this is the library's.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from v2s_models.evaluation.progress import progress

T = TypeVar("T")
R = TypeVar("R")
LOCAL_CLUSTER = "local"

# Per worker process: the shared state the last evaluation built (a generator, a vocoder), so that the tasks of
# one evaluation build it once per process; another evaluation's key rebuilds it.
_state: dict[str, Any] = {}


def check_cluster(cluster: str | None) -> str | None:
    """`cluster` stripped, None for None; anything else but a non-empty string is refused."""
    if cluster is None:
        return None
    if not isinstance(cluster, str) or not cluster.strip():
        raise ValueError(f"evaluate.cluster = {cluster!r}; expected null, 'local' or a Ray address")
    return cluster.strip()


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
            if not ray.is_initialized():
                if self.cluster == LOCAL_CLUSTER:
                    ray.init(
                        address="local",
                        num_cpus=os.cpu_count() or 1,
                        include_dashboard=False,
                        log_to_driver=False,
                    )
                else:
                    ray.init(address=self.cluster, log_to_driver=False)
                self._started = True
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
        task = ray.remote(num_cpus=cpus, max_retries=2)(_task)
        key = uuid.uuid4().hex
        # The builder travels once, inside a list so that Ray hands the task the reference (resolved only when
        # the worker has not built this evaluation's state yet) instead of the object.
        builder = [ray.put(shared)]
        results: list[Any] = [None] * len(items)
        pending: dict[Any, int] = {}
        queue = iter(enumerate(items))
        done_count, t0 = 0, time.perf_counter()
        with _bar(len(items), desc) as tick:
            while True:
                for i, item in queue:
                    pending[task.remote(fn, item, builder, key, threads)] = i
                    if len(pending) >= limit:
                        break
                if not pending:
                    break
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    results[pending.pop(ref)] = ray.get(ref)
                    done_count += 1
                    tick(done_count, time.perf_counter() - t0)
        return results


def thread_counts() -> dict[str, Any]:
    """This process's thread counts: torch's and each native pool's (threadpoolctl's user APIs: blas, openmp)."""
    import torch
    from threadpoolctl import threadpool_info

    pools: dict[str, int] = {}
    for pool in threadpool_info():
        pools[pool["user_api"]] = max(pools.get(pool["user_api"], 1), int(pool["num_threads"]))
    return {"torch": torch.get_num_threads(), "pools": pools}


def _task(
    fn: Callable[[Any, Any], Any], item: Any, builder: list[Any], key: str, threads: dict[str, Any]
) -> Any:
    """One Ray task: the worker's threads and state for evaluation `key` (set on the first task it runs), then
    fn."""
    if _state.get("key") != key:
        import ray
        import torch
        from threadpoolctl import threadpool_limits

        _state.clear()
        torch.set_num_threads(int(threads["torch"]))
        threadpool_limits(limits=dict(threads["pools"]))  # kept for the process (not used as a context)
        _state["value"] = ray.get(builder[0])()
        _state["key"] = key
    return fn(_state["value"], item)


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
