"""Runs `v2s` commands in one process, one per input, each under a time limit, and prints one JSON line per run.

    python -m tests.corpus.run_cli JOBS.json

JOBS.json: {"limit_s": 60, "jobs": [{"key": "...", "argv": ["features", "x.mp4", ...]}, ...]}. Output per job:
{"key", "rc", "outcome"} where outcome is "processed" (rc 0), "error:<first word after 'error:'>" (a clear
error: rc 1 or 2 and an `error:` line), "traceback:<exception>" (an exception escaped the command) or "hang"
(the limit passed). One process keeps the import and model-loading costs to one.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from experiments.cli import main as v2s_main


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


def _reason(stderr: str) -> str:
    """The short reason of the command's `error:` line (a MediaError reason, or the first words)."""
    m = re.search(r"^error: (.*)$", stderr, flags=re.M)
    if m is None:
        return "no_error_line"
    text = m.group(1)
    named = re.search(
        r": (unreadable|zero_length|corrupt|no_video_stream|no_audio_stream|silent_audio|too_short)\b", text
    )
    if named:
        return named.group(1)
    return re.sub(r"[^a-z_]+", "_", " ".join(text.split()[-3:]).lower()).strip("_")[:40] or "unnamed"


def run_job(argv: list[str], limit_s: int) -> tuple[int | None, str, str]:
    """(exit code, outcome, stderr) of one `v2s` command."""
    err = io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    try:
        with contextlib.redirect_stderr(err):
            rc = v2s_main(argv)
    except _Hang:
        return None, "hang", err.getvalue()
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    except BaseException as e:  # noqa: BLE001 - counting escaped exceptions is the point
        return None, f"traceback:{type(e).__name__}", err.getvalue() + traceback.format_exc()
    finally:
        signal.alarm(0)
    stderr = err.getvalue()
    if "Traceback (most recent call last)" in stderr:
        return rc, "traceback:printed", stderr
    if rc == 0:
        return rc, "processed", stderr
    return rc, f"error:{_reason(stderr)}", stderr


def main(argv: list[str] | None = None) -> int:
    spec = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    for job in spec["jobs"]:
        rc, outcome, stderr = run_job(job["argv"], int(spec.get("limit_s", 60)))
        print(
            json.dumps({"key": job["key"], "rc": rc, "outcome": outcome, "stderr": stderr[-2000:]}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
