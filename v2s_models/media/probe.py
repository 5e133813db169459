"""Opening media files and reading their headers: `probe` -> `MediaInfo`, and the `MediaError` every
decoding step raises (with a machine-readable `reason`). How the decoders use the timeline: `decoding`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


_TIME_TOL = 1e-4  # s: times closer than this are the same instant (time-base conversions round)


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
