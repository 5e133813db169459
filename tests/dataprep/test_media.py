"""Tests of v2s_models.media.decoding: length fitting, probing, audio and frame decoding, clip decoding and errors.

Synthetic media are written with PyAV into a temporary directory: a frame counter encoded as brightness
(frame i shows i in binary as six dark / bright vertical stripes, which survive h264 and resizing) checks
which source frame each output frame shows, and clicks at known times check audio timing through real
encoders (AAC, MPEG-TS). Real clips come from ../shared/media/real/.
"""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.corpus import _Spec, rotate_mp4
from tests.corpus import write_media as write_corpus_media
from v2s_models.media.audio_decoding import SILENCE_DBFS, read_audio, rms_dbfs
from v2s_models.media.decoding import decode_clip
from v2s_models.media.lengths import fit_length
from v2s_models.media.probe import MediaError, probe
from v2s_models.media.video_decoding import read_frames
from v2s_models.settings import REGNET, ZHOU, DataSettings

REAL_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "media" / "real"

# From ../shared/media/real/SOURCES.md: video codec, audio codec, (width, height), audio channels.
REAL_CLIPS = {
    "hitting_metal.mp4": ("h264", "mp3", (604, 340), 2),
    "hitting_bag.mp4": ("h264", "mp3", (604, 340), 2),
    "chopping.mp4": ("h264", "aac", (1280, 720), 2),
    "dog_barking.mp4": ("h264", "mp3", (480, 360), 2),
    "cap_gun.mp4": ("h264", "aac", (640, 360), 2),
    "hammer_anvil.mp4": ("h264", "aac", (640, 360), 2),
    "conga_drums.mp4": ("h264", "mp3", (640, 360), 2),
    "tennis_strokes.mp4": ("h264", "mp3", (640, 360), 2),
    "dog_quiet_1080p.mp4": ("h264", "aac", (1920, 1080), 2),
    "webcam_talk_mjpeg_u8.avi": ("mjpeg", "pcm_u8", (160, 120), 1),
    "diver_mjpeg_mp2.mov": ("mjpeg", "mp2", (640, 480), 2),
    "airplane_flyover.mp4": ("h264", "mp3", (640, 360), 2),
}
SMALL = (32, 32)  # frame size for real-clip decodes: keeps the file's run time low

VIDEO_HW = (48, 64)
BITS = 6


def real_clip(name: str) -> Path:
    path = REAL_DIR / name
    if not path.is_file():
        pytest.skip(f"real clip {path} is absent (../shared/media/real/ is not next to the repository)")
    return path


def counter_image(i: int) -> np.ndarray:
    """(H, W, 3) uint8 showing `i` in binary: stripe b (from the left) is bright when bit b is set."""
    img = np.full((*VIDEO_HW, 3), 20, np.uint8)
    width = VIDEO_HW[1] // BITS
    for b in range(BITS):
        if (i >> b) & 1:
            img[:, b * width : (b + 1) * width] = 235
    return img


