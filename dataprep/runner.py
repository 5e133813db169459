"""Running one function per clip across cores, collecting failures into a quarantine list."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

_worker_state: dict[str, Any] = {}


@dataclass
class ClipResult:
    clip_id: str
    status: str  # "ok" | "cached" | "quarantined"
    reason: str | None = None
    row: dict[str, Any] | None = None


def limit_threads(n: int = 1) -> None:
    """One worker process per core: keep each process's native thread pools to `n` threads."""
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)
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


def run_clips(
    fn: Callable[[Any, dict[str, Any]], ClipResult],
    items: Sequence[Any],
    *,
    workers: int,
    desc: str,
    init: Callable[[], dict[str, Any]] | None = None,
    progress: bool = True,
) -> list[ClipResult]:
    """Applies `fn(item, state)` to every item, in `workers` processes (in this process when workers <= 1).

    `init` builds per-process state once (a loaded network, say). Results come back in the order of `items`.
    """
    from tqdm import tqdm

    bar = tqdm(
        total=len(items), desc=desc, unit="clip", disable=not progress, file=sys.stderr, smoothing=0.05
    )
    results: list[ClipResult | None] = [None] * len(items)
    if workers <= 1 or len(items) <= 1:
        state = init() if init is not None else {}
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
