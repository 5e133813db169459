"""Benchmark: optical flow (TV-L1, DIS) and EfficientNet-Lite0 features on the real clips, 1 vs 2 workers.

    .venv/bin/python tests/bench/bench_dataprep_features.py            # all twelve clips, first 10 s each
    .venv/bin/python tests/bench/bench_dataprep_features.py --quick    # 3 small clips, 4 frames each

Clips from ../shared/media/real/ are decoded with PyAV at 21.5 fps (the RegNet rate: for each output time
k / 21.5 the latest source frame at or before it), at most 10 s, and the centred square resized to the
benchmark size. A clip shorter than 10 s is looped to 215 frames through `loop_index`, so it costs its own
length: its distinct frames plus the wrap-around flow pair.

Each configuration runs in a fresh subprocess so that its peak RSS (ru_maxrss, including imports and the
decoded frames) is its own. Decoding is not timed. "workers" is the flow thread pool for TV-L1 / DIS and
torch's thread count for EfficientNet-Lite0. CPU / wall near 2 shows both cores busy;
"CPU ms/frame" is less disturbed than wall time when other jobs share the machine. Per-frame cost is
per computed frame pair (flow) or image (network); "10-s clips/s" converts it to a clip of 215 distinct
frames (no looping); "clips/s" is measured on the set (looped short clips cost less; only meaningful
without --quick).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIA_DIR = REPO_ROOT / ".." / "shared" / "media" / "real"
FPS = 21.5
CLIP_FRAMES = 215  # 10 s at 21.5 fps
QUICK_CLIPS = ("hitting_metal.mp4", "dog_barking.mp4", "webcam_talk_mjpeg_u8.avi")
QUICK_MAX_FRAMES = 4
TASKS = ("tvl1", "dis", "efficientnet_lite0")
SIZES = (224, 112)
WORKERS = (1, 2)


def decode_at_fps(path: Path, *, size: int, fps: float = FPS, max_frames: int = CLIP_FRAMES) -> np.ndarray:
    """(N, size, size, 3) uint8 RGB: the clip resampled to `fps` (latest frame at or before each time)."""
    import av
    import cv2

    def square(image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        return cv2.resize(
            image[top : top + side, left : left + side], (size, size), interpolation=cv2.INTER_AREA
        )

    times: list[float] = []  # seconds from the first frame
    images: list[np.ndarray] = []
    start: float | None = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame_period = 1.0 / float(stream.average_rate or 25)
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            start = frame.time if start is None else start
            if frame.time - start >= max_frames / fps:
                break
            times.append(frame.time - start)
            images.append(square(frame.to_ndarray(format="rgb24")))
    if not images:
        raise ValueError(f"no video frames decoded from {path}")
    duration = times[-1] + frame_period
    count = min(max_frames, max(1, int(duration * fps + 1e-6)))
    # For each output time, the latest source frame at or before it.
    source = np.searchsorted(np.asarray(times), np.arange(count) / fps + 1e-6, side="right") - 1
    return np.stack([images[max(0, int(i))] for i in source])


def run_single(task: str, size: int, workers: int, clips: list[str], max_frames: int) -> dict[str, float]:
    """Runs one configuration in this process; returns its figures."""
    decoded = [decode_at_fps(MEDIA_DIR / name, size=size, max_frames=max_frames) for name in clips]
    units = 0
    if task == "efficientnet_lite0":
        import torch

        from v2s_models.media.visual import build_extractor

        torch.set_num_threads(workers)
        extractor = build_extractor("efficientnet_lite0", image_size=size, threads=workers)
        extractor(decoded[0][:2])  # warm-up: first-call allocations are not the steady state
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for frames in decoded:
            extractor(frames)
            units += frames.shape[0]
    else:
        from v2s_models.media.flow import optical_flow

        wall0, cpu0 = time.perf_counter(), time.process_time()
        for frames in decoded:
            count = frames.shape[0]
            # The looped clip's distinct pairs: t -> t+1 and, when looped, the wrap-around (count-1) -> 0.
            looped = count < CLIP_FRAMES
            pairs = np.stack([np.arange(count), (np.arange(count) + 1) % count], axis=1)
            if not looped:
                pairs = pairs[:-1]
            optical_flow(frames, method=task, pairs=pairs, workers=workers)  # type: ignore[arg-type]
            units += len(pairs)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "units": units,
        "clips": len(decoded),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{len(QUICK_CLIPS)} clips, {QUICK_MAX_FRAMES} frames"
    )
    parser.add_argument("--max-frames", type=int, default=None, help="frames per clip (default 215, quick 4)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--workers", nargs="+", type=int, default=list(WORKERS))
    parser.add_argument("--single", nargs=3, metavar=("TASK", "SIZE", "WORKERS"), help=argparse.SUPPRESS)
    parser.add_argument("--clips", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    max_frames = args.max_frames or (QUICK_MAX_FRAMES if args.quick else CLIP_FRAMES)
    if args.single:
        task, size, workers = args.single[0], int(args.single[1]), int(args.single[2])
        print(json.dumps(run_single(task, size, workers, args.clips, max_frames)))
        return

    if not MEDIA_DIR.is_dir():
        raise SystemExit(f"real clips not found at {MEDIA_DIR.resolve()}")
    clips = (
        list(QUICK_CLIPS) if args.quick else sorted(p.name for p in MEDIA_DIR.iterdir() if p.suffix != ".md")
    )
    clips = [c for c in clips if (MEDIA_DIR / c).is_file() and c != "MD5SUMS"]
    print(f"clips: {len(clips)} ({', '.join(clips)}), up to {max_frames} frames each at {FPS} fps\n")
    print(
        "| task | size | workers | frames | ms/frame | CPU ms/frame | 10-s clips/s | clips/s | CPU/wall "
        "| peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task in args.tasks:
        for size in args.sizes:
            for workers in args.workers:
                command = [
                    sys.executable,
                    __file__,
                    "--single",
                    task,
                    str(size),
                    str(workers),
                    "--max-frames",
                    str(max_frames),
                    "--clips",
                    *clips,
                ]
                done = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
                if done.returncode != 0:
                    print(
                        f"| {task} | {size} | {workers} | failed: {done.stderr.strip().splitlines()[-1:]} |"
                    )
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                ms = 1000 * r["wall_s"] / r["units"]
                print(
                    f"| {task} | {size} | {workers} | {r['units']} | {ms:.1f} "
                    f"| {1000 * r['cpu_s'] / r['units']:.1f} "
                    f"| {1000 / (ms * CLIP_FRAMES):.3f} | {r['clips'] / r['wall_s']:.3f} "
                    f"| {r['cpu_s'] / r['wall_s']:.2f} | {r['peak_rss_mb']:.0f} |",
                    flush=True,
                )
    print(
        "\nA clip's visual features (clip_visual_features) cost one flow pair plus two network images "
        "(appearance and rendered flow) per distinct frame."
    )


if __name__ == "__main__":
    main()
