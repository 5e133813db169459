"""Media decoding for the data pipeline: probe a file, read its audio and video frames on one timeline, and
fit them to a paper's clip length.

Backends
    Video: decord's `VideoReader` first: it gives random access by frame index, so only the source frames
    that the output needs are converted to RGB (`get_batch` with indices computed from the frames' times,
    which a PyAV demuxing pass reads), and it can scale inside FFmpeg while decoding. PyAV decodes video
    sequentially where decord cannot open or decode a file, where its frame count disagrees with the
    demuxer's, and for containers without a frame index (MPEG-TS and others), where decord's seeking
    returns wrong frames.
    Audio: PyAV always. decord's `AudioReader` keeps the encoder's tail padding (STACK.md), and measured here
    against PyAV on the real clips of ../shared/media/real/ it returns wrong samples after a few seconds
    (mp3, aac and mp2 streams; NaNs on conga_drums.mp4), so it cannot be trusted as a first choice.

Timeline
    t = 0 is the video stream's start time as FFmpeg reports it (normally its first frame); files without
    video start at their audio stream's start. Audio is placed on that timeline by its timestamps: samples before t = 0 are dropped, a
    late start is filled with zeros. FFmpeg's decoders already drop the encoder's priming where the container
    signals it (mp4 edit lists, LAME/iTunes gapless headers, skip-samples side data; other containers shift
    the audio's timestamps by the priming instead), and the tail padding is cut here by trimming to the
    stream's declared duration, so onsets stay where they were recorded (tested within 1 ms through AAC).

Frame-rate conversion
    Output frame k shows the source frame displayed at t_k = k / fps: the latest frame whose timestamp is
    <= t_k (the first frame for times before it). This works for variable frame rate files because it reads
    each frame's own timestamp, never the nominal rate. A clip of content duration D has ceil(D * fps)
    frames; the video ends at the stream's declared duration, or one median frame interval after the last
    frame where the container declares none.

Resizing
    Frames are resized to (H, W) with cv2.INTER_AREA. When the source is more than twice the target in both
    dimensions, the decoder first scales to (2H, 2W) inside FFmpeg (bicubic, anti-aliased), then INTER_AREA
    halves it: converting a 1080p frame to RGB at full size costs more than decoding it, and this keeps the
    last step an exact 2x2 box filter.

Padding to the clip length (`decode_clip`)
    Sources: REGNET loops clips to 10 s (its code), Zhou et al. pad to 10 s by repeating (their section 4);
    both are `pad_mode="loop"`. The content duration D is the shorter of the video and audio streams, capped
    at the clip duration. The loop period is the same for both streams: U = ceil(D * fps) frames and
    round(U * sample_rate / fps) samples (audio past D up to that length is taken from the file when it
    exists, else zeros). Looping each stream by its own length would shift sound against picture by up to
    one frame per repetition; with one common period the drift is under half a sample per repetition.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from v2s_models.settings import DataSettings

PadMode = Literal["loop", "zero", "trim"]
VideoBackend = Literal["auto", "decord", "pyav"]

SILENCE_DBFS = -70.0
"""Audio whose RMS over the whole clip is below this level (full scale = 1.0) is digitally silent."""

_TIME_TOL = 1e-4  # s: times closer than this are the same instant (time-base conversions round)
_TRUNCATED_FRACTION = 0.9  # fewer frames than this share of the header's count: the file was cut short
_DECORD_CHUNK = 32  # frames converted per decord call
# Containers with a frame index, where decord's random access returns the frames asked for. In MPEG-TS (and
# other index-less streams) decord seeks to the wrong place and silently substitutes "nearest" frames
# (measured: frames 32.. returned for 0..), so those go to PyAV's sequential decoding.
_DECORD_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "avi", "matroska,webm", "flv"})
_AUDIO_READ_MARGIN = 0.05  # s decoded past a cut so the resampler's filter sees real signal at the cut


class MediaError(Exception):
    """A media file that cannot be used, with a short machine-readable `reason`.

    Reasons: "unreadable" (missing, a directory, no read permission), "zero_length" (empty file or empty
    stream), "corrupt" (FFmpeg cannot open or decode it, including non-media files, or fewer than 90 % of
    the frames its header declares are present: a truncated file), "no_video_stream",
    "no_audio_stream", "silent_audio" (RMS below SILENCE_DBFS), "too_short" (pad_mode "trim" and the clip is
    shorter than the clip duration).
    """

    def __init__(self, path: str | os.PathLike[str], reason: str, detail: str = "") -> None:
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        message = f"{self.path}: {reason}"
        super().__init__(f"{message}: {detail}" if detail else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the error picklable across worker processes (multiprocessing, Ray).
        return (type(self), (self.path, self.reason, self.detail))


@dataclass
class MediaInfo:
    """What a file's header says about it. Durations in seconds; None where a stream is absent.

    `container` is FFmpeg's demuxer name (e.g. "mov,mp4,m4a,3gp,3g2,mj2", "avi"); codecs are FFmpeg's
    canonical codec names (e.g. "h264", "mjpeg", "aac", "mp3", "mp2", "pcm_u8"). `fps` is the average frame
    rate and `num_frames` the header's frame count (estimated from duration x fps when absent).
    """

    path: str
    container: str
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    num_frames: int | None
    video_duration: float | None
    sample_rate: int | None
    channels: int | None
    audio_duration: float | None
    has_video: bool
    has_audio: bool


@dataclass
class DecodedClip:
    """One clip at a data convention's sizes.

    frames: (T, H, W, 3) uint8 RGB at settings.fps, T = settings.num_frames.
    audio: (N,) float32 mono at settings.sample_rate, N = settings.num_samples.
    info: the file's `MediaInfo`.
    audio_stream: which audio stream the audio comes from (0: the first; a later one when the earlier ones are
        silent), -1 without audio.
    source_duration: seconds of real content before padding (shorter stream, capped at settings.duration).
    loop_index: (T,) int64; loop_index[k] is the first output frame showing the same decoded picture as
        frame k (a looped repetition, a source frame repeated by frame-rate up-sampling, or the first of the
        black frames of zero padding), so frames[loop_index] equals frames. Compute per-frame features on
        frames[unique_indices] and gather the rest.
    """

    frames: np.ndarray
    audio: np.ndarray
    info: MediaInfo
    source_duration: float
    loop_index: np.ndarray
    audio_stream: int = 0

    @property
    def unique_indices(self) -> np.ndarray:
        """Sorted output-frame indices whose pictures are distinct decodes, (U,) int64."""
        return np.unique(self.loop_index)


# ---------------------------------------------------------------------------------------------------------
# Length fitting


def fit_length(x: np.ndarray, n: int, *, mode: PadMode, axis: int = 0) -> np.ndarray:
    """Returns a new array of exactly `n` entries along `axis`: the first n when `x` is longer, else `x`
    looped from its start ("loop"), followed by zeros ("zero"), or a ValueError ("trim" never lengthens)."""
    if mode not in ("loop", "zero", "trim"):
        raise ValueError(f"fit_length mode must be 'loop', 'zero' or 'trim', got {mode!r}")
    if n < 0:
        raise ValueError(f"fit_length needs a non-negative length, got n={n}")
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("fit_length needs an array with at least one dimension, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {x.shape}")
    axis = axis % x.ndim
    length = x.shape[axis]
    if length >= n:
        return np.take(x, np.arange(n), axis=axis)
    if mode == "trim":
        raise ValueError(f"fit_length(mode='trim') cannot lengthen {length} entries to {n} (axis {axis})")
    if mode == "loop":
        if length == 0:
            raise ValueError(f"fit_length(mode='loop') cannot loop an empty array of shape {x.shape}")
        return np.take(x, np.arange(n) % length, axis=axis)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, n - length)
    return np.pad(x, widths)


# ---------------------------------------------------------------------------------------------------------
# Opening and probing


@contextmanager
def _open_container(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Opens `path` with PyAV, turning every way it can fail into a MediaError."""
    import av

    p = Path(path)
    if not p.exists():
        raise MediaError(path, "unreadable", "no such file")
    if not p.is_file():
        raise MediaError(path, "unreadable", "not a regular file")
    if not os.access(p, os.R_OK):
        raise MediaError(path, "unreadable", "no read permission")
    if p.stat().st_size == 0:
        raise MediaError(path, "zero_length", "the file is empty")
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except (PermissionError, IsADirectoryError) as e:
        raise MediaError(path, "unreadable", str(e)) from e
    except (av.FFmpegError, UnicodeDecodeError, EOFError) as e:
        raise MediaError(path, "corrupt", f"FFmpeg cannot open it as media ({e})") from e
    try:
        yield container
    finally:
        container.close()


