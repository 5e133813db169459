"""Benchmark: decoding the real clips to the RegNet convention, our route against the papers' ffmpeg route.

    .venv/bin/python tests/bench/bench_dataprep_decode.py            # all twelve clips, 3 passes
    .venv/bin/python tests/bench/bench_dataprep_decode.py --quick    # 3 clips, 1 pass (sanity run)

Routes, each in a fresh subprocess so that ru_maxrss is the route's own peak (imports included):
  ours       v2s_models.media.decoding.decode_clip(path, REGNET): 215 RGB frames at 224 x 224 and 220500 mono samples
             at 22050 Hz, looped to 10 s, then v2s_models.audio.regnet_mel (80 x 860).
  reference  what the REGNET-family preprocessing scripts do: six runs of the `ffmpeg` program per clip
             (cut to 10 s, loop / pad, re-encode to 10 s, extract the audio, resample it to 22050 Hz mono
             WAV, re-encode the video to 21.5 fps), then librosa.load of the WAV and the same mel with
             librosa. It stops at a 21.5 fps video file that still has to be decoded to frames, so the
             ratio below understates what the reference route costs to reach the same arrays.
The `ffmpeg` program is `--ffmpeg`, else `shutil.which("ffmpeg")`, else imageio-ffmpeg's binary; without
one the reference route is skipped with a message.

Figures: each route runs a warm-up clip first (imports, librosa's JIT), then `passes` timed passes over the
clips; wall and CPU times are the median pass. CPU includes child processes (ffmpeg). "peak RSS python" is
the route's Python process, "peak RSS child" the largest ffmpeg run. Wall time is disturbed by other jobs
on a shared machine; CPU seconds less so.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MEDIA_DIR = REPO_ROOT / ".." / "shared" / "media" / "real"
CLIPS = (
    "airplane_flyover.mp4",
    "cap_gun.mp4",
    "chopping.mp4",
    "conga_drums.mp4",
    "diver_mjpeg_mp2.mov",
    "dog_barking.mp4",
    "dog_quiet_1080p.mp4",
    "hammer_anvil.mp4",
    "hitting_bag.mp4",
    "hitting_metal.mp4",
    "tennis_strokes.mp4",
    "webcam_talk_mjpeg_u8.avi",
)
QUICK_CLIPS = ("hitting_metal.mp4", "cap_gun.mp4", "webcam_talk_mjpeg_u8.avi")
WARMUP_CLIP = "dog_barking.mp4"


def find_ffmpeg(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# ---------------------------------------------------------------------------------------------------------
# The two routes (run inside the worker subprocess)


def ours_one(path: Path) -> None:
    from v2s_models.audio import regnet_mel
    from v2s_models.media.decoding import decode_clip
    from v2s_models.settings import REGNET

    clip = decode_clip(path, REGNET)
    mel = regnet_mel(clip.audio, REGNET.sample_rate, REGNET.mel, num_frames=REGNET.num_mel_frames)
    assert clip.frames.shape == (215, 224, 224, 3) and mel.shape == (80, 860), f"{mel.shape=}"


def reference_one(path: Path, ffmpeg: str) -> None:
    import librosa
    import numpy as np

    def run(*args: str) -> None:
        subprocess.run([ffmpeg, "-y", "-nostdin", "-v", "error", *args], check=True)

    with tempfile.TemporaryDirectory(prefix="v2s_bench_") as tmp:
        d = Path(tmp)
        h264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
        # Matroska takes every codec of the set (pcm_u8, mp2, mjpeg) by stream copy.
        run("-i", str(path), "-t", "10", "-map", "0:v:0", "-map", "0:a:0", "-c", "copy", str(d / "cut.mkv"))
        run("-stream_loop", "-1", "-i", str(d / "cut.mkv"), "-t", "10", "-c", "copy", str(d / "loop.mkv"))
        run("-i", str(d / "loop.mkv"), "-t", "10", *h264, "-c:a", "aac", str(d / "clip10.mp4"))
        run("-i", str(d / "clip10.mp4"), "-vn", "-c:a", "pcm_s16le", str(d / "audio.wav"))
        run("-i", str(d / "audio.wav"), "-ar", "22050", "-ac", "1", str(d / "audio22k.wav"))
        run("-i", str(d / "clip10.mp4"), "-an", "-r", "21.5", *h264, str(d / "video21.mp4"))
        wav, sr = librosa.load(str(d / "audio22k.wav"), sr=22050, mono=True)
        spec = np.abs(librosa.stft(wav, n_fft=1024, hop_length=256, win_length=1024, window="hann"))
        mel = librosa.feature.melspectrogram(S=spec, sr=sr, n_fft=1024, n_mels=80, fmin=125, fmax=7600)
        db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
        mel01 = np.clip((db + 100) / 100, 0, 1)[:, :860]
        assert mel01.shape[0] == 80, f"{mel01.shape=}"


@dataclass
class RouteResult:
    wall: float  # s, median pass over the clips
    cpu: float  # s, median pass, children included
    per_clip: dict[str, float]  # s, median wall per clip
    rss_self_mb: float
    rss_child_mb: float


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def worker(route: str, clips: list[str], passes: int, ffmpeg: str | None) -> RouteResult:
    sys.path.insert(0, str(REPO_ROOT))

    def one(name: str) -> None:
        path = MEDIA_DIR / name
        if route == "ours":
            ours_one(path)
        else:
            assert ffmpeg is not None
            reference_one(path, ffmpeg)

    one(WARMUP_CLIP)
    walls, cpus = [], []
    per_clip: dict[str, list[float]] = {name: [] for name in clips}
    for _ in range(passes):
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        for name in clips:
            t0 = time.perf_counter()
            one(name)
            per_clip[name].append(time.perf_counter() - t0)
        walls.append(time.perf_counter() - wall0)
        cpus.append(cpu_seconds() - cpu0)
    return RouteResult(
        wall=median(walls),
        cpu=median(cpus),
        per_clip={name: median(v) for name, v in per_clip.items()},
        rss_self_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        rss_child_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    )


# ---------------------------------------------------------------------------------------------------------
# Driver


def measure(route: str, clips: list[str], passes: int, ffmpeg: str | None) -> RouteResult:
    """Runs one route in a fresh subprocess (its own peak RSS) and reads its result from the last line."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", route]
    cmd += ["--passes", str(passes), "--clips", ",".join(clips)]
    if ffmpeg:
        cmd += ["--ffmpeg", ffmpeg]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO_ROOT)
    return RouteResult(**json.loads(out.stdout.strip().splitlines()[-1]))


