"""Generating SynthFoley: in-memory clips, the on-disk data set, and the command line."""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from dataprep.synthfoley.encode import write_bytes_atomic, write_mp4_atomic
from dataprep.synthfoley.plan import CATEGORIES, GENERATOR_VERSION, PROFILES, ClipPlan, content_key, plan_clip
from dataprep.synthfoley.scenes import render_frames
from dataprep.synthfoley.sound import synthesize_audio

MANIFEST_NAME = "synthfoley.json"


def synthesize_clip(
    *, seed: int, category: str, index: int, size: str = "tiny"
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Clip `index` of `category` in memory, a pure function of its arguments.

    Returns frames (T, H, W, 3) uint8 RGB, audio (C, N) float32 in [-1, 1] and the ground truth (the dict
    written as the clip's JSON, minus the file fields).
    """

    plan = plan_clip(seed=seed, category=category, index=index, size=size)
    frames = np.stack(list(render_frames(plan)))
    audio = synthesize_audio(plan)
    assert frames.shape == (plan.num_frames, plan.height, plan.width, 3), f"{frames.shape=}"
    assert audio.shape == (plan.channels, plan.num_samples), f"{audio.shape=}"
    return frames, audio, plan.ground_truth()


def clip_counts(num_clips: int) -> dict[str, int]:
    """Split `num_clips` over the categories as evenly as possible (the first ones get the remainder)."""
    base, extra = divmod(num_clips, len(CATEGORIES))
    return {c: base + (1 if i < extra else 0) for i, c in enumerate(CATEGORIES)}


def official_split(index: int) -> str:
    """SynthFoley's own split of a clip, by its index in its category alone (so it never moves as the data set
    grows): index 1, 9, 17, ... test, 2, 10, 18, ... val, the rest train. Two clips per category (the tiny set)
    give one train and one test clip; 30 (the demo) give 22 / 4 / 4, the sizes of the demo's earlier splits."""
    return {1: "test", 2: "val"}.get(index % 8, "train")


def _json_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _is_current(meta_path: Path, video_path: Path, key: str) -> bool:
    """A clip is done when its JSON (written last) has this content key and its mp4 the recorded size."""
    try:
        meta = json.loads(meta_path.read_text())
        return meta.get("content_key") == key and video_path.stat().st_size == meta.get("video_bytes")
    except (OSError, ValueError):
        return False


def _write_clip(out_dir: Path, seed: int, size: str, category: str, index: int) -> tuple[Path, bool]:
    """Write one clip's mp4 then its JSON (each atomically); returns (mp4 path, whether it was written)."""

    plan: ClipPlan = plan_clip(seed=seed, category=category, index=index, size=size)
    folder = out_dir / category
    video_path = folder / f"{plan.clip_id}.mp4"
    meta_path = folder / f"{plan.clip_id}.json"
    if _is_current(meta_path, video_path, content_key(seed, size, category, index)):
        return video_path, False
    folder.mkdir(parents=True, exist_ok=True)
    write_mp4_atomic(
        video_path,
        render_frames(plan),
        synthesize_audio(plan),
        fps=plan.fps,
        sample_rate=plan.sample_rate,
        num_frames=plan.num_frames,
    )
    data = video_path.read_bytes()
    meta = plan.ground_truth()
    meta["video"] = video_path.name
    meta["video_bytes"] = len(data)
    meta["video_sha256"] = hashlib.sha256(data).hexdigest()
    write_bytes_atomic(meta_path, _json_bytes(meta))
    return video_path, True


def _write_clip_job(args: tuple[Path, int, str, str, int]) -> tuple[Path, bool]:
    return _write_clip(*args)


def generate(
    out_dir: Path,
    *,
    size: str | None = "tiny",
    num_clips: int | None = None,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
) -> list[Path]:
    """Write the SynthFoley data set under `out_dir`; returns the clips' mp4 paths in manifest order.

    Layout: `out_dir/<category>/<clip_id>.mp4` and `.json`, plus `out_dir/synthfoley.json` (the manifest) and
    `out_dir/splits/{train,val,test}.txt` (the data set's own split, `official_split`).
    `size` picks the format ranges and the default count ("tiny": 2 clips per category, "demo": 30; "full":
    the issue's full ranges, count required); `num_clips` overrides the count, and with `size=None` uses
    "full". Clips already on disk with the same content key are skipped; other files are left alone.
    """
    profile = "full" if size is None else size
    if profile not in PROFILES:
        raise ValueError(f"unknown SynthFoley size {size!r}; expected one of {tuple(PROFILES)} or None")
    if num_clips is None:
        per_category = PROFILES[profile].clips_per_category
        if per_category is None:
            raise ValueError(f"SynthFoley size {profile!r} needs num_clips")
        num_clips = per_category * len(CATEGORIES)
    if not isinstance(num_clips, int) or num_clips < 1:
        raise ValueError(f"num_clips must be a positive int, got {num_clips!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = clip_counts(num_clips)
    jobs = [(out_dir, seed, profile, c, i) for c in CATEGORIES for i in range(counts[c])]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="SynthFoley", unit="clip", file=sys.stderr)
    results: list[tuple[Path, bool]] = []
    if workers == 1:
        for job in jobs:
            results.append(_write_clip_job(job))
            if bar is not None:
                bar.update()
    else:
        # spawn, not fork: the caller may hold threads (torch, Ray) that a forked child would inherit locked.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for result in pool.map(_write_clip_job, jobs, chunksize=1):
                results.append(result)
                if bar is not None:
                    bar.update()
    if bar is not None:
        bar.close()

    manifest = {
        "dataset": "SynthFoley",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "size": profile,
        "num_clips": num_clips,
        "categories": list(CATEGORIES),
        "counts": counts,
        "clips": [
            {
                "clip_id": path.stem,
                "category": job[3],
                "video": f"{job[3]}/{path.name}",
                "meta": f"{job[3]}/{path.stem}.json",
            }
            for job, (path, _) in zip(jobs, results, strict=True)
        ],
    }

    write_bytes_atomic(out_dir / MANIFEST_NAME, _json_bytes(manifest))
    (out_dir / "splits").mkdir(exist_ok=True)
    for split in ("train", "val", "test"):  # the data set's own lists, as VAS and VEGAS ship them
        lines = [
            f"{job[3]}/{path.stem}\n"
            for job, (path, _) in zip(jobs, results, strict=True)
            if official_split(job[4]) == split
        ]
        write_bytes_atomic(out_dir / "splits" / f"{split}.txt", "".join(lines).encode())
    return [path for path, _ in results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataprep.synthfoley",
        description="Generate SynthFoley, a synthetic VAS-like data set with ground-truth sound events.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--size", choices=sorted(PROFILES), default=None, help="tiny (16 clips), demo (240) or full ranges"
    )
    parser.add_argument(
        "--num-clips", type=int, default=None, help="number of clips (default: the size's count)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    size = args.size
    if size is None and args.num_clips is None:
        size = "tiny"
    try:
        paths = generate(
            args.out,
            size=size,
            num_clips=args.num_clips,
            seed=args.seed,
            workers=args.workers,
            progress=not args.quiet,
        )
    except ValueError as err:
        parser.error(str(err))
    print(f"SynthFoley: {len(paths)} clips in {args.out}")
    return 0