def _video_stream(container: Any) -> Any | None:
    """The first real video stream (cover art attached to audio files is not video)."""
    import av

    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    return None


def _audio_stream(container: Any, index: int = 0) -> Any | None:
    """The `index`-th audio stream (the first by default), None where there is none."""
    return container.streams.audio[index] if len(container.streams.audio) > index else None


def _stream_start(stream: Any) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _stream_duration(stream: Any) -> float | None:
    if stream.duration is None or stream.duration <= 0:
        return None
    return float(stream.duration * stream.time_base)


def _timeline_origin(container: Any) -> float:
    """Seconds of the container's clock that become t = 0: the video's start, else the audio's start."""
    stream = _video_stream(container) or _audio_stream(container)
    return _stream_start(stream) if stream is not None else 0.0


@dataclass(frozen=True)
class _VideoHeader:
    """What the video stream's header declares: its duration (which ends on the media timeline, since t = 0
    is the stream's start) and its frame count (0 where the container keeps no count)."""

    duration: float | None
    frames: int


def _video_header(container: Any) -> _VideoHeader:
    stream = _video_stream(container)
    if stream is None:
        return _VideoHeader(duration=None, frames=0)
    return _VideoHeader(duration=_stream_duration(stream), frames=int(stream.frames or 0))


def _container_duration(container: Any) -> float | None:
    return container.duration / 1_000_000 if container.duration else None


