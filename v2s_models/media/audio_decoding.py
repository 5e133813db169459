"""Reading a file's audio on the video's timeline (PyAV), resampled to the rate asked for: `read_audio`.
The timeline and why PyAV, not decord: `decoding`'s docstring."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from v2s_models.media.lengths import fit_length
from v2s_models.media.probe import (
    MediaError,
    _audio_stream,
    _open_container,
    _stream_duration,
    _stream_start,
    _timeline_origin,
)

if TYPE_CHECKING:
    pass


SILENCE_DBFS = -70.0
"""Audio whose RMS over the whole clip is below this level (full scale = 1.0) is digitally silent."""

_AUDIO_READ_MARGIN = 0.05  # s decoded past a cut so the resampler's filter sees real signal at the cut


# ---------------------------------------------------------------------------------------------------------
# Audio


def _audio_frame_to_float(frame: Any) -> np.ndarray:
    """A decoded PyAV audio frame as (C, n) float32 in [-1, 1]."""
    a = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        a = a.reshape(-1, channels).T  # packed samples come interleaved as (1, n * C)
    if a.dtype == np.uint8:
        return (a.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(a.dtype, np.integer):
        # s16 / s32 / s64 (24-bit PCM decodes to s32, shifted to the top bits)
        return (a.astype(np.float64) / float(2 ** (8 * a.dtype.itemsize - 1))).astype(np.float32)
    return a.astype(np.float32, copy=False)


def _decode_audio_native(
    path: str | os.PathLike[str], container: Any, *, max_duration: float | None, stream_index: int = 0
) -> tuple[np.ndarray, int]:
    """Decodes audio stream `stream_index` (the first by default): (C, N) float32 at the stream's own rate, on the media timeline
    (sample 0 at t = 0), trimmed to the stream's declared end, and to `max_duration` seconds when given."""
    import av

    stream = _audio_stream(container, stream_index)
    if stream is None:
        raise MediaError(path, "no_audio_stream", "the file has no audio stream")
    origin = _timeline_origin(container)
    chunks: list[np.ndarray] = []
    sample_rate = channels = 0
    first_time: float | None = None
    total = 0
    largest_frame = 0
    budget: int | None = None
    try:
        for frame in container.decode(stream):
            if frame.samples == 0:
                continue
            chunk = _audio_frame_to_float(frame)
            if first_time is None:
                sample_rate = int(frame.sample_rate)
                channels = chunk.shape[0]
                first_time = float(frame.time) if frame.time is not None else _stream_start(stream)
                if max_duration is not None:
                    budget = int(math.ceil((max_duration + origin - first_time) * sample_rate)) + 1
            elif chunk.shape[0] != channels or int(frame.sample_rate) != sample_rate:
                raise MediaError(path, "corrupt", "the audio stream changes channel count or sample rate")
            chunks.append(chunk)
            total += chunk.shape[1]
            largest_frame = max(largest_frame, chunk.shape[1])
            if budget is not None and total >= budget:
                break
    except av.FFmpegError as e:
        raise MediaError(path, "corrupt", f"audio decoding failed ({e})") from e
    if first_time is None:
        raise MediaError(path, "zero_length", "the audio stream decodes to no samples")
    x = np.concatenate(chunks, axis=1)

    # Drop the encoder's tail padding: the declared duration (mp4 edit list / sample table) ends the content.
    # Only a small excess is padding; a larger one means the header's duration is an estimate.
    declared = _stream_duration(stream)
    if declared is not None and stream.start_time is not None:
        decoded_end = first_time + total / sample_rate
        excess = int(round((decoded_end - _stream_start(stream) - declared) * sample_rate))
        if 0 < excess <= max(4096, 2 * largest_frame):
            x = x[:, : x.shape[1] - excess]

    lead = int(round((first_time - origin) * sample_rate))
    if max_duration is not None:
        lead = min(lead, int(round(max_duration * sample_rate)))
    if lead > 0:
        x = np.concatenate([np.zeros((channels, lead), np.float32), x], axis=1)
    elif lead < 0:
        x = x[:, -lead:]
    if max_duration is not None:
        x = x[:, : int(round(max_duration * sample_rate))]
    return np.ascontiguousarray(x), sample_rate


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """(C, N) at sr_in -> (C, round(N * sr_out / sr_in)) float32 with soxr's high-quality filter."""
    n_out = int(round(x.shape[1] * sr_out / sr_in))
    if sr_in != sr_out and x.shape[1] > 0:
        import soxr

        y = soxr.resample(np.ascontiguousarray(x.T), sr_in, sr_out, quality="HQ")
        x = np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1, x.shape[0]).T)
    return fit_length(x, n_out, mode="zero", axis=1).astype(np.float32, copy=False)


def _read_audio_from_container(
    path: str | os.PathLike[str],
    container: Any,
    *,
    sample_rate: int,
    mono: bool,
    max_duration: float | None,
    stream_index: int = 0,
) -> np.ndarray:
    decode_limit = None if max_duration is None else max_duration + _AUDIO_READ_MARGIN
    x, sr_in = _decode_audio_native(path, container, max_duration=decode_limit, stream_index=stream_index)
    content = x.shape[1] / sr_in if max_duration is None else min(x.shape[1] / sr_in, max_duration)
    if mono:
        x = x.mean(axis=0, keepdims=True)
    y = _resample(x, sr_in, sample_rate)[:, : int(round(content * sample_rate))]
    return y[0] if mono else y


def read_audio(
    path: str | os.PathLike[str], *, sample_rate: int, mono: bool = True, max_duration: float | None = None
) -> np.ndarray:
    """Decodes the first audio stream of any file FFmpeg reads, resampled to `sample_rate` with soxr HQ.

    Returns float32 (N,) when mono (channel mean), else (C, N); N = round(duration * sample_rate) where the
    duration is the stream's real content (encoder priming and padding removed), capped at `max_duration`.
    Raises MediaError("no_audio_stream") for files without audio.
    """
    if sample_rate <= 0:
        raise ValueError(f"read_audio needs a positive sample_rate, got {sample_rate!r}")
    if max_duration is not None and not max_duration > 0:
        raise ValueError(f"read_audio max_duration must be positive seconds, got {max_duration!r}")
    with _open_container(path) as container:
        return _read_audio_from_container(
            path, container, sample_rate=sample_rate, mono=mono, max_duration=max_duration
        )


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of a waveform in dB relative to full scale 1.0 (-inf for silence or no samples)."""
    if x.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf
