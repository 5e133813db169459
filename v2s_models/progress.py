"""Stage-by-stage progress lines for long commands (`v2s generate`): a line when a stage starts, a line every
`HEARTBEAT_S` while it runs, a line with its time when it ends.

Library code marks its stages with `with stage("features"):`; nothing is printed until a command calls
`enable(stream)` (the library stays silent for other callers). The heartbeat runs in a daemon thread, so a stage
that spends minutes inside one C call (a model load, a decoder) still shows that it is alive.

    [generate] loading model ...
    [generate] loading model: still running (5 s)
    [generate] loading model: 7.9 s
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

HEARTBEAT_S = 5.0  # well under the 10 s a user (or CI) should wait for a sign of life

_state: dict[str, TextIO | str | float | None] = {"stream": None, "prefix": "v2s", "heartbeat": HEARTBEAT_S}


def enable(stream: TextIO | None = None, *, prefix: str = "v2s", heartbeat_s: float = HEARTBEAT_S) -> None:
    """Prints stages from now on to `stream` (default stderr) as `[prefix] ...`, a heartbeat every
    `heartbeat_s` seconds (> 0)."""
    if heartbeat_s <= 0:
        raise ValueError(f"heartbeat_s must be > 0, got {heartbeat_s}")
    _state.update(stream=stream or sys.stderr, prefix=prefix, heartbeat=float(heartbeat_s))


def disable() -> None:
    """Back to silence (the default)."""
    _state["stream"] = None


def say(message: str) -> None:
    """One progress line (when enabled)."""
    stream = _state["stream"]
    if stream is not None:
        print(f"[{_state['prefix']}] {message}", file=stream, flush=True)  # type: ignore[arg-type]


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Announces stage `name`, a heartbeat while it runs, its time when it ends (or that it failed)."""
    if _state["stream"] is None:
        yield
        return
    t0 = time.perf_counter()
    done = threading.Event()
    every = float(_state["heartbeat"])  # type: ignore[arg-type]

    def beat() -> None:
        while not done.wait(every):
            say(f"{name}: still running ({time.perf_counter() - t0:.0f} s)")

    say(f"{name} ...")
    thread = threading.Thread(target=beat, name=f"progress-{name}", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        done.set()
        say(f"{name}: failed after {time.perf_counter() - t0:.1f} s")
        raise
    finally:
        done.set()
        thread.join()
    say(f"{name}: {time.perf_counter() - t0:.1f} s")
