"""A seeded corpus of bad and odd inputs for the data pipeline and `v2s generate` (issue 15 item 7).

`build_corpus(root, seed)` writes a source folder (`root/<category>/<file>`) of small files made with PyAV
alone (64 x 48 pixels or so, at most 3 s) plus the odd entries a file system can hold (pipes, device links,
loops, dangling links, names that are not UTF-8 or hold control characters, folders named like videos), and
returns one `CorpusEntry` per input with the outcomes the pipeline may give it. The same seed gives the same
files; the kinds and counts do not depend on the seed, only the sizes, rates, durations and bytes.

Outcomes are "ok" or a reason of `dataprep.sources.SKIP_REASONS` / `v2s_models.media.probe.MediaError`.
"""

from __future__ import annotations

import fractions
import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

OK = frozenset({"ok"})


@dataclass(frozen=True)
class CorpusEntry:
    """One input: its path, what kind of oddity it is, and the outcomes the decode stage may give it."""

    path: Path
    kind: str
    expected: frozenset[str]
    clip_id: str | None  # None where the name cannot be an id (scan skips it)
    is_file: bool = True  # False for pipes, devices, links to them, loops, dangling links, folders
    generate: bool = False  # in the representative subset `v2s generate` runs on


@dataclass(frozen=True)
class _Spec:
    fps: float
    size: tuple[int, int]
    duration: float
    sample_rate: int
    channels: int


def _frames(spec: _Spec, rng: np.random.Generator) -> list[np.ndarray]:
    n = max(1, round(spec.duration * spec.fps))
    w, h = spec.size
    base = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    return [np.roll(base, 3 * k, axis=1) for k in range(n)]


def _tone(spec: _Spec, rng: np.random.Generator, *, silent: bool = False) -> np.ndarray:
    n = int(spec.duration * spec.sample_rate)
    t = np.arange(n) / spec.sample_rate
    f0 = float(rng.uniform(200, 900))
    x = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    x = np.zeros(n) if silent else x
    return np.repeat(x[None], spec.channels, axis=0).astype(np.float32)