def _codec_name(stream: Any) -> str:
    codec = stream.codec_context.codec
    return str(getattr(codec, "canonical_name", None) or codec.name)


def _info_from_container(path: str | os.PathLike[str], container: Any) -> MediaInfo:
    vs, aus = _video_stream(container), _audio_stream(container)
    fallback_duration = _container_duration(container)
    width = height = num_frames = None
    fps = video_duration = None
    if vs is not None:
        cc = vs.codec_context
        width, height = int(cc.width), int(cc.height)
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else None
        video_duration = _stream_duration(vs) or fallback_duration
        if vs.frames:
            num_frames = int(vs.frames)
        elif video_duration is not None and fps is not None:
            num_frames = int(round(video_duration * fps))
    sample_rate = channels = None
    audio_duration = None
    if aus is not None:
        cc = aus.codec_context
        sample_rate = int(cc.sample_rate) or None
        channels = int(cc.channels) or None
        audio_duration = _stream_duration(aus) or fallback_duration
    return MediaInfo(
        path=str(path),
        container=str(container.format.name),
        video_codec=_codec_name(vs) if vs is not None else None,
        audio_codec=_codec_name(aus) if aus is not None else None,
        width=width,
        height=height,
        fps=fps,
        num_frames=num_frames,
        video_duration=video_duration,
        sample_rate=sample_rate,
        channels=channels,
        audio_duration=audio_duration,
        has_video=vs is not None,
        has_audio=aus is not None,
    )


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Reads a file's header. Raises MediaError for unreadable, zero-length or corrupt files; a missing stream
    is reported as has_video / has_audio False."""
    with _open_container(path) as container:
        return _info_from_container(path, container)


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


# ---------------------------------------------------------------------------------------------------------
# Video


def _num_output_frames(duration: float, fps: float) -> int:
    """Output times k / fps inside [0, duration): ceil(duration * fps), at least one."""
    return max(1, int(math.ceil(duration * fps - 1e-6)))


def _pick_source_frames(times: np.ndarray, out_times: np.ndarray) -> np.ndarray:
    """For each output time, the index of the latest sorted source timestamp <= it (0 before the first)."""
    idx = np.searchsorted(times, out_times + _TIME_TOL, side="right") - 1
    return np.clip(idx, 0, None)


def _decode_size(
    width: int | None, height: int | None, size: tuple[int, int] | None
) -> tuple[int, int] | None:
    """(H, W) for the decoder to scale to before INTER_AREA, or None to decode at the native size."""
    if size is None or width is None or height is None:
        return None
    h, w = 2 * size[0], 2 * size[1]
    return (h, w) if height > h and width > w else None


def _resize(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """(K, h, w, 3) -> (K, H, W, 3) uint8 with cv2.INTER_AREA."""
    if size is None or frames.shape[1:3] == tuple(size):
        return np.ascontiguousarray(frames)
    import cv2

    out = np.empty((frames.shape[0], size[0], size[1], 3), np.uint8)
    for i, f in enumerate(frames):
        out[i] = cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return out


def _content_end(times: np.ndarray, declared: float | None) -> float:
    """End of the video content: the stream's declared duration when it ends after the last frame's start,
    else the last frame shown for the median frame interval."""
    last = float(times[-1])
    if declared is not None and declared > last + _TIME_TOL:
        return declared
    return last + (float(np.median(np.diff(times))) if len(times) > 1 else 0.0)


def _video_frame_times(path: str) -> np.ndarray:
    """Presentation times of every video frame on the media timeline, sorted (display order), (M,) seconds.

    Read by demuxing only (no decoding). Both backends use these, frame i of the display order shown at
    times[i]: decord's own timestamps are wrong for some files (h264 in AVI: the no-timestamp value; MPEG-TS:
    shifted to the stream's start), and so are decoded frames' pts in AVI, which stores decode times only
    (FFmpeg invents pts there; with B-frames they come out of order), so AVI uses its decode times.
    """
    import av

    with _open_container(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise MediaError(path, "no_video_stream", "the file has no video stream")
        origin = _timeline_origin(container)
        tb = float(stream.time_base)
        use_dts = container.format.name == "avi"
        try:
            # Packets an edit list cuts away are flagged "discard"; the decoders drop their frames.
            packets = (p for p in container.demux(stream) if not p.is_discard)
            pts = [p.dts if use_dts else p.pts for p in packets]
            pts = [t for t in pts if t is not None]
        except av.FFmpegError as e:
            raise MediaError(path, "corrupt", f"video demuxing failed ({e})") from e
    if not pts:
        raise MediaError(path, "zero_length", "the video stream has no frames")
    return np.sort(np.asarray(pts, dtype=np.float64)) * tb - origin


class _DecordVideo:
    """Random access through decord: only the wanted frames are decoded to RGB (frame i = i-th in display
    order, i.e. the i-th of the sorted presentation times)."""

    def __init__(
        self, path: str, *, times: np.ndarray, decode_size: tuple[int, int] | None, num_threads: int
    ) -> None:
        import decord

        kwargs = {} if decode_size is None else {"height": decode_size[0], "width": decode_size[1]}
        self._reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads, **kwargs)
        if len(self._reader) != len(times):
            # Its frame indices would not match the timestamps: let PyAV decode this file.
            raise RuntimeError(f"decord counts {len(self._reader)} frames, the demuxer {len(times)}")
        self._times = times

    def frames_at(self, out_times: np.ndarray, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        """(unique decoded frames (U, H, W, 3) uint8, (K,) index into them for each output time)."""
        wanted = _pick_source_frames(self._times, out_times)
        unique, inverse = np.unique(wanted, return_inverse=True)
        chunks = []
        # Chunks bound the memory held at the decode size; increasing indices keep decord decoding forward.
        for start in range(0, len(unique), _DECORD_CHUNK):
            batch = self._reader.get_batch([int(i) for i in unique[start : start + _DECORD_CHUNK]])
            chunks.append(_resize(batch.asnumpy(), size))
        return np.concatenate(chunks), inverse.reshape(-1)


class _PyAVVideo:
    """Sequential decoding through PyAV; frames that no output time needs are never converted to RGB."""

    def __init__(
        self, path: str, *, times: np.ndarray, decode_size: tuple[int, int] | None, num_threads: int
    ) -> None:
        self._path = path
        self._times = times
        self._decode_size = decode_size
        self._num_threads = num_threads

    def _to_rgb(self, frame: Any) -> np.ndarray:
        """The frame as displayed: RGB, turned by the stream's display matrix as decord (FFmpeg's autorotate)
        turns it, so both readers give the same picture."""
        turns = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4  # counter-clockwise quarter turns
        if self._decode_size is None:
            rgb = frame.to_ndarray(format="rgb24")
        else:
            h, w = self._decode_size[::-1] if turns % 2 else self._decode_size  # decoded before turning
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="BICUBIC")
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def frames_at(self, out_times: np.ndarray, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
        import av

        n_out = len(out_times)
        unique: list[np.ndarray] = []
        inverse = np.zeros(n_out, np.int64)
        k = 0
        prev: Any = None
        prev_slot = -1  # index in `unique` of prev's picture, -1 while not converted

        def assign_prev() -> None:
            nonlocal k, prev_slot
            if prev_slot < 0:
                unique.append(_resize(self._to_rgb(prev)[None], size)[0])
                prev_slot = len(unique) - 1
            inverse[k] = prev_slot
            k += 1

        with _open_container(self._path) as container:
            stream = _video_stream(container)
            stream.thread_type = "AUTO"
            if self._num_threads > 0:
                stream.codec_context.thread_count = self._num_threads
            try:
                for i, frame in enumerate(container.decode(stream)):
                    if prev is not None:
                        # Output times before this frame's time show the previous frame. Decoded frames
                        # come in display order, the i-th at the i-th sorted time (_video_frame_times).
                        t = self._times[min(i, len(self._times) - 1)]
                        while k < n_out and (out_times[k] < t - _TIME_TOL or i >= len(self._times)):
                            assign_prev()
                    if k >= n_out:
                        break
                    prev, prev_slot = frame, -1
            except av.FFmpegError as e:
                raise MediaError(self._path, "corrupt", f"video decoding failed ({e})") from e
            while k < n_out and prev is not None:
                assign_prev()
        if not unique:
            raise MediaError(self._path, "zero_length", "the video stream decodes to no frames")
        return np.stack(unique), inverse


def _read_video(
    path: str | os.PathLike[str],
    info: MediaInfo,
    *,
    fps: float,
    size: tuple[int, int] | None,
    max_duration: float | None,
    backend: VideoBackend,
    num_threads: int,
    header: _VideoHeader,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Returns (unique frames (U, H, W, 3) uint8, (K,) index per output frame, video content duration in s);
    K = ceil(min(video duration, max_duration) * fps)."""
    if not info.has_video:
        raise MediaError(path, "no_video_stream", "the file has no video stream")
    times = _video_frame_times(str(path))
    # A file cut short keeps its header (mp4 with the index first, avi): most of its frames are missing.
    if len(times) < _TRUNCATED_FRACTION * header.frames:
        raise MediaError(
            path, "corrupt", f"truncated: the header declares {header.frames} frames, {len(times)} remain"
        )
    duration = _content_end(times, header.duration)
    content = duration if max_duration is None else min(duration, max_duration)
    out_times = np.arange(_num_output_frames(content, fps)) / fps
    decode_size = _decode_size(info.width, info.height, size)
    readers: list[type[_DecordVideo] | type[_PyAVVideo]] = {
        "auto": [_DecordVideo, _PyAVVideo] if info.container in _DECORD_CONTAINERS else [_PyAVVideo],
        "decord": [_DecordVideo],
        "pyav": [_PyAVVideo],
    }[backend]
    failure: Exception | None = None
    for reader_cls in readers:
        try:
            reader = reader_cls(str(path), times=times, decode_size=decode_size, num_threads=num_threads)
            unique, inverse = reader.frames_at(out_times, size)
            return unique, inverse, duration
        except Exception as e:  # decord raises its own DECORDError / RuntimeError for what it cannot read
            failure = e
    if isinstance(failure, MediaError):
        raise failure
    raise MediaError(path, "corrupt", f"video decoding failed ({failure})") from failure


