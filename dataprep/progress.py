"""Progress of the per-clip stages (decode, features) where nobody watches a terminal.

`--progress bar` draws tqdm's bar (the default when stderr is a terminal); `--progress lines` prints a line when
the stage starts, one every few seconds while it runs and one at the end (the default otherwise: under
`dvc repro` piped to a log, CI), so a long stage never looks hung; `--progress none` (or the older
`--no-progress`) prints only the stage's summary.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from v2s_models import progress as stage_progress

MODES = ("auto", "bar", "lines", "none")
LINE_EVERY_S = 5.0


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """`--progress MODE` and the older `--no-progress` (= none)."""
    ap.add_argument("--progress", choices=MODES, default="auto", help="auto: bar on a terminal, else lines")
    ap.add_argument("--no-progress", action="store_true", help="as --progress none")


def resolve(args: argparse.Namespace) -> str:
    """The mode the arguments ask for: bar, lines or none."""
    if args.no_progress:
        return "none"
    if args.progress == "auto":
        return "bar" if sys.stderr.isatty() else "lines"
    return str(args.progress)


@contextmanager
def clip_stage(stage: str, num_clips: int, mode: str) -> Iterator[bool]:
    """Wraps a stage's per-clip work; yields whether the runner should draw its tqdm bar."""
    if mode != "lines":
        yield mode == "bar"
        return
    stage_progress.enable(sys.stderr, prefix=stage, heartbeat_s=LINE_EVERY_S)
    try:
        with stage_progress.stage(f"{num_clips} clips"):
            yield False
    finally:
        stage_progress.disable()
