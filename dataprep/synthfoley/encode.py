"""Deterministic, atomic mp4 writing (H.264 + AAC through PyAV) and atomic text writes.

Byte-identical output for the same input (same PyAV/FFmpeg build): x264 runs single-threaded with a fixed
preset and no B-frames (so video pts == dts from 0, no edit list on the video track), the muxer and the
encoders run with `+bitexact` (no library version strings), and nothing time-dependent is written (the mp4
creation time stays 0).

AAC priming: the AAC encoder prepends 1024 samples of encoder delay. FFmpeg's mp4 muxer records them in the
audio track's edit list, and FFmpeg-based readers (PyAV, decord) drop them on decode, so decoded audio starts
at pts 0 with the first sample we wrote; the tests check this on the decoded streams. Decoding does keep up
to one AAC frame (1024 samples) of trailing padding: trim decoded audio to the clip's `num_samples`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

AAC_FRAME = 1024
X264_PRESET = "ultrafast"  # the fastest preset; quality is ample for flat synthetic shapes at crf 20
X264_CRF = "20"


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to a temporary name beside `path`, then rename it into place."""
    tmp = _tmp_path(path)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_mp4_atomic(
    path: Path,
    frames: Iterable[np.ndarray],
    audio: np.ndarray,
    *,
    fps: int,
    sample_rate: int,
    num_frames: int,
) -> None:
    """Encode frames (each (H, W, 3) uint8 RGB) and audio ((C, N) float32, C in {1, 2}) into `path`.

    The streams are interleaved as they are encoded (audio up to the end of each video frame), and the file
    appears under its final name only once complete.
    """
    import av  # deferred: a `--help` need not load FFmpeg
    from av.codec.context import Flags

    channels, num_samples = audio.shape
    if channels not in (1, 2):
        raise ValueError(f"audio for {path} must have 1 or 2 channels, got shape {audio.shape}")
    if num_samples * fps != num_frames * sample_rate:
        raise ValueError(
            f"audio for {path}: {num_samples} samples at {sample_rate} Hz != {num_frames} frames at {fps} fps"
        )
    layout = "mono" if channels == 1 else "stereo"
    tmp = _tmp_path(path)
    try:
        # The movie time scale is the sample rate, so both tracks' edit lists hold their exact durations
        # (the default, 1000, rounds the audio track's duration to a millisecond).
        options = {"fflags": "+bitexact", "movie_timescale": str(sample_rate)}
        with av.open(str(tmp), mode="w", format="mp4", options=options) as container:
            container.metadata.clear()
            video = None
            sound = container.add_stream("aac", rate=sample_rate, layout=layout)
            sound.bit_rate = 64000 * channels
            # FFmpeg's default "twoloop" AAC coder costs most of a clip's encoding time; "fast" is ~5x faster.
            sound.options = {"aac_coder": "fast"}
            sound.time_base = Fraction(1, sample_rate)
            sound.codec_context.flags |= Flags.bitexact
            written = 0
            for j, frame in enumerate(frames):
                if video is None:
                    h, w = frame.shape[:2]
                    video = container.add_stream("libx264", rate=fps)
                    video.width, video.height, video.pix_fmt = w, h, "yuv420p"
                    video.time_base = Fraction(1, fps)
                    video.codec_context.flags |= Flags.bitexact
                    video.options = {
                        "preset": X264_PRESET,
                        "crf": X264_CRF,
                        "threads": "1",
                        "bframes": "0",
                        "g": str(2 * fps),
                    }
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                vf.pts = j
                for packet in video.encode(vf):
                    container.mux(packet)
                until = min(num_samples, (j + 1) * num_samples // num_frames)
                while written + AAC_FRAME <= until or (j == num_frames - 1 and written < num_samples):
                    chunk = np.ascontiguousarray(audio[:, written : written + AAC_FRAME], dtype=np.float32)
                    af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                    af.sample_rate = sample_rate
                    af.pts = written
                    for packet in sound.encode(af):
                        container.mux(packet)
                    written += chunk.shape[1]
            if video is None or j != num_frames - 1:
                raise ValueError(f"{path}: expected {num_frames} frames")
            for packet in video.encode():
                container.mux(packet)
            for packet in sound.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