def print_report(results: dict[str, RouteResult], clips: list[str], passes: int) -> None:
    n = len(clips)
    print(
        f"Decoding {n} real clips to the RegNet convention (10 s, 21.5 fps at 224x224, 22050 Hz, "
        f"80x860 mel); median of {passes} pass(es)\n"
    )
    print(
        "| route | clips/s | wall s/clip | CPU s/clip (with children) | peak RSS python MB | peak RSS child MB |"
    )
    print("|---|---|---|---|---|---|")
    for route, r in results.items():
        child = f"{r.rss_child_mb:.0f}" if route == "reference" else "-"
        row = [
            route,
            f"{n / r.wall:.2f}",
            f"{r.wall / n:.3f}",
            f"{r.cpu / n:.3f}",
            f"{r.rss_self_mb:.0f}",
            child,
        ]
        print("| " + " | ".join(row) + " |")
    ref = results.get("reference")
    ours = results["ours"]
    if ref is not None:
        wall_ratio, cpu_ratio = ref.wall / ours.wall, ref.cpu / ours.cpu
        verdict = "meets" if wall_ratio >= 5 else "misses"
        print(
            f"\nSpeed ratio (reference / ours): wall {wall_ratio:.1f}x, CPU {cpu_ratio:.1f}x "
            f"({verdict} the 5x goal on wall time)"
        )
    print("\n| clip | ours s | reference s |")
    print("|---|---|---|")
    for name in clips:
        ref_s = "-" if ref is None else f"{ref.per_clip[name]:.3f}"
        print(f"| {name} | {ours.per_clip[name]:.3f} | {ref_s} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="3 clips, 1 pass: a sanity run")
    parser.add_argument("--passes", type=int, default=None, help="timed passes over the clips (default 3)")
    parser.add_argument("--ffmpeg", default=None, help="path of the ffmpeg program for the reference route")
    parser.add_argument("--clips", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=("ours", "reference"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = worker(args.worker, args.clips.split(","), args.passes, args.ffmpeg)
        print(json.dumps(asdict(result)))
        return

    missing = [c for c in CLIPS if not (MEDIA_DIR / c).is_file()]
    if missing:
        sys.exit(f"real clips missing under {MEDIA_DIR.resolve()}: {missing}")
    clips = list(QUICK_CLIPS if args.quick else CLIPS)
    passes = args.passes or (1 if args.quick else 3)
    ffmpeg = find_ffmpeg(args.ffmpeg)

    results = {"ours": measure("ours", clips, passes, None)}
    if ffmpeg is None:
        print("NOTE: no `ffmpeg` program (not on PATH, imageio-ffmpeg not installed, no --ffmpeg):")
        print("the reference route is not measured.\n")
    else:
        results["reference"] = measure("reference", clips, passes, ffmpeg)
    print_report(results, clips, passes)


if __name__ == "__main__":
    main()