def write_media(
    path: Path,
    spec: _Spec,
    rng: np.random.Generator,
    *,
    container: str | None = None,
    video_codec: str | None = "libx264",
    audio_codecs: tuple[str, ...] = ("aac",),
    silent: tuple[bool, ...] = (False,),
    vfr: bool = False,
    audio_delay: float = 0.0,
    faststart: bool = True,
) -> None:
    """Writes a small file with PyAV: a moving noise picture and a tone per audio stream (or silence)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opts = {"movflags": "+faststart"} if faststart and path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with av.open(str(path), "w", format=container, options=opts) as out:
        vs = None
        if video_codec is not None:
            rate = fractions.Fraction(spec.fps).limit_denominator(1000)
            vs = out.add_stream(video_codec, rate=rate)
            vs.width, vs.height = spec.size
            vs.pix_fmt = "yuvj420p" if video_codec == "mjpeg" else "yuv420p"
            if vfr:
                vs.time_base = fractions.Fraction(1, 1000)
        streams = []
        for codec in audio_codecs:
            layout = {1: "mono", 2: "stereo", 6: "5.1"}[spec.channels]
            a = out.add_stream(codec, rate=spec.sample_rate, layout=layout)
            streams.append(a)
        if vs is not None:
            t_ms = 0
            for k, img in enumerate(_frames(spec, rng)):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if vfr:  # irregular intervals around the nominal one
                    frame.pts = t_ms
                    t_ms += int(1000 / spec.fps * (0.5 if k % 3 == 0 else 1.25))
                else:
                    frame.pts = k
                out.mux(vs.encode(frame))
            out.mux(vs.encode(None))
        for i, a in enumerate(streams):
            audio = _tone(spec, rng, silent=silent[i] if i < len(silent) else False)
            formats = a.codec_context.codec.audio_formats or ()
            fmt = formats[0].name if formats else "fltp"
            resampler = av.AudioResampler(format=fmt, layout=a.layout.name, rate=spec.sample_rate)
            start = int(audio_delay * spec.sample_rate)
            chunk = a.codec_context.frame_size or 1024
            for j in range(0, audio.shape[1], chunk):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(audio[:, j : j + chunk]), format="fltp", layout=a.layout.name
                )
                frame.sample_rate = spec.sample_rate
                frame.pts = start + j
                frame.time_base = fractions.Fraction(1, spec.sample_rate)
                for f in resampler.resample(frame):
                    out.mux(a.encode(f))
            for f in resampler.resample(None):
                out.mux(a.encode(f))
            out.mux(a.encode(None))


def _spec(rng: random.Random, **over: object) -> _Spec:
    base = {
        "fps": rng.choice([10.0, 12.5, 15.0, 24.0, 25.0, 29.97]),
        "size": (rng.choice([48, 64, 80]), rng.choice([32, 48, 64])),
        "duration": round(rng.uniform(1.0, 2.5), 2),
        "sample_rate": rng.choice([16000, 22050, 44100, 48000]),
        "channels": rng.choice([1, 2]),
    }
    base.update(over)
    return _Spec(**base)  # type: ignore[arg-type]


def rotate_mp4(path: Path, degrees: int) -> None:
    """Marks an mp4's first track as displayed turned by `degrees` clockwise (90 or 270), the way phones do: the
    track header's matrix (FFmpeg's display matrix). PyAV's `rotate` tag does not survive FFmpeg 7's muxer."""
    matrices = {
        90: (0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30),
        270: (0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30),
    }
    data = bytearray(path.read_bytes())
    t = data.find(b"tkhd")
    assert t > 0 and data[t + 4] == 0, f"{path}: no version-0 track header"
    data[t + 44 : t + 80] = struct.pack(">9i", *matrices[degrees])  # the matrix follows 40 bytes of fields
    path.write_bytes(bytes(data))


def _garble_moov(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    i = data.find(b"moov")
    assert i > 0, path
    for k in range(i + 8, min(len(data), i + 8 + 200)):  # the movie header and the first track's boxes
        data[k] = rng.randrange(256)
    path.write_bytes(bytes(data))


def _truncate(path: Path, fraction: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: max(16, int(len(data) * fraction))])


def build_corpus(root: Path, seed: int = 0) -> list[CorpusEntry]:
    """Writes the corpus under `root` (a source folder) and returns its entries (at least 80)."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    entries: list[CorpusEntry] = []

    def media(
        cat: str, name: str, kind: str, expected: frozenset[str], gen: bool = False, **kw: object
    ) -> Path:
        spec = kw.pop("spec", None) or _spec(rng)
        p = root / cat / name
        write_media(p, spec, nrng, **kw)  # type: ignore[arg-type]
        entries.append(CorpusEntry(p, kind, expected, f"{cat}/{Path(name).stem}", generate=gen))
        return p

    def odd(p: Path, kind: str, expected: str, *, is_file: bool = False, clip_id: str | None = None) -> None:
        entries.append(CorpusEntry(p, kind, frozenset({expected}), clip_id, is_file=is_file))

    # --- inputs that must go through (30) ---
    for i in range(12):
        media("plain", f"clip_{i:02d}.mp4", "h264_aac_mp4", OK, gen=i < 2)
    media(
        "containers", "mpeg4_mp2.avi", "mpeg4_avi", OK, gen=True, video_codec="mpeg4", audio_codecs=("mp2",)
    )
    media(
        "containers",
        "mjpeg_pcm.mov",
        "mjpeg_mov",
        OK,
        gen=True,
        video_codec="mjpeg",
        audio_codecs=("pcm_s16le",),
    )
    media(
        "containers",
        "h264_opus.mkv",
        "h264_mkv",
        OK,
        gen=True,
        audio_codecs=("libopus",),
        spec=_spec(rng, sample_rate=48000),
    )
    media("containers", "h264_mp3.mkv.mp4", "double_suffix", OK, audio_codecs=("aac",))
    media("containers", "UPPER.MP4", "upper_suffix", OK)
    for i in range(3):
        media("vfr", f"vfr_{i}.mp4", "variable_frame_rate", OK, gen=True, vfr=True)
    media(
        "sizes",
        "odd_63x47.mp4",
        "odd_size",
        OK,
        gen=True,
        video_codec="mpeg4",
        spec=_spec(rng, size=(63, 47)),
    )
    for degrees in (90, 270):
        p = media("sizes", f"rot{degrees}.mp4", "rotated_display_matrix", OK, gen=degrees == 90)
        rotate_mp4(p, degrees)
    media("sizes", "surround.mp4", "six_channels", OK, audio_codecs=("aac",), spec=_spec(rng, channels=6))
    media("sizes", "low_rate.mp4", "8k_audio", OK, spec=_spec(rng, sample_rate=8000))
    media(
        "sizes",
        "three_frames.mp4",
        "three_frames",
        OK | {"too_short"},
        gen=True,
        spec=_spec(rng, duration=0.2, fps=15.0),
    )
    media("timing", "late_audio.mp4", "audio_starts_late", OK, gen=True, audio_delay=0.4)
    media("timing", "no_faststart.mp4", "moov_at_end", OK, faststart=False)
    media("names", "café ñ.mp4", "utf8_name", OK, gen=True)
    media("names", "with space.mp4", "space_in_name", OK)
    media("names", "emoji_🔊.mp4", "emoji_name", OK)
    target = media("names", "original.mp4", "symlink_target", OK)
    link = root / "names" / "link_to_original.mp4"
    link.symlink_to(target.name)
    entries.append(CorpusEntry(link, "symlink_to_file", OK, "names/link_to_original"))
    media(
        "streams",
        "silent_first.mp4",
        "first_audio_silent_second_not",
        OK | {"silent_audio"},
        gen=True,
        audio_codecs=("aac", "aac"),
        silent=(True, False),
    )

    # --- inputs the decode stage quarantines (media errors) ---
    for i in range(4):
        p = root / "broken" / f"random_{i}.mp4"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(rng.randbytes(rng.randrange(200, 4000)))
        entries.append(
            CorpusEntry(p, "random_bytes", frozenset({"corrupt"}), f"broken/random_{i}", generate=i == 0)
        )
    p = root / "broken" / "text.mp4"
    p.write_text("this is not a video\n" * 20)
    entries.append(CorpusEntry(p, "text_file", frozenset({"corrupt"}), "broken/text"))
    for i in range(2):
        p = root / "broken" / f"empty_{i}.mp4"
        p.write_bytes(b"")
        entries.append(
            CorpusEntry(p, "zero_length", frozenset({"zero_length"}), f"broken/empty_{i}", generate=i == 0)
        )
    for i in range(4):
        p = media(
            "broken",
            f"garbled_moov_{i}.mp4",
            "garbled_moov",
            frozenset({"corrupt", "no_video_stream"}),
            gen=i == 0,
        )
        _garble_moov(p, rng)
    for i in range(3):
        p = media(
            "broken",
            f"header_only_{i}.mp4",
            "header_only",
            frozenset({"corrupt", "zero_length", "no_audio_stream", "no_video_stream"}),
        )
        _truncate(p, 0.05)
    for i, frac in enumerate((0.6, 0.8, 0.95)):
        p = media(
            "truncated",
            f"cut_{i}.mp4",
            "truncated",
            OK | {"corrupt"},
            gen=True,
            spec=_spec(rng, duration=2.5),
        )
        _truncate(p, frac)
    for i in range(3):
        media(
            "streams",
            f"video_only_{i}.mp4",
            "no_audio_stream",
            frozenset({"no_audio_stream"}),
            audio_codecs=(),
        )
    for i in range(2):
        media("streams", f"silent_{i}.mp4", "silent_audio", frozenset({"silent_audio"}), silent=(True,))
    for i in range(2):
        media(
            "streams",
            f"audio_only_{i}.mp4",
            "no_video_stream",
            frozenset({"no_video_stream"}),
            gen=i == 0,
            video_codec=None,
        )

    # --- entries `scan` skips before anything opens them ---
    for i, suffix in enumerate((".wav", ".mp3")):
        p = root / "streams" / f"sound_{i}{suffix}"
        write_media(
            p,
            _spec(rng),
            nrng,
            video_codec=None,
            audio_codecs=("pcm_s16le",) if suffix == ".wav" else ("libmp3lame",),
        )
        odd(p, "audio_file", "audio_only_file", is_file=True)
    for i, (a, b) in enumerate(((".mp4", ".mkv"), (".mov", ".avi"))):
        for suffix in (a, b):
            p = media(
                "dupes",
                f"same_{i}{suffix}",
                "duplicate_stem",
                frozenset({"duplicate_stem"}),
                container="matroska" if suffix == ".mkv" else None,
                video_codec="mpeg4",
            )
            entries[-1] = CorpusEntry(p, "duplicate_stem", frozenset({"duplicate_stem"}), None)
    odd_dir = root / "odd"
    odd_dir.mkdir(parents=True, exist_ok=True)
    good = media("odd", "fine.mp4", "neighbour_of_odd_entries", OK)
    for raw in (b"latin1_\xe9t\xe9.mp4", b"bad_\xff\xfe.mp4"):
        p = Path(os.fsdecode(bytes(odd_dir) + b"/" + raw))
        p.write_bytes(good.read_bytes())
        odd(p, "non_utf8_name", "non_utf8_name", is_file=True)
    for name in ("new\nline.mp4", "tab\there.mp4", "bell\x07.mp4"):
        p = odd_dir / name
        p.write_bytes(good.read_bytes())
        odd(p, "control_character_name", "bad_clip_id", is_file=True)
    for i in range(2):
        p = odd_dir / f"pipe_{i}.mp4"
        os.mkfifo(p)
        odd(p, "named_pipe", "named_pipe")
    for name, target in (
        ("zero.mp4", "/dev/zero"),
        ("null.mp4", "/dev/null"),
        ("random.mp4", "/dev/urandom"),
    ):
        (odd_dir / name).symlink_to(target)
        odd(odd_dir / name, "link_to_device", "not_a_regular_file")
    (odd_dir / "loop_a.mp4").symlink_to("loop_b.mp4")
    (odd_dir / "loop_b.mp4").symlink_to("loop_a.mp4")
    (odd_dir / "self.mp4").symlink_to("self.mp4")
    for name in ("loop_a.mp4", "loop_b.mp4", "self.mp4"):
        odd(odd_dir / name, "symlink_loop", "symlink_loop")
    for i in range(2):
        (odd_dir / f"dangling_{i}.mp4").symlink_to(f"/nonexistent/v2s_corpus_{i}.mp4")
        odd(odd_dir / f"dangling_{i}.mp4", "dangling_symlink", "dangling_symlink")
    for i in range(2):
        d = odd_dir / f"folder_{i}.mp4"
        d.mkdir()
        (d / "inside.txt").write_text("a folder named like a video\n")
        odd(d, "directory_named_like_video", "directory_named_like_video")
    (odd_dir / "link_to_folder.mkv").symlink_to("folder_0.mp4")
    odd(odd_dir / "link_to_folder.mkv", "link_to_folder", "directory_named_like_video")
    return entries
