"""One function per item as Ray tasks: the runner under the evaluation's clips (`v2s_models/evaluation/cluster.py`)
and the data stages' clips (`dataprep/runner.py`).

    cluster "local": a Ray instance started for the call (and stopped after it), with the CPUs the caller names;
    an address ("auto", "127.0.0.1:6379", "ray://head:10001"): the running cluster.

`map_tasks` keeps at most `in_flight` tasks pending, hands results back in the items' order whatever order they
finished in, and retries a task whose worker died (twice). Ray reuses worker processes, so each call's per-process
state (a loaded network, the thread limits) is built by `setup` on the first task a process runs for that call,
and rebuilt when the process last served another call. `setup` and `fn` travel once through the object store.

Ray is imported only inside these functions: the library imports it only when a cluster is asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

LOCAL_CLUSTER = "local"

# Per Ray worker process: the state the last `map_tasks` call's `setup` built, under that call's key.
_state: dict[str, Any] = {}


def check_cluster(cluster: object, *, setting: str) -> str | None:
    """`cluster` stripped, None for None; anything else but a non-empty string is refused, naming `setting` (the
    parameter it came from)."""
    if cluster is None:
        return None
    if not isinstance(cluster, str) or not cluster.strip():
        raise ValueError(f"{setting} = {cluster!r}; expected null, 'local' or a Ray address")
    return cluster.strip()


def connect(cluster: str, *, num_cpus: int) -> bool:
    """Attaches to `cluster`, or starts a local instance of `num_cpus` CPUs for "local" (nothing when Ray is
    already initialised in this process); True when this call started Ray and its caller must stop it."""
    import ray  # heavy, and needed only when a cluster is asked for

    if ray.is_initialized():
        return False
    if cluster == LOCAL_CLUSTER:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    else:
        ray.init(address=cluster, log_to_driver=False)
    return True


def map_tasks(
    fn: Callable[[Any, Any], Any],
    items: Sequence[Any],
    *,
    setup: Callable[[], Any],
    cpus_per_task: int,
    in_flight: int,
    on_done: Callable[[int], None] | None = None,
) -> list[Any]:
    """[fn(state, item) for item in items], one Ray task per item reserving `cpus_per_task` CPUs, at most
    `in_flight` pending; `state` is `setup()`, built once per worker process for this call. `on_done(n)` is
    called as the n-th task finishes. Ray must be initialised (`connect`); `fn`, `setup` and the items must be
    picklable (module-level functions or functools.partial of them, plain data, torch modules)."""
    import ray  # heavy, and needed only when a cluster is asked for

    task = ray.remote(num_cpus=cpus_per_task, max_retries=2)(_task)
    key = uuid.uuid4().hex
    shared_fn = ray.put(fn)  # a top-level reference: Ray resolves it before each task
    # The builder inside a list, so that the task gets the reference and resolves it only when its process has
    # not built this call's state yet.
    builder = [ray.put(setup)]
    results: list[Any] = [None] * len(items)
    pending: dict[Any, int] = {}
    queue = iter(enumerate(items))
    done_count = 0
    while True:
        for i, item in queue:
            pending[task.remote(shared_fn, item, builder, key)] = i
            if len(pending) >= in_flight:
                break
        if not pending:
            break
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            results[pending.pop(ref)] = ray.get(ref)
            done_count += 1
            if on_done is not None:
                on_done(done_count)
    return results


def _task(fn: Callable[[Any, Any], Any], item: Any, builder: list[Any], key: str) -> Any:
    """One Ray task: this process's state for call `key` (built on the first task it runs for it), then fn."""
    if _state.get("key") != key:
        import ray  # heavy, and needed only when a cluster is asked for

        _state.clear()
        _state["value"] = ray.get(builder[0])()
        _state["key"] = key
    return fn(_state["value"], item)
