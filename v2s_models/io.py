"""Atomic file writes and content hashing.

Every file a stage writes goes to a temporary name in the destination directory (`.<name>.<random>.part`) and is
moved into place with `os.replace`, so an interrupted run never leaves a half-written file that a later stage could
read; the file gets the mode the process umask gives new files (not mkstemp's 0600). Moving also
gives the file a new inode, which keeps DVC's hard-linked cache copies intact.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


def _umask() -> int:
    """The process umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files: give the file the mode the user's umask asks for
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_npy(path: str | os.PathLike[str], array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue())


def write_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def require_regular_file(path: str | os.PathLike[str]) -> None:
    """Raises OSError unless `path` is (or links to) a regular file: opening a pipe blocks and reading a device
    such as /dev/zero never ends, so this is checked with stat() before anything opens it."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file (a pipe, device, socket or folder)", str(path))


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """sha256 of a regular file's bytes (OSError for anything else, before it is opened)."""
    require_regular_file(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_sha256(obj: Any) -> str:
    """Hash of a JSON-serialisable object, independent of key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def read_cache_key(meta_path: str | os.PathLike[str]) -> str | None:
    """The `key` of a stage's per-clip meta.json (written last, so present only when the clip is complete)."""
    try:
        return json.loads(Path(meta_path).read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError):
        return None


def write_run_metrics(
    out_dir: str | os.PathLike[str], metrics: str | os.PathLike[str] | None, obj: Any
) -> None:
    """Writes a stage's run counters to the metrics file `metrics` (outside its output folder, None: nowhere),
    and removes a `summary.json` an earlier version left inside `out_dir`: an output holds content only, so an
    unchanged clip set gives byte-identical outputs and the stages after it stay cached."""
    (Path(out_dir) / "summary.json").unlink(missing_ok=True)
    if metrics is None:
        return
    m = Path(metrics).resolve()
    if m.is_relative_to(Path(out_dir).resolve()):
        raise ValueError(f"metrics file {metrics} lies inside the stage output {out_dir}; put it beside it")
    write_json(m, obj)
