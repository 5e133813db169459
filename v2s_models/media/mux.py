"""Put a waveform on a video: copy the video's packets untouched when the output container can hold its codec,
else re-encode the picture to H.264; the audio is encoded to AAC and lasts exactly as long as the video.

Copy or re-encode
    Copying (remuxing) keeps the picture bit-exact and costs no decoding. It needs the output container to hold
    the input's codec. For .mp4 / .m4v we accept only the codecs players decode from mp4 (h264, hevc, av1, vp9,
    mpeg4): FFmpeg's mp4 muxer also accepts MJPEG (MPEG-4 object type 0x6C), but browsers, QuickTime and Android
    do not play it, so an mp4 carrying it is useless in practice. Other containers (.mov, .mkv, ...) hold what
    FFmpeg's muxer for them accepts (`OutputContainer.supported_codecs`). Otherwise the video is decoded and
    re-encoded with libx264 (yuv420p, CRF 18, preset "veryfast": visually transparent for generated-sound demos,
    and fast on a CPU), keeping every frame's timestamp (variable frame rates survive); odd frame sizes are
    rounded down to even ones, which yuv420p needs. `MuxResult.video_copied` / `note` say which happened.

Timeline
    All the input's video packets are copied, including those an edit list marks "discard" (a later frame may
    need them to decode), with their timestamps. The audio starts at the video's first presentation time and is
    cut or zero-padded to the video's duration (`video_duration`: first presentation time to the end of the last
    frame, read by demuxing only), so the two streams end together. The AAC encoder's priming and tail padding
    are declared by the muxer (mp4 / mov edit list), so the audio stream's declared duration is the waveform's.
"""

from __future__ import annotations

import fractions
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from v2s_models.io import atomic_path
from v2s_models.media.audio_decoding import _resample
from v2s_models.media.probe import MediaError, _open_container, _stream_duration, _video_stream

OUTPUT_FORMATS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
}
"""Output extensions and their FFmpeg muxers: the ones that hold AAC audio beside most video codecs."""

MP4_PLAYABLE_CODECS = frozenset({"h264", "hevc", "av1", "vp9", "mpeg4"})
"""Video codecs copied into .mp4 / .m4v (module docstring: why MJPEG is not among them)."""

REENCODE_CODEC = "libx264"
REENCODE_OPTIONS = {"crf": "18", "preset": "veryfast"}
AUDIO_CODEC = "aac"
AUDIO_BITRATE = 128_000
AAC_SAMPLE_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
"""Rates AAC can signal; other rates are resampled (soxr HQ) to the next one up for the video's sound track."""
_AUDIO_CHUNK = 8192  # samples handed to the encoder at a time (it re-frames them to 1024)


@dataclass(frozen=True)
class MuxResult:
    """What `mux_audio` wrote. Durations in seconds; `note` says why the video was re-encoded ("" if copied)."""

    path: Path
    video_copied: bool
    input_codec: str
    output_codec: str
    note: str
    video_duration: float
    audio_samples: int
    sample_rate: int


def output_format(path: str | os.PathLike[str]) -> str:
    """FFmpeg muxer name for an output file name; ValueError for extensions that cannot hold AAC + video."""
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        raise ValueError(
            f"{path}: unsupported output container {suffix or '(no extension)'!r}; "
            f"use one of {', '.join(sorted(OUTPUT_FORMATS))}"
        )
    return OUTPUT_FORMATS[suffix]


def _supported_codecs(fmt: str) -> frozenset[str]:
    import av

    with av.open(io.BytesIO(), "w", format=fmt) as probe:
        return frozenset(probe.supported_codecs)


def copy_support(video_codec: str, out_path: str | os.PathLike[str]) -> tuple[bool, str]:
    """(can the output container hold `video_codec` as it is, and if not, why)."""
    fmt = output_format(out_path)
    suffix = Path(out_path).suffix.lower()
    if fmt == "mp4":
        if video_codec in MP4_PLAYABLE_CODECS:
            return True, ""
        return (
            False,
            f"{video_codec} video is not playable from {suffix} (players decode {sorted(MP4_PLAYABLE_CODECS)})",
        )
    if video_codec in _supported_codecs(fmt):
        return True, ""
    return False, f"the {fmt} muxer cannot hold {video_codec} video"


