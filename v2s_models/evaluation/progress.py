"""Progress per clip: a tqdm bar on a terminal, otherwise (DVC, CI, a log file) one line per finished clip."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Sequence[T], *, desc: str) -> Iterator[T]:
    """Yields `items`, reporting on stderr: tqdm when stderr is a terminal, else a line `desc: i/n clips (s)`
    when each item is done (a clip takes seconds, so a log sees a line well within every 10 s)."""
    total = len(items)
    if sys.stderr.isatty():
        yield from tqdm(items, desc=desc, total=total, unit="clip", leave=False)
        return
    t0 = time.perf_counter()
    for i, item in enumerate(items, start=1):
        yield item
        print(f"{desc}: {i}/{total} clips ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
