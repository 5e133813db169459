"""Videos as a web page can hold them: the file's own bytes when browsers play it, else an H.264 + AAC mp4.

Browsers play mp4 files carrying H.264, VP9 or AV1 video and AAC, MP3 or Opus audio (Debian's `chromium`
package included: it is built with the proprietary H.264 / AAC decoders). Those files are embedded untouched, so
raters hear exactly the bytes the evaluation wrote. Anything else (MJPEG, MPEG-4 Part 2, HEVC, PCM or MP2 audio,
.mov / .mkv containers), and every file when a maximum picture height is asked for, is re-encoded: libx264
(yuv420p, CRF 20) and AAC at 192 kb/s, keeping each frame's and each audio frame's timestamp.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

BROWSER_VIDEO_CODECS = frozenset({"h264", "vp9", "av1", "libdav1d"})
BROWSER_AUDIO_CODECS = frozenset({"aac", "mp3", "mp3float", "opus", "libopus"})
MP4_SUFFIXES = frozenset({".mp4", ".m4v"})
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)


def _probe(path: Path) -> tuple[str, str | None, int]:
    """(video codec, audio codec or None, picture height) from the container header."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path}: no video stream")
            video = container.streams.video[0].codec_context
            audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
            return video.name, audio, video.height
    except av.FFmpegError as e:
        raise ValueError(f"{path}: not a readable video ({e})") from e


def browser_playable(path: str | Path) -> tuple[bool, str]:
    """(would a browser play this file as it is, and if not, why). Reads the container header only."""
    path = Path(path)
    video, audio, _ = _probe(path)
    if path.suffix.lower() not in MP4_SUFFIXES:
        return False, f"{path.suffix or 'no extension'} is not an mp4 file"
    if video not in BROWSER_VIDEO_CODECS:
        return False, f"{video} video"
    if audio is not None and audio not in BROWSER_AUDIO_CODECS:
        return False, f"{audio} audio"
    return True, ""


def transcode_mp4(path: str | Path, *, max_height: int | None = None) -> bytes:
    """The file re-encoded to an mp4 of H.264 (yuv420p, even sizes, at most `max_height` lines) and AAC audio."""
    import av

    out_buf = io.BytesIO()  # no "faststart" needed (nor possible in memory): a data URI arrives whole
    with av.open(str(path)) as inp, av.open(out_buf, "w", format="mp4") as out:
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        height = vin.codec_context.height
        width = vin.codec_context.width
        if max_height is not None and height > max_height:
            width, height = round(width * max_height / height), max_height
        width, height = max(2, width // 2 * 2), max(2, height // 2 * 2)
        vout = out.add_stream(
            "libx264", rate=vin.average_rate or Fraction(25), options={"crf": "20", "preset": "veryfast"}
        )
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.time_base = vout.codec_context.time_base = vin.time_base
        aout = resampler = None
        if ain is not None:
            rate = min((r for r in AAC_RATES if r >= ain.codec_context.sample_rate), default=48000)
            layout = "mono" if ain.codec_context.channels == 1 else "stereo"
            aout = out.add_stream("aac", rate=rate, layout=layout)
            aout.bit_rate = 192_000
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        streams = [vin] + ([ain] if ain is not None else [])
        last_pts: int | None = None
        for packet in inp.demux(*streams):
            for frame in packet.decode():
                if packet.stream.type == "video":
                    pts = frame.pts if frame.pts is not None else (last_pts or 0) + 1
                    if last_pts is not None and pts <= last_pts:  # encoders need increasing timestamps
                        pts = last_pts + 1
                    last_pts = pts
                    picture = frame.reformat(width=width, height=height, format="yuv420p")
                    picture.pts, picture.time_base = pts, vin.time_base
                    out.mux(vout.encode(picture))
                else:
                    for chunk in resampler.resample(frame):
                        out.mux(aout.encode(chunk))
        out.mux(vout.encode(None))
        if aout is not None:
            for chunk in resampler.resample(None):
                out.mux(aout.encode(chunk))
            out.mux(aout.encode(None))
    return out_buf.getvalue()


def embeddable_mp4(path: str | Path, *, max_height: int | None = None) -> tuple[bytes, str]:
    """(mp4 bytes a browser plays, "" if they are the file's own bytes else why it was re-encoded)."""
    playable, why = browser_playable(path)
    too_tall = max_height is not None and _probe(Path(path))[2] > max_height
    if playable and not too_tall:
        return Path(path).read_bytes(), ""
    data = transcode_mp4(path, max_height=max_height)
    return data, why or f"scaled to at most {max_height} lines"
