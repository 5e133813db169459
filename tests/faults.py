"""Test-only fault injection for Ray Train runs, installed through `run_training(batch_hooks=[...])`.

`CrashAt(rank=1, epoch=2, step=0, marker=PATH)` makes that rank exit abruptly (os._exit: no cleanup, no report)
when it reaches that step of that (1-based) epoch, once: creating the marker file records that it happened, and
a restarted worker finds it and trains on. The object is pickled to the workers by reference, so this module must
be importable there (the repository root is on the driver's sys.path, which Ray gives its workers).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CrashAt:
    """Where one worker dies: rank, 1-based epoch, step within the epoch, marker file."""

    rank: int
    epoch: int
    step: int
    marker: str

    def __call__(self, batches: Iterable[Any], *, rank: int, epoch: int) -> Iterable[Any]:
        if rank != self.rank or epoch != self.epoch:
            return batches
        return self._crashing(batches, rank, epoch)

    def _crashing(self, batches: Iterable[Any], rank: int, epoch: int) -> Iterator[Any]:
        for i, batch in enumerate(batches):
            if i == self.step:
                try:
                    with open(self.marker, "x") as f:  # "x": only the first time
                        f.write(f"rank {rank} exited at epoch {epoch} step {i}\n")
                except FileExistsError:
                    pass
                else:
                    sys.stdout.flush()
                    os._exit(1)
            yield batch
