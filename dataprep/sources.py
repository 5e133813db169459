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

from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ts"})
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class ClipSource:
    """One video file of a source folder."""

    clip_id: str  # "<category>/<stem>", unique within the source
    path: Path
    category: str
    ground_truth: Path | None = None


def scan_source(root: str | Path) -> list[ClipSource]:
    """Lists the videos of a category-folder source, sorted by clip id.

    Raises ValueError when the folder does not exist or holds no category folder with a video.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"source folder {root} does not exist or is not a folder")
    clips: list[ClipSource] = []
    seen: dict[str, Path] = {}
    for category_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if category_dir.name == "splits":
            continue
        for path in sorted(category_dir.iterdir()):
            if not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES or path.name.startswith("."):
                continue
            clip_id = f"{category_dir.name}/{path.stem}"
            if clip_id in seen:
                raise ValueError(
                    f"two videos in {category_dir} share the stem {path.stem!r} ({seen[clip_id].name}, {path.name}); "
                    "clip ids must be unique"
                )
            seen[clip_id] = path
            gt = path.with_suffix(".json")
            clips.append(ClipSource(clip_id, path, category_dir.name, gt if gt.is_file() else None))
    if not clips:
        raise ValueError(
            f"source folder {root} holds no videos in category sub-folders "
            f"(expected SOURCE/<category>/<video>{{{', '.join(sorted(VIDEO_SUFFIXES))}}})"
        )
    return clips


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