def video_duration(path: str | os.PathLike[str]) -> float:
    """Seconds from the video's first presentation time to the end of its last frame, by demuxing only.

    Packets an edit list discards are not counted; a packet without a duration ends at the next frame's time
    (the median frame interval for the last one). Falls back to the stream's declared duration.
    """
    import av

    with _open_container(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise MediaError(path, "no_video_stream", "the file has no video stream")
        tb = float(stream.time_base)
        use_dts = container.format.name == "avi"  # AVI stores decode times only (media._video_frame_times)
        starts: list[int] = []
        ends: list[int] = []
        try:
            for p in container.demux(stream):
                t = p.dts if use_dts else p.pts
                if t is None or p.is_discard:
                    continue
                starts.append(t)
                ends.append(t + (p.duration or 0))
        except av.FFmpegError as e:
            raise MediaError(path, "corrupt", f"video demuxing failed ({e})") from e
        declared = _stream_duration(stream)
    if not starts:
        raise MediaError(path, "zero_length", "the video stream has no frames")
    first, last_end = min(starts), max(ends)
    if last_end <= max(starts):  # no packet durations: add one typical frame interval
        times = np.sort(np.asarray(starts))
        last_end = int(times[-1] + (np.median(np.diff(times)) if len(times) > 1 else 0))
    duration = (last_end - first) * tb
    if duration <= 0 and declared is not None:
        return declared
    return float(duration)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when two paths name one file: the same path after resolving links, `..` and case-insensitive file
    systems' spellings, or the same inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def stale_parts(out: str | os.PathLike[str]) -> list[Path]:
    """Temporary files an interrupted write of `out` left beside it (`.<name>.*.part`, v2s_models.io)."""
    out = Path(out)
    if not out.parent.is_dir():
        return []
    return sorted(out.parent.glob(f".{out.name}.*.part"))


def prepare_outputs(
    video: str | os.PathLike[str], outs: list[Path], *, overwrite: bool = False
) -> list[Path]:
    """Checks the files `v2s generate` is about to write for `video` and cleans what an interrupted run left.

    Refuses (ValueError) an output that is the input itself (also through a link or another spelling of the
    path) and an existing output unless `overwrite`; removes stale `.part` files of these outputs (a kill
    during a write leaves them; the next run cleans them). Returns the removed `.part` files.
    """
    for out in outs:
        if same_file(video, out):
            raise ValueError(f"{out}: the output would replace the input video {video}; choose another --out")
        if out.is_dir():
            raise ValueError(f"{out}: a folder is in the way of the output file")
        if (out.exists() or out.is_symlink()) and not overwrite:
            raise ValueError(f"{out} exists; pass --overwrite to replace it")
    removed = []
    for out in outs:
        for part in stale_parts(out):
            part.unlink(missing_ok=True)
            removed.append(part)
    return removed


def make_readable(path: str | os.PathLike[str]) -> None:
    """Gives a file the permissions a new file gets under the process umask (temporary files are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fit_audio(audio: np.ndarray, n: int) -> np.ndarray:
    """(N,) or (C, N) float -> (C, n) float32 in [-1, 1], cut or zero-padded at the end."""
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] not in (1, 2):
        raise ValueError(f"audio must be (N,) mono or (C, N) with 1 or 2 channels, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("audio has NaN or infinite samples")
    out = np.zeros((x.shape[0], n), np.float32)
    m = min(n, x.shape[1])
    out[:, :m] = x[:, :m]
    return np.clip(out, -1.0, 1.0)


def _encode_audio(stream: Any, audio: np.ndarray, sample_rate: int, start_pts: int) -> list[Any]:
    """All AAC packets of `audio` (C, N), the first sample at `start_pts` (in 1 / sample_rate units)."""
    import av

    layout = "mono" if audio.shape[0] == 1 else "stereo"
    tb = fractions.Fraction(1, sample_rate)
    packets: list[Any] = []
    for i in range(0, audio.shape[1], _AUDIO_CHUNK):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(audio[:, i : i + _AUDIO_CHUNK]), format="fltp", layout=layout
        )
        frame.sample_rate = sample_rate
        frame.time_base = tb
        frame.pts = start_pts + i
        packets.extend(stream.encode(frame))
    packets.extend(stream.encode(None))
    return packets


class _Interleaver:
    """Muxes the (small, pre-encoded) audio packets in time order between the video packets, so the file is
    interleaved without FFmpeg buffering seconds of video."""

    def __init__(self, container: Any, audio_packets: list[Any]) -> None:
        self.container = container
        self.pending = list(audio_packets)
        self.next = 0

    @staticmethod
    def _time(packet: Any) -> float:
        t = packet.dts if packet.dts is not None else packet.pts
        return float(t * packet.time_base) if t is not None else 0.0

    def mux_video(self, packet: Any) -> None:
        t = self._time(packet)
        while self.next < len(self.pending) and self._time(self.pending[self.next]) <= t:
            self.container.mux(self.pending[self.next])
            self.next += 1
        self.container.mux(packet)

    def finish(self) -> None:
        for packet in self.pending[self.next :]:
            self.container.mux(packet)
        self.next = len(self.pending)


def _copy_video(inp: Any, in_stream: Any, out_stream: Any, mux: _Interleaver) -> None:
    for packet in inp.demux(in_stream):
        if packet.dts is None and packet.pts is None:  # the demuxer's flush packet
            continue
        packet.stream = out_stream
        mux.mux_video(packet)


def _reencode_video(inp: Any, in_stream: Any, out_stream: Any, mux: _Interleaver) -> None:
    width, height = out_stream.codec_context.width, out_stream.codec_context.height
    rate = in_stream.average_rate or in_stream.guessed_rate
    step = max(1, int(round(1 / (float(rate) * float(in_stream.time_base))))) if rate else 1
    last_pts: int | None = None
    for frame in inp.decode(in_stream):
        pts = frame.pts if frame.pts is not None else (0 if last_pts is None else last_pts + step)
        if last_pts is not None and pts <= last_pts:  # encoders need strictly increasing timestamps
            pts = last_pts + 1
        last_pts = pts
        picture = frame.reformat(width=width, height=height, format="yuv420p")
        picture.pts = pts
        picture.time_base = in_stream.time_base
        for packet in out_stream.encode(picture):
            mux.mux_video(packet)
    for packet in out_stream.encode(None):
        mux.mux_video(packet)


def mux_audio(
    video: str | os.PathLike[str],
    audio: np.ndarray,
    sample_rate: int,
    out: str | os.PathLike[str],
    *,
    force_reencode: bool = False,
    audio_bitrate: int = AUDIO_BITRATE,
) -> MuxResult:
    """Writes `out`: the picture of `video` (packets copied, or re-encoded to H.264 where the container needs it)
    with `audio` ((N,) mono or (2, N), float in [-1, 1] at `sample_rate`) as its only sound, AAC.

    The audio is cut or zero-padded to the video's duration, and resampled when AAC cannot carry its rate
    (`aac_sample_rate`; `MuxResult.sample_rate` is the encoded rate). The file is written atomically (nothing is left at
    `out` on error). Raises MediaError for an unusable input video, ValueError for a bad output name or audio.
    """
    import av

    out = Path(out)
    fmt = output_format(out)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    duration = video_duration(video)
    with _open_container(video) as inp:
        in_stream = _video_stream(inp)
        if in_stream is None:
            raise MediaError(video, "no_video_stream", "the file has no video stream")
        in_codec = str(in_stream.codec_context.name)
        copy, reason = (False, "re-encoding was asked for") if force_reencode else copy_support(in_codec, out)
        start = float(in_stream.start_time * in_stream.time_base) if in_stream.start_time is not None else 0.0
    if AUDIO_CODEC not in _supported_codecs(fmt):
        raise ValueError(f"{out}: the {fmt} container cannot hold {AUDIO_CODEC} audio")
    samples = _fit_audio(audio, int(round(duration * sample_rate)))
    aac_rate = aac_sample_rate(sample_rate)
    if aac_rate != sample_rate:
        samples = _fit_audio(_resample(samples, sample_rate, aac_rate), int(round(duration * aac_rate)))
    n_samples = samples.shape[1]

    with atomic_path(out) as tmp, _open_container(video) as inp:
        in_stream = _video_stream(inp)
        in_stream.thread_type = "AUTO"
        options = {"movflags": "+faststart"} if fmt in ("mp4", "mov") else {}
        with av.open(str(tmp), "w", format=fmt, options=options) as container:
            # Failures while setting up the output are ours (RuntimeError); while reading, the input's.
            try:
                if copy:
                    out_stream = container.add_stream_from_template(in_stream)
                else:
                    rate = in_stream.average_rate or in_stream.guessed_rate or fractions.Fraction(25)
                    out_stream = container.add_stream(
                        REENCODE_CODEC, rate=rate, options=dict(REENCODE_OPTIONS)
                    )
                    out_stream.width = max(2, in_stream.codec_context.width // 2 * 2)
                    out_stream.height = max(2, in_stream.codec_context.height // 2 * 2)
                    out_stream.pix_fmt = "yuv420p"
                    out_stream.time_base = in_stream.time_base
                    out_stream.codec_context.time_base = in_stream.time_base
                audio_stream = container.add_stream(
                    AUDIO_CODEC, rate=aac_rate, layout="mono" if samples.shape[0] == 1 else "stereo"
                )
                audio_stream.bit_rate = audio_bitrate
                packets = _encode_audio(audio_stream, samples, aac_rate, int(round(start * aac_rate)))
            except av.FFmpegError as e:
                raise RuntimeError(f"{out}: cannot set up the output streams ({e})") from e
            mux = _Interleaver(container, packets)
            try:
                if copy:
                    _copy_video(inp, in_stream, out_stream, mux)
                else:
                    _reencode_video(inp, in_stream, out_stream, mux)
                mux.finish()
            except av.FFmpegError as e:
                raise MediaError(video, "corrupt", f"remuxing failed ({e})") from e
        make_readable(tmp)
    return MuxResult(
        path=out,
        video_copied=copy,
        input_codec=in_codec,
        output_codec=in_codec if copy else "h264",
        note="" if copy else reason,
        video_duration=duration,
        audio_samples=n_samples,
        sample_rate=aac_rate,
    )


def aac_sample_rate(sample_rate: int) -> int:
    """The AAC rate the sound track is encoded at: `sample_rate` itself, else the next signalable rate up."""
    for rate in AAC_SAMPLE_RATES:
        if rate >= sample_rate:
            return rate
    return AAC_SAMPLE_RATES[-1]
