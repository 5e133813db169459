"""Reading a file's frames at a frame rate and size (decord, else PyAV): `read_frames`. Backends,
frame-rate conversion and resizing: `decoding`'s docstring."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from v2s_models.media.probe import (
    _TIME_TOL,
    MediaError,
    MediaInfo,
    _info_from_container,
    _open_container,
    _timeline_origin,
    _video_header,
    _video_stream,
    _VideoHeader,
)

if TYPE_CHECKING:
    pass


VideoBackend = Literal["auto", "decord", "pyav"]

_TRUNCATED_FRACTION = 0.9  # fewer frames than this share of the header's count: the file was cut short
_DECORD_CHUNK = 32  # frames converted per decord call
# Containers with a frame index, where decord's random access returns the frames asked for. In MPEG-TS (and
# other index-less streams) decord seeks to the wrong place and silently substitutes "nearest" frames
# (measured: frames 32.. returned for 0..), so those go to PyAV's sequential decoding.
_DECORD_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "avi", "matroska,webm", "flv"})


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