def counter_of(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) frames of `counter_image` at any size -> (T,) frame counters."""
    h, w = frames.shape[1:3]
    stripe = w * (VIDEO_HW[1] // BITS) / VIDEO_HW[1]
    centres = [int((b + 0.5) * stripe) for b in range(BITS)]
    bits = frames[:, h // 2, centres].mean(axis=-1) > 128  # (T, BITS)
    return (bits * (1 << np.arange(BITS))).sum(axis=1)


def write_media(
    path: Path,
    *,
    frame_times: list[float] | None = None,
    rate: int = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 44100,
    audio_codec: str = "aac",
    audio_format: str | None = None,
    video: bool = True,
    options: dict[str, str] | None = None,
) -> Path:
    """Writes h264 frames (frame i shows `counter_image(i)` at frame_times[i], in a 1 / rate time base) and/or
    audio (C, N) in [-1, 1]."""
    container = av.open(str(path), "w", options=options or {})
    vstream = astream = None
    if video:
        vstream = container.add_stream("libx264", rate=rate)
        vstream.width, vstream.height = VIDEO_HW[1], VIDEO_HW[0]
        vstream.pix_fmt = "yuv420p"
        vstream.codec_context.time_base = Fraction(1, rate)
        vstream.options = {"crf": "10"}
    if audio is not None:
        astream = container.add_stream(audio_codec, rate=sample_rate)
        astream.layout = "mono" if audio.shape[0] == 1 else "stereo"
        if audio_format is not None:
            astream.format = audio_format
    if vstream is not None:
        for i, t in enumerate(frame_times or []):
            frame = av.VideoFrame.from_ndarray(counter_image(i), format="rgb24")
            frame.pts, frame.time_base = int(round(t * rate)), Fraction(1, rate)
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode())
    if astream is not None:
        layout = "mono" if audio.shape[0] == 1 else "stereo"
        block = 1024
        for start in range(0, audio.shape[1], block):
            chunk = np.ascontiguousarray(audio[:, start : start + block], dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(astream.encode(frame))
        container.mux(astream.encode())
    container.close()
    return path


def cfr_times(fps: float, n: int) -> list[float]:
    return [i / fps for i in range(n)]


def clicks(times: list[float], duration: float, sample_rate: int) -> np.ndarray:
    """(1, N) silence with single-sample clicks of 0.9 at `times` and quiet noise (so it is not silent)."""
    rng = np.random.default_rng(0)
    x = 1e-3 * rng.standard_normal((1, int(duration * sample_rate))).astype(np.float32)
    for t in times:
        x[0, int(round(t * sample_rate))] = 0.9
    return x


def peak_time(x: np.ndarray, sample_rate: int, around: float, window: float = 0.02) -> float:
    lo, hi = int((around - window) * sample_rate), int((around + window) * sample_rate)
    return (lo + int(np.argmax(np.abs(x[lo:hi])))) / sample_rate


# ---------------------------------------------------------------------------------------------------------
# fit_length


def test_fit_length_loop_exact_values() -> None:
    x = np.array([1, 2, 3])
    np.testing.assert_array_equal(fit_length(x, 8, mode="loop"), [1, 2, 3, 1, 2, 3, 1, 2])
    np.testing.assert_array_equal(fit_length(x, 3, mode="loop"), [1, 2, 3])
    np.testing.assert_array_equal(fit_length(x, 2, mode="loop"), [1, 2])


def test_fit_length_zero_and_trim() -> None:
    x = np.array([1.0, 2.0, 3.0], np.float32)
    out = fit_length(x, 5, mode="zero")
    np.testing.assert_array_equal(out, [1, 2, 3, 0, 0])
    assert out.dtype == np.float32, f"{out.dtype=}"
    np.testing.assert_array_equal(fit_length(x, 2, mode="zero"), [1, 2])
    np.testing.assert_array_equal(fit_length(x, 2, mode="trim"), [1, 2])
    np.testing.assert_array_equal(fit_length(x, 3, mode="trim"), [1, 2, 3])
    with pytest.raises(ValueError, match="cannot lengthen"):
        fit_length(x, 4, mode="trim")


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("mode", ["loop", "zero", "trim"])
@pytest.mark.parametrize("n", [0, 2, 4, 9])
def test_fit_length_axes(axis: int, mode: str, n: int) -> None:
    x = np.arange(2 * 4 * 3).reshape(2, 4, 3) + 1
    length = x.shape[axis]
    if mode == "trim" and n > length:
        with pytest.raises(ValueError):
            fit_length(x, n, mode=mode, axis=axis)
        return
    out = fit_length(x, n, mode=mode, axis=axis)
    expected_shape = list(x.shape)
    expected_shape[axis] = n
    assert list(out.shape) == expected_shape, f"{out.shape=}"
    for i in range(n):
        got = np.take(out, i, axis=axis)
        if i < length:
            np.testing.assert_array_equal(got, np.take(x, i, axis=axis))
        elif mode == "loop":
            np.testing.assert_array_equal(got, np.take(x, i % length, axis=axis))
        else:
            assert not got.any(), f"zero padding at {i} holds {got}"


def test_fit_length_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mode"):
        fit_length(np.ones(3), 5, mode="repeat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        fit_length(np.ones(0), 5, mode="loop")
    with pytest.raises(ValueError, match="axis"):
        fit_length(np.ones((2, 2)), 5, mode="loop", axis=2)
    with pytest.raises(ValueError, match="non-negative"):
        fit_length(np.ones(3), -1, mode="zero")
    np.testing.assert_array_equal(fit_length(np.ones(0), 2, mode="zero"), [0, 0])


# ---------------------------------------------------------------------------------------------------------
# Frame timing


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("out_fps", [21.5, 15.6, 12.5, 40.0])
def test_read_frames_picks_the_frame_shown_at_each_time(tmp_path: Path, backend: str, out_fps: float) -> None:
    src_fps, n = 25.0, 50
    path = write_media(tmp_path / "counter.mp4", frame_times=cfr_times(src_fps, n))
    frames = read_frames(path, fps=out_fps, backend=backend)  # type: ignore[arg-type]
    expected_len = int(np.ceil(n / src_fps * out_fps - 1e-6))
    assert frames.shape == (expected_len, *VIDEO_HW, 3), f"{frames.shape=}"
    assert frames.dtype == np.uint8
    k = np.arange(expected_len)
    expected = np.floor(k / out_fps * src_fps + 1e-6).astype(int)  # latest source frame at or before k / fps
    np.testing.assert_array_equal(counter_of(frames), expected)


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_read_frames_variable_frame_rate(tmp_path: Path, backend: str) -> None:
    times = [0.0, 0.1, 0.13, 0.5, 0.52, 0.9, 1.0, 1.37, 1.4, 1.41, 2.0]
    path = write_media(tmp_path / "vfr.mp4", frame_times=times, rate=1000)
    frames = read_frames(path, fps=10.0, backend=backend)  # type: ignore[arg-type]
    out_t = np.arange(len(frames)) / 10.0
    expected = [max(i for i, t in enumerate(times) if t <= ot + 1e-9) for ot in out_t]
    np.testing.assert_array_equal(counter_of(frames), expected)
    # Outputs at 0.0 .. 2.0 s (the file shows the last frame for 1 ms, one tick of its time base).
    assert len(frames) == 21, f"{len(frames)=}"


@pytest.mark.parametrize("ext", ["mp4", "mov", "mkv", "avi", "ts", "flv"])
def test_read_frames_in_each_container(tmp_path: Path, ext: str) -> None:
    """The default backend returns the right frames in every container (decord mis-seeks in MPEG-TS)."""
    path = write_media(tmp_path / f"counter.{ext}", frame_times=cfr_times(25.0, 50))
    frames = read_frames(path, fps=21.5)
    assert len(frames) == 43, f"{len(frames)=}"
    np.testing.assert_array_equal(counter_of(frames), np.floor(np.arange(43) / 21.5 * 25 + 1e-6))


def test_read_frames_size_and_max_duration(tmp_path: Path) -> None:
    path = write_media(tmp_path / "counter.mp4", frame_times=cfr_times(25.0, 50))
    frames = read_frames(path, fps=10.0, size=(20, 30), max_duration=1.0)
    assert frames.shape == (10, 20, 30, 3), f"{frames.shape=}"
    np.testing.assert_array_equal(counter_of(frames), np.arange(10) * 25 // 10)


def test_read_frames_real_clip_matches_sequential_decode() -> None:
    """decord's indexed access on a real h264 file with B-frames equals PyAV's sequential decode."""
    path = real_clip("hitting_metal.mp4")  # 15 fps
    frames = read_frames(path, fps=21.5, max_duration=2.0)
    container = av.open(str(path))
    source = [
        f.to_ndarray(format="rgb24") for _, f in zip(range(30), container.decode(video=0), strict=False)
    ]
    container.close()
    expected = np.floor(np.arange(len(frames)) / 21.5 * 15 + 1e-6).astype(int)
    assert len(frames) == 43, f"{len(frames)=}"
    for k, j in enumerate(expected):
        np.testing.assert_array_equal(frames[k], source[j], err_msg=f"output frame {k} should be source {j}")


# ---------------------------------------------------------------------------------------------------------
# Audio timing and formats


def test_aac_click_onsets_within_1ms(tmp_path: Path) -> None:
    sr, times = 44100, [0.25, 0.8, 1.37]
    path = write_media(
        tmp_path / "clicks.mp4", frame_times=cfr_times(25, 50), audio=clicks(times, 2.0, sr), sample_rate=sr
    )
    info = probe(path)
    assert info.audio_codec == "aac" and info.sample_rate == sr, f"{info=}"
    for out_sr in (sr, 22050, 16000):
        y = read_audio(path, sample_rate=out_sr)
        assert y.shape == (int(2.0 * out_sr),), f"{y.shape=} (encoder padding must be trimmed)"
        for t in times:
            assert abs(peak_time(y, out_sr, t) - t) < 1e-3, (
                f"click at {t} s found at {peak_time(y, out_sr, t)}"
            )


def test_mpegts_audio_is_aligned_to_the_first_video_frame(tmp_path: Path) -> None:
    """MPEG-TS shifts streams (video starts later than audio, AAC priming is in the timestamps)."""
    sr, times = 16000, [0.5, 1.2]
    path = write_media(
        tmp_path / "clicks.ts", frame_times=cfr_times(25, 50), audio=clicks(times, 2.0, sr), sample_rate=sr
    )
    container = av.open(str(path))
    starts = [float(s.start_time * s.time_base) for s in container.streams]
    container.close()
    assert max(starts) - min(starts) > 0.01, f"the test needs shifted streams, got starts {starts}"
    y = read_audio(path, sample_rate=sr)
    for t in times:
        assert abs(peak_time(y, sr, t) - t) < 1e-3, f"click at {t} s found at {peak_time(y, sr, t)}"
    frames = read_frames(path, fps=25.0)
    np.testing.assert_array_equal(counter_of(frames[:10]), np.arange(10))


@pytest.mark.parametrize(
    ("codec", "fmt", "tol"),
    [
        ("pcm_u8", "u8", 1 / 128),
        ("pcm_s16le", "s16", 1e-4),
        ("pcm_s24le", "s32", 1e-6),
        ("pcm_f32le", "flt", 0),
    ],
)
def test_pcm_formats_at_11025(tmp_path: Path, codec: str, fmt: str, tol: float) -> None:
    sr = 11025
    t = np.arange(int(1.5 * sr)) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    path = write_media(
        tmp_path / f"{codec}.wav", audio=x, sample_rate=sr, audio_codec=codec, audio_format=fmt, video=False
    )
    info = probe(path)
    assert (info.audio_codec, info.sample_rate, info.has_video) == (codec, sr, False), f"{info=}"
    y = read_audio(path, sample_rate=sr)
    assert y.dtype == np.float32 and y.shape == x[0].shape, f"{y.dtype=} {y.shape=}"
    np.testing.assert_allclose(y, x[0], atol=tol + 1e-7)
    up = read_audio(path, sample_rate=22050)
    assert up.shape == (2 * x.shape[1],), f"{up.shape=}"
    spectrum = np.abs(np.fft.rfft(up))
    assert abs(np.argmax(spectrum) * 22050 / len(up) - 440) < 2, "resampling moved the tone"


def test_read_audio_stereo_and_max_duration(tmp_path: Path) -> None:
    sr = 48000
    left = clicks([0.3], 1.0, sr)
    x = np.concatenate([left, -left])
    path = write_media(tmp_path / "stereo.mp4", audio=x, sample_rate=sr, audio_codec="mp2", video=False)
    y = read_audio(path, sample_rate=sr, mono=False, max_duration=0.5)
    assert y.shape == (2, sr // 2), f"{y.shape=}"
    assert np.corrcoef(y[0], -y[1])[0, 1] > 0.99
    mono = read_audio(path, sample_rate=sr, max_duration=0.5)
    assert np.abs(mono).max() < 0.05, "mono is the channel mean, which cancels here"


def test_real_u8_avi_and_mp2_mov_audio() -> None:
    for name, native in [("webcam_talk_mjpeg_u8.avi", 11024), ("diver_mjpeg_mp2.mov", 44100)]:
        path = real_clip(name)
        assert probe(path).sample_rate == native
        y = read_audio(path, sample_rate=22050)
        assert y.dtype == np.float32 and np.isfinite(y).all()
        assert -40 < rms_dbfs(y) < -10, f"{name}: {rms_dbfs(y)=}"
        assert np.abs(y).max() <= 1.0


# ---------------------------------------------------------------------------------------------------------
# decode_clip


def small_settings(**overrides: object) -> DataSettings:
    base = {"name": "test", "fps": 21.5, "sample_rate": 22050, "duration": 5.0, "frame_size": (24, 32)}
    base.update(overrides)
    return DataSettings(**base)  # type: ignore[arg-type]


def test_decode_clip_loops_both_streams_with_one_period(tmp_path: Path) -> None:
    sr, times = 22050, [0.5, 1.5]
    path = write_media(
        tmp_path / "clip.mp4", frame_times=cfr_times(25, 50), audio=clicks(times, 2.0, sr), sample_rate=sr
    )
    settings = small_settings(duration=5.0)
    clip = decode_clip(path, settings)
    assert clip.frames.shape == (settings.num_frames, 24, 32, 3), f"{clip.frames.shape=}"
    assert clip.audio.shape == (settings.num_samples,) and clip.audio.dtype == np.float32
    assert clip.source_duration == pytest.approx(2.0, abs=1e-3)
    unit_frames = 43  # ceil(2.0 * 21.5)
    period = round(unit_frames * sr / 21.5)  # 44100 samples = exactly 2.0 s
    np.testing.assert_array_equal(clip.frames[unit_frames : 2 * unit_frames], clip.frames[:unit_frames])
    np.testing.assert_array_equal(clip.audio[period : 2 * period], clip.audio[:period])
    np.testing.assert_array_equal(clip.loop_index[unit_frames:], np.arange(settings.num_frames - 43) % 43)
    np.testing.assert_array_equal(clip.frames[clip.loop_index], clip.frames)
    # Every repetition keeps sound and picture together: the clicks come back every 2.0 s.
    for t in (0.5, 1.5, 2.5, 3.5, 4.5):
        assert abs(peak_time(clip.audio, sr, t) - t) < 1e-3
    np.testing.assert_array_equal(counter_of(clip.frames[:43]), np.floor(np.arange(43) / 21.5 * 25 + 1e-6))


def test_decode_clip_cuts_long_clips_and_counts_unique_frames(tmp_path: Path) -> None:
    path = write_media(
        tmp_path / "long.mp4",
        frame_times=cfr_times(10, 40),
        rate=10,
        audio=clicks([0.5], 4.0, 16000),
        sample_rate=16000,
    )
    settings = small_settings(fps=25.0, sample_rate=16000, duration=3.0)
    clip = decode_clip(path, settings, frame_size=(16, 16))
    assert clip.frames.shape == (75, 16, 16, 3) and clip.audio.shape == (48000,)
    assert clip.source_duration == pytest.approx(3.0)
    # 10 fps shown at 25 fps: 30 distinct pictures, each repeated 2 or 3 times.
    assert len(clip.unique_indices) == 30, f"{clip.unique_indices=}"
    np.testing.assert_array_equal(clip.frames[clip.loop_index], clip.frames)
    assert (clip.loop_index <= np.arange(75)).all()


def test_decode_clip_zero_and_trim_modes(tmp_path: Path) -> None:
    sr = 22050
    path = write_media(
        tmp_path / "clip.mp4", frame_times=cfr_times(25, 50), audio=clicks([0.5], 2.0, sr), sample_rate=sr
    )
    clip = decode_clip(path, small_settings(pad_mode="zero"))
    assert not clip.frames[43:].any() and clip.frames[:43].any()
    assert not clip.audio[44100:].any() and clip.audio[:44100].any()
    assert (clip.loop_index[43:] == 43).all()
    with pytest.raises(MediaError) as err:
        decode_clip(path, small_settings(pad_mode="trim"))
    assert err.value.reason == "too_short"
    clip = decode_clip(path, small_settings(pad_mode="trim", duration=1.5))
    assert clip.frames.shape[0] == round(1.5 * 21.5) and clip.audio.shape == (round(1.5 * sr),)


def test_no_audio_stream(tmp_path: Path) -> None:
    path = write_media(tmp_path / "silent_film.mp4", frame_times=cfr_times(25, 25))
    info = probe(path)
    assert info.has_video and not info.has_audio and info.audio_codec is None
    for call in (lambda: read_audio(path, sample_rate=16000), lambda: decode_clip(path, small_settings())):
        with pytest.raises(MediaError) as err:
            call()
        assert err.value.reason == "no_audio_stream", err.value
        assert str(path) in str(err.value)
    clip = decode_clip(path, small_settings(), require_audio=False)
    assert clip.audio.shape == (small_settings().num_samples,) and not clip.audio.any()
    assert clip.frames.shape[0] == small_settings().num_frames


def test_no_video_stream(tmp_path: Path) -> None:
    audio = clicks([0.1], 1.0, 16000)
    path = write_media(
        tmp_path / "audio.wav", audio=audio, sample_rate=16000, audio_codec="pcm_s16le", video=False
    )
    for call in (lambda: read_frames(path, fps=10.0), lambda: decode_clip(path, small_settings())):
        with pytest.raises(MediaError) as err:
            call()
        assert err.value.reason == "no_video_stream"


def test_silent_audio(tmp_path: Path) -> None:
    path = write_media(tmp_path / "mute.mp4", frame_times=cfr_times(25, 25), audio=np.zeros((1, 44100)))
    with pytest.raises(MediaError) as err:
        decode_clip(path, small_settings())
    assert err.value.reason == "silent_audio"
    assert decode_clip(path, small_settings(), require_audio=False).audio.shape == (110250,)


# ---------------------------------------------------------------------------------------------------------
# Bad files


def expect_error(path: Path, reason: str) -> None:
    for call in (
        lambda: probe(path),
        lambda: decode_clip(path, small_settings()),
        lambda: read_audio(path, sample_rate=16000),
        lambda: read_frames(path, fps=10.0),
    ):
        with pytest.raises(MediaError) as err:
            call()
        assert err.value.reason == reason, f"{err.value!r}"
        assert err.value.path == str(path) and str(path) in str(err.value)


def test_zero_length_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()
    expect_error(path, "zero_length")


def test_text_file_renamed_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is a text file, not a video\n" * 50)
    expect_error(path, "corrupt")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    expect_error(path, "corrupt")


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nowhere.mp4", "unreadable")


def test_truncated_files(tmp_path: Path) -> None:
    audio = clicks([0.5], 2.0, 44100)
    # Index at the end (the default): the cut removes it and FFmpeg cannot open the file.
    full = write_media(tmp_path / "full.mp4", frame_times=cfr_times(25, 50), audio=audio)
    cut = tmp_path / "cut_index_last.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    expect_error(cut, "corrupt")
    # Index first (faststart): the file opens, but most frames are gone.
    fast = write_media(
        tmp_path / "fast.mp4", frame_times=cfr_times(25, 50), audio=audio, options={"movflags": "faststart"}
    )
    cut = tmp_path / "cut_index_first.mp4"
    cut.write_bytes(fast.read_bytes()[: fast.stat().st_size // 2])
    assert probe(cut).num_frames == 50
    for call in (lambda: decode_clip(cut, small_settings()), lambda: read_frames(cut, fps=10.0)):
        with pytest.raises(MediaError) as err:
            call()
        assert err.value.reason == "corrupt", f"{err.value!r}"


def test_media_error_is_picklable() -> None:
    err = MediaError("/data/a.mp4", "corrupt", "moov atom not found")
    back = pickle.loads(pickle.dumps(err))
    assert (back.path, back.reason, back.detail, str(back)) == (err.path, err.reason, err.detail, str(err))
    assert "/data/a.mp4" in str(err) and "corrupt" in str(err)


# ---------------------------------------------------------------------------------------------------------
# The twelve real clips


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_probe_real_clips(name: str) -> None:
    info = probe(real_clip(name))
    vcodec, acodec, (w, h), channels = REAL_CLIPS[name]
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.audio_codec, info.width, info.height, info.channels) == (
        vcodec,
        acodec,
        w,
        h,
        channels,
    ), f"{info=}"
    assert 14 < info.fps < 31 and info.num_frames > 30
    assert 1.0 < info.video_duration < 15 and 1.0 < info.audio_duration < 15


@pytest.mark.slow
@pytest.mark.parametrize("settings", [REGNET, ZHOU], ids=["regnet", "zhou"])
@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_decode_real_clips(name: str, settings: DataSettings) -> None:
    path = real_clip(name)
    info = probe(path)
    clip = decode_clip(path, settings, frame_size=SMALL)
    expected = {"regnet": (215, 220500), "zhou": (156, 160000)}[settings.name]
    assert clip.frames.shape == (expected[0], *SMALL, 3) and clip.frames.dtype == np.uint8, (
        f"{clip.frames.shape=}"
    )
    assert clip.audio.shape == (expected[1],) and clip.audio.dtype == np.float32, f"{clip.audio.shape=}"
    assert np.isfinite(clip.audio).all() and np.abs(clip.audio).max() <= 1.5
    assert clip.frames.std() > 1.0, "frames look blank"
    content = min(settings.duration, info.video_duration, info.audio_duration)
    assert clip.source_duration == pytest.approx(content, abs=0.05)
    level = rms_dbfs(clip.audio)
    assert level > SILENCE_DBFS
    if name == "dog_quiet_1080p.mp4":
        assert -45 < level < -37, f"the quiet clip is about -41 dBFS, got {level:.1f}"
    np.testing.assert_array_equal(clip.frames[clip.loop_index], clip.frames)
    unit = int(np.ceil(clip.source_duration * settings.fps - 1e-6))
    if unit < expected[0]:  # looped: each stream repeats with the same period
        period = round(unit * settings.sample_rate / settings.fps)
        np.testing.assert_array_equal(
            clip.frames[unit : 2 * unit], clip.frames[: min(unit, expected[0] - unit)]
        )
        reps = min(period, expected[1] - period)
        np.testing.assert_array_equal(clip.audio[period : period + reps], clip.audio[:reps])


@pytest.mark.parametrize("degrees", [90, 270])
def test_rotation_is_applied_the_same_by_decord_and_pyav(tmp_path, degrees):
    path = tmp_path / "phone.mp4"
    spec = _Spec(fps=10.0, size=(64, 32), duration=1.0, sample_rate=16000, channels=1)
    write_corpus_media(path, spec, np.random.default_rng(degrees), video_codec="libx264")
    rotate_mp4(path, degrees)
    by_decord = read_frames(path, fps=10.0, size=None, backend="decord")
    by_pyav = read_frames(path, fps=10.0, size=None, backend="pyav")
    assert by_decord.shape == by_pyav.shape == (10, 64, 32, 3)  # displayed upright: taller than wide
    assert np.array_equal(by_decord, by_pyav)
    small = [read_frames(path, fps=10.0, size=(16, 8), backend=b) for b in ("decord", "pyav")]
    assert np.array_equal(*small)
