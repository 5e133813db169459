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

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from v2s_models.media.audio_decoding import SILENCE_DBFS, _read_audio_from_container, rms_dbfs
from v2s_models.media.lengths import PadMode, fit_length
from v2s_models.media.probe import MediaError, MediaInfo, _info_from_container, _open_container, _video_header
from v2s_models.media.video_decoding import VideoBackend, _check_size, _read_video

if TYPE_CHECKING:
    from v2s_models.settings import DataSettings


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
# Clips


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