def _check_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    if len(size) != 2 or not all(int(v) > 0 for v in size):
        raise ValueError(f"frame size must be (height, width) with positive values, got {size!r}")
    return (int(size[0]), int(size[1]))


def read_frames(
    path: str | os.PathLike[str],
    *,
    fps: float,
    size: tuple[int, int] | None = None,
    max_duration: float | None = None,
    backend: VideoBackend = "auto",
    num_threads: int = 0,
) -> np.ndarray:
    """Video frames resampled in time to `fps`: (T, H, W, 3) uint8 RGB, T = ceil(D * fps) for content D.

    Frame k is the source frame displayed at k / fps (latest timestamp <= k / fps). `size` = (H, W) resizes
    with cv2.INTER_AREA (None keeps the native size). `backend` "auto" tries decord then PyAV.
    `num_threads` is the decoder's thread count (0: FFmpeg's choice).
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError(f"read_frames needs a positive fps, got {fps!r}")
    if max_duration is not None and not max_duration > 0:
        raise ValueError(f"read_frames max_duration must be positive seconds, got {max_duration!r}")
    size = _check_size(size)
    with _open_container(path) as container:
        info = _info_from_container(path, container)
        header = _video_header(container)
    unique, inverse, _ = _read_video(
        path,
        info,
        fps=fps,
        size=size,
        max_duration=max_duration,
        backend=backend,
        num_threads=num_threads,
        header=header,
    )
    return unique[inverse]


# ---------------------------------------------------------------------------------------------------------
# Clips


def rms_dbfs(x: np.ndarray) -> float:
    """RMS level of a waveform in dB relative to full scale 1.0 (-inf for silence or no samples)."""
    if x.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def decode_clip(
    path: str | os.PathLike[str],
    settings: DataSettings,
    *,
    frame_size: tuple[int, int] | None = None,
    require_audio: bool = True,
    backend: VideoBackend = "auto",
    num_threads: int = 0,
) -> DecodedClip:
    """Decodes a clip at `settings` (fps, sample_rate, duration, pad_mode): cut to settings.duration, then
    looped / zero-padded to exactly settings.num_frames frames and settings.num_samples mono samples.

    frame_size: (H, W) of the frames; None uses settings.frame_size.
    require_audio: raise MediaError "no_audio_stream" / "silent_audio" (RMS < SILENCE_DBFS); when False a file
        without audio decodes with zero audio (generation input).
    Raises MediaError "too_short" with pad_mode "trim" when the clip has fewer than num_frames frames.
    """
    size = _check_size(tuple(frame_size) if frame_size is not None else tuple(settings.frame_size))
    fps, sr = settings.fps, settings.sample_rate
    # Audio up to one frame past the clip duration may fill the common loop period (module docstring).
    audio_limit = settings.duration + 1.0 / fps
    audio: np.ndarray | None = None
    audio_stream = -1
    with _open_container(path) as container:
        info = _info_from_container(path, container)
        header = _video_header(container)
        num_audio = len(container.streams.audio)
        if not info.has_video:
            raise MediaError(path, "no_video_stream", "the file has no video stream")
        if info.has_audio:
            audio = _read_audio_from_container(
                path, container, sample_rate=sr, mono=True, max_duration=audio_limit
            )
            audio_stream = 0
        elif require_audio:
            raise MediaError(path, "no_audio_stream", "the file has no audio stream")
    # The first audio stream that is not silent is the clip's sound (a silent commentary track may come first).
    for index in range(1, num_audio):
        if audio is None or audio.size == 0 or rms_dbfs(audio) >= SILENCE_DBFS:
            break
        with _open_container(path) as container:
            candidate = _read_audio_from_container(
                path, container, sample_rate=sr, mono=True, max_duration=audio_limit, stream_index=index
            )
        if candidate.size and rms_dbfs(candidate) >= SILENCE_DBFS:
            audio, audio_stream = candidate, index
    cap = settings.duration
    if audio is not None:
        if audio.size == 0:
            raise MediaError(path, "zero_length", "the audio stream has no samples on the video's timeline")
        cap = min(cap, audio.shape[0] / sr)
        level = rms_dbfs(audio[: int(round(cap * sr))])
        if require_audio and level < SILENCE_DBFS:  # checked before the costlier video decoding
            raise MediaError(path, "silent_audio", f"RMS {level:.1f} dBFS is below {SILENCE_DBFS:.0f} dBFS")
    unique, inverse, video_duration = _read_video(
        path,
        info,
        fps=fps,
        size=size,
        max_duration=cap,
        backend=backend,
        num_threads=num_threads,
        header=header,
    )
    source_duration = min(cap, video_duration)
    n_unique_out = inverse.shape[0]
    if settings.pad_mode == "trim" and n_unique_out < settings.num_frames:
        raise MediaError(
            path,
            "too_short",
            f"{source_duration:.3f} s gives {n_unique_out} frames; pad_mode 'trim' needs "
            f"{settings.num_frames}",
        )

    # Both streams repeat with the period of the decoded frames (module docstring).
    period = int(round(n_unique_out * sr / fps))
    content = np.zeros(0, np.float32) if audio is None else audio[:period]
    audio_unit = fit_length(content, period, mode="zero")
    audio_mode: PadMode = "loop" if settings.pad_mode == "loop" else "zero"
    audio_out = fit_length(audio_unit, settings.num_samples, mode=audio_mode)

    _, first_output = np.unique(inverse, return_index=True)
    first_pass_index = first_output[inverse].astype(np.int64)  # (U_out,)
    frames = fit_length(unique[inverse], settings.num_frames, mode=settings.pad_mode)
    if settings.pad_mode == "loop" or n_unique_out >= settings.num_frames:
        loop_index = fit_length(first_pass_index, settings.num_frames, mode="loop")
    else:  # zero padding: every black frame repeats the first black one
        pad = np.full(settings.num_frames - n_unique_out, n_unique_out, np.int64)
        loop_index = np.concatenate([first_pass_index, pad])

    assert frames.shape[0] == settings.num_frames, f"{frames.shape=}"
    assert audio_out.shape == (settings.num_samples,), f"{audio_out.shape=}"
    return DecodedClip(
        frames=frames,
        audio=audio_out.astype(np.float32, copy=False),
        info=info,
        source_duration=float(source_duration),
        loop_index=loop_index,
        audio_stream=audio_stream,
    )
