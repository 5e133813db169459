"""Finding clips in a source folder (the VAS / VEGAS / VGGSound layout).

A source is a folder whose sub-folders are categories, each holding videos in any container FFmpeg reads:

    SOURCE/
      dog/  a.mp4  b.mkv ...
      drum/ c.webm ...
      splits/ train.txt val.txt test.txt     (optional: one clip id or relative path per line)

A clip's id is `<category>/<file stem>`; a ground-truth JSON with the same stem (written by the SynthFoley
generator) is picked up when present.
"""

from __future__ import annotations

import argparse
import errno
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ts"})
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus"})
SPLIT_NAMES = ("train", "val", "test")
SKIP_REASONS = (
    "non_utf8_name",  # the name is not valid UTF-8 (ids, split lists and JSON need text): rename it
    "bad_clip_id",  # the name holds a newline or another control character
    "duplicate_stem",  # two videos of a category share a stem (a.mp4, a.mkv): the id would be ambiguous
    "named_pipe",  # a FIFO: reading it would block
    "device_file",  # a character or block device (/dev/zero would never end)
    "socket",
    "dangling_symlink",  # a link whose target does not exist
    "symlink_loop",  # a link that resolves to itself
    "not_a_regular_file",  # a link to a pipe, device or socket
    "directory_named_like_video",  # a folder called x.mp4
    "audio_only_file",  # an audio file (.wav, .mp3, ...) where videos are expected
)
"""Why `scan` skips an entry of a source folder (before anything opens it)."""
_DVC_BLOCK = (
    "# >>> v2s: odd source entries DVC cannot hash (python -m dataprep.sources --dvcignore)",
    "# <<< v2s",
)


@dataclass(frozen=True)
class ClipSource:
    """One video file of a source folder."""

    clip_id: str  # "<category>/<stem>", unique within the source
    path: Path
    category: str
    ground_truth: Path | None = None


@dataclass(frozen=True)
class SkippedEntry:
    """An entry of a source folder that is not used, with one of SKIP_REASONS."""

    path: Path
    reason: str
    detail: str

    @property
    def shown(self) -> str:
        """The path as printable text (undecodable bytes as \\x escapes)."""
        return printable(self.path)


@dataclass
class SourceScan:
    """What `scan` found: the usable clips (sorted by id) and the skipped entries (sorted by path)."""

    clips: list[ClipSource] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)


def printable(path: str | os.PathLike[str]) -> str:
    """A path as UTF-8 text; bytes that are not UTF-8 become \\xNN (never raises, unlike str.encode)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_control(name: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in name)


def entry_problem(path: Path) -> tuple[str, str] | None:
    """(reason, detail) when `path` cannot be read as a media file, from lstat / stat alone (nothing is opened,
    so a pipe or a device never blocks); None for a regular file or a link to one."""
    try:
        st = path.lstat()
    except OSError as e:
        return "dangling_symlink", str(e)
    if stat.S_ISLNK(st.st_mode):
        try:
            st = path.stat()
        except OSError as e:
            if e.errno == errno.ELOOP:
                return "symlink_loop", f"the link resolves to itself ({os.readlink(path)!r})"
            return "dangling_symlink", f"the link's target {printable(os.readlink(path))} does not exist"
        if not stat.S_ISREG(st.st_mode):
            kind = _kind(st.st_mode)
            if kind == "directory":
                return "directory_named_like_video", "the link points to a folder"
            return "not_a_regular_file", f"the link points to a {kind}"
        return None
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return "directory_named_like_video", "a folder, not a file"
    if stat.S_ISFIFO(st.st_mode):
        return "named_pipe", "a named pipe (reading it would block)"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return "device_file", "a device file"
    if stat.S_ISSOCK(st.st_mode):
        return "socket", "a socket"
    return "not_a_regular_file", f"file type {stat.S_IFMT(st.st_mode):o}"


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _category_dirs(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or p.name == "splits":
            continue
        try:
            if p.is_dir():
                out.append(p)
        except OSError:  # a loop at the category level: not a category
            continue
    return out


def scan(root: str | Path) -> SourceScan:
    """Lists the videos of a category-folder source and every odd entry in it, without opening any file.

    Entries named like videos (VIDEO_SUFFIXES) and audio files are looked at; hidden entries and other files
    (a clip's ground-truth JSON, notes) are ignored. Raises ValueError when the folder does not exist.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"source folder {root} does not exist or is not a folder")
    result = SourceScan()
    by_id: dict[str, list[Path]] = {}
    for category_dir in _category_dirs(root):
        category_ok = _is_utf8(category_dir.name) and not _has_control(category_dir.name)
        for path in sorted(category_dir.iterdir()):
            suffix = path.suffix.lower()
            if path.name.startswith(".") or suffix not in VIDEO_SUFFIXES | AUDIO_SUFFIXES:
                continue
            skip = _skip_reason(path, category_ok)
            if skip is not None:
                result.skipped.append(SkippedEntry(path, *skip))
                continue
            by_id.setdefault(f"{category_dir.name}/{path.stem}", []).append(path)
    for clip_id, paths in sorted(by_id.items()):
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            for p in paths:
                result.skipped.append(
                    SkippedEntry(p, "duplicate_stem", f"{names} share the id {clip_id!r}: rename all but one")
                )
            continue
        path = paths[0]
        gt = path.with_suffix(".json")
        result.clips.append(ClipSource(clip_id, path, path.parent.name, gt if gt.is_file() else None))
    result.skipped.sort(key=lambda s: os.fsencode(s.path))
    return result


def _skip_reason(path: Path, category_ok: bool) -> tuple[str, str] | None:
    if not _is_utf8(path.name) or not category_ok and not _is_utf8(path.parent.name):
        return "non_utf8_name", "the name is not valid UTF-8: rename the file"
    if _has_control(path.name) or not category_ok:
        return "bad_clip_id", "the name holds a newline or another control character: rename the file"
    problem = entry_problem(path)
    if problem is not None:
        return problem
    if path.suffix.lower() in AUDIO_SUFFIXES:
        return "audio_only_file", "an audio file; the source holds videos"
    return None


def scan_source(root: str | Path) -> list[ClipSource]:
    """The usable videos of a category-folder source, sorted by clip id (`scan` lists the skipped entries).

    Raises ValueError when the folder does not exist or holds no usable video in a category folder.
    """
    found = scan(root)
    if not found.clips:
        raise ValueError(
            f"source folder {root} holds no usable videos in category sub-folders "
            f"(expected SOURCE/<category>/<video>{{{', '.join(sorted(VIDEO_SUFFIXES))}}}; "
            f"{len(found.skipped)} entries skipped)"
        )
    return found.clips


def dvcignore_entries(root: str | Path, repo: str | Path) -> list[str]:
    """`.dvcignore` patterns (relative to the DVC repository `repo`) for the skipped entries DVC cannot hash:
    it blocks on pipes and devices and fails on loops, dangling links and names that are not UTF-8."""
    repo_p = Path(repo).resolve()
    out = []
    for s in scan(root).skipped:
        if s.reason in ("duplicate_stem", "audio_only_file", "directory_named_like_video", "bad_clip_id"):
            continue  # DVC hashes these
        rel = (Path(root).resolve() / s.path.relative_to(root)).relative_to(repo_p)
        # Glob characters are escaped; a byte that is not UTF-8 becomes `?` (one character, which it is to DVC).
        text = "".join(
            "?" if not _is_utf8(ch) else f"\\{ch}" if ch in "*?[]!#\\ " else ch for ch in str(rel.as_posix())
        )
        out.append("/" + text)
    return sorted(set(out))


def write_dvcignore(root: str | Path, repo: str | Path = ".") -> list[str]:
    """Rewrites the v2s block of `repo/.dvcignore` with `dvcignore_entries`; returns them."""
    entries = dvcignore_entries(root, repo)
    path = Path(repo) / ".dvcignore"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    lines = text.splitlines()
    if _DVC_BLOCK[0] in lines and _DVC_BLOCK[1] in lines:
        a, b = lines.index(_DVC_BLOCK[0]), lines.index(_DVC_BLOCK[1])
        lines = lines[:a] + lines[b + 1 :]
    if entries:
        lines += [_DVC_BLOCK[0], *entries, _DVC_BLOCK[1]]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return entries


def read_split_lists(root: str | Path) -> dict[str, str]:
    """Reads optional `splits/{train,val,test}.txt` of a source: clip id (or relative path) -> split name."""
    split_dir = Path(root) / "splits"
    assignment: dict[str, str] = {}
    if not split_dir.is_dir():
        return assignment
    for split in SPLIT_NAMES:
        f = split_dir / f"{split}.txt"
        if not f.is_file():
            continue
        for line in f.read_text(encoding="utf-8").splitlines():
            entry = line.strip()
            if not entry or entry.startswith("#"):
                continue
            p = Path(entry)
            clip_id = f"{p.parent.as_posix()}/{p.stem}" if p.parent != Path(".") else p.stem
            if clip_id in assignment and assignment[clip_id] != split:
                raise ValueError(f"{f}: clip {clip_id!r} is listed in both {assignment[clip_id]} and {split}")
            assignment[clip_id] = split
    return assignment


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dataprep.sources", description="List a source folder's clips and odd entries."
    )
    ap.add_argument("source", type=Path)
    ap.add_argument(
        "--dvcignore",
        action="store_true",
        help="write the entries DVC cannot hash into ./.dvcignore (run before `dvc repro`)",
    )
    args = ap.parse_args(argv)
    try:
        found = scan(args.source)
        for s in found.skipped:
            print(f"skipped {s.shown}: {s.reason} ({s.detail})", file=sys.stderr)
        print(f"{len(found.clips)} clips, {len(found.skipped)} skipped", file=sys.stderr)
        if args.dvcignore:
            entries = write_dvcignore(args.source)
            print(f".dvcignore: {len(entries)} entries in the v2s block", file=sys.stderr)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
