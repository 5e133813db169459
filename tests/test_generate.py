"""`v2s generate`: windows and cross-fades (library), then the command on real clips with small trained-model
packages built here (REGNET and VarietySound debug generators, a SampleRNN debug model, a seq2seq SampleRNN
debug model on per-second features, a debug HiFi-GAN vocoder package), all on 256-d random-projection features
at 32 x 32 pixels. Output quality is not the point: lengths, copied packets, durations, seams, errors are."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from v2s_models.audio import dequantize_linear
from v2s_models.config import instantiate
from v2s_models.generation import generate_sound
from v2s_models.interface import ModelInputs
from v2s_models.package import load_package, save_package
from v2s_models.settings import REGNET, DataSettings
from v2s_models.vocoding import vocode
from v2s_models.windows import crossfade, plan_windows, window_weights

FEATURES = {
    "extractor": "random_projection",  # 128-d; appearance + motion = 256-d
    "image_size": 32,
    "flow": "dis",
    "flow_bound": 20.0,
    "visual_part": "all",
}
VISUAL_DIM = 256
WINDOW, OVERLAP = 215, 43  # REGNET: 10 s at 21.5 fps, 2 s


# ---------------------------------------------------------------------------------------------------------
# Windows and cross-fades


@pytest.mark.parametrize("total", [1, 100, 215, 216, 301, 430, 431, 560, 1000, 5000])
def test_plan_windows_cover_the_input_with_seams_inside_overlaps(total: int) -> None:
    plan = plan_windows(total, WINDOW, OVERLAP)
    assert plan.starts[0] == 0
    if total <= WINDOW:
        assert plan.starts == (0,) and plan.seams == ()
        return
    assert plan.starts[-1] + WINDOW == total, f"{plan=}"
    assert plan.fade == OVERLAP, f"{plan=}"
    hops = np.diff(plan.starts)
    assert hops.max() <= WINDOW - OVERLAP + 1, f"{plan=}"
    for i, (lo, hi) in enumerate(plan.seams):
        assert hi - lo == plan.fade
        assert plan.starts[i + 1] <= lo and hi <= plan.starts[i] + WINDOW, (
            f"seam {i} outside the overlap: {plan=}"
        )
        if i:
            assert plan.seams[i - 1][1] <= lo, f"seams touch: {plan=}"


@pytest.mark.parametrize("curve", ["linear", "equal_power"])
def test_window_weights_are_a_partition_of_unity(curve: str) -> None:
    plan = plan_windows(1000, WINDOW, OVERLAP)
    w = window_weights(plan, curve)  # (N, window)
    total = np.zeros(plan.total)
    for i, s in enumerate(plan.starts):
        total[s : s + WINDOW] += w[i] if curve == "linear" else w[i] ** 2
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    # inside a seam both windows contribute; elsewhere exactly one does
    owners = np.zeros(plan.total, int)
    for i, s in enumerate(plan.starts):
        owners[s : s + WINDOW] += w[i] > 0
    in_seam = np.zeros(plan.total, bool)
    for lo, hi in plan.seams:
        in_seam[lo:hi] = True
    assert np.all(owners[in_seam] == 2) and np.all(owners[~in_seam] == 1)


class _FrameWiseMel(nn.Module):
    """A mel generator (a `SoundModel`) whose output is a known function of each frame:
    mel[:, m, 4t + k] = tanh(v[t, m] + k)."""

    def __init__(self, visual_dim: int = 16) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))  # gives the module a device
        self.visual_dim = visual_dim
        self.seen: list[torch.Tensor] = []

    def model_inputs(self) -> ModelInputs:
        return ModelInputs(visual_dim=self.visual_dim, n_mels=8, mel_frames_per_step=4)

    def start_video(self, *, generator, reference_mel=None, temperature=1.0) -> None:  # noqa: ANN001
        return None

    def generate_windows(self, windows, context, *, num_samples=None):  # noqa: ANN001, ANN201
        return self.generate(windows)

    def generate(self, visual: torch.Tensor) -> torch.Tensor:
        self.seen.append(visual.clone())
        b, t, _ = visual.shape
        mel = torch.tanh(visual[:, :, :8].transpose(1, 2)[..., None] + torch.arange(4.0))  # (B, 8, T, 4)
        return mel.reshape(b, 8, 4 * t)


class _WindowConstantMel(_FrameWiseMel):
    """Every window's mel is one constant: the window's mean of feature 0 (a different value per window)."""

    def generate(self, visual: torch.Tensor) -> torch.Tensor:
        b, t, _ = visual.shape
        return visual[:, :, 0].mean(dim=1)[:, None, None].expand(b, 8, 4 * t).clone()


def test_long_input_windows_are_aligned_exactly() -> None:
    """A frame-wise generator gives, through overlapping windows and linear cross-fades, exactly what it gives on
    the whole input at once: any off-by-one in window placement or mel scaling would show."""
    torch.manual_seed(0)
    visual = torch.randn(700, 16)
    gen = _FrameWiseMel()
    mel = generate_sound(gen, visual, window=WINDOW, overlap=OVERLAP, seed=0)
    assert mel.shape == (8, 4 * 700), f"{mel.shape=}"
    assert len(gen.seen) == 1 and gen.seen[0].shape == (4, WINDOW, 16), "windows are generated as one batch"
    whole = _FrameWiseMel().generate(visual[None])[0]
    torch.testing.assert_close(mel, whole, atol=1e-6, rtol=0)


def test_seams_are_smooth_when_windows_disagree() -> None:
    """Windows whose outputs differ (a constant per window) are joined by ramps, not steps: the largest change
    between neighbouring mel frames is the windows' difference spread over the fade."""
    visual = torch.linspace(0, 1, 700)[:, None].expand(700, 4).contiguous()  # feature 0 rises with time
    mel = generate_sound(_WindowConstantMel(visual_dim=4), visual, window=WINDOW, overlap=OVERLAP, seed=0)[0]
    plan = plan_windows(700, WINDOW, OVERLAP)
    levels = [float(visual[s : s + WINDOW, 0].mean()) for s in plan.starts]
    jumps = np.abs(np.diff(levels))
    steps = torch.diff(mel).abs()
    fade_mel = 4 * plan.fade
    assert float(steps.max()) <= jumps.max() / fade_mel * (1 + 1e-4), "a step larger than the ramp"
    assert float(steps.max()) < 0.05 * jumps.min(), "the seam is (nearly) a hard cut"
    for i, (lo, hi) in enumerate(plan.seams):  # the output goes from one window's level to the next's
        assert float(mel[4 * lo - 1]) == pytest.approx(levels[i], abs=1e-6)
        assert float(mel[4 * hi]) == pytest.approx(levels[i + 1], abs=1e-6)


def test_short_input_is_looped_to_one_window_and_trimmed() -> None:
    visual = torch.arange(30.0)[:, None].expand(30, 16).contiguous()
    gen = _FrameWiseMel()
    mel = generate_sound(gen, visual, window=WINDOW, overlap=OVERLAP, seed=0, pad_mode="loop")
    assert mel.shape == (8, 120), f"{mel.shape=}"
    (seen,) = gen.seen
    assert seen.shape == (1, WINDOW, 16)
    torch.testing.assert_close(seen[0, :, 0], torch.arange(WINDOW) % 30 * 1.0)
    gen = _FrameWiseMel()
    generate_sound(gen, visual, window=WINDOW, overlap=OVERLAP, seed=0, pad_mode="zero")
    assert float(gen.seen[0][0, 30:].abs().max()) == 0.0


def test_chunked_vocoding_equals_one_pass() -> None:
    """Past the chunk length the mel is vocoded in overlapping chunks; for a frame-wise vocoder the linear
    cross-fade reproduces the one-pass waveform."""

    def frame_wise(mel: torch.Tensor) -> np.ndarray:
        return np.repeat(mel.mean(dim=0).numpy(), 4).astype(np.float32)

    mel = torch.rand(8, 350)
    whole = frame_wise(mel)
    chunked = vocode(frame_wise, mel, hop=4, chunk=100, overlap=20, curve="linear")
    assert chunked.shape == whole.shape
    np.testing.assert_allclose(chunked, whole, atol=1e-6)


def test_autoregressive_windows_are_sampled_only_as_far_as_used() -> None:
    calls: list[tuple[int, int]] = []

    class Stub(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.anchor = nn.Parameter(torch.zeros(1))

        def model_inputs(self) -> ModelInputs:
            return ModelInputs(visual_dim=4, output="waveform")

        def start_video(self, *, generator, reference_mel=None, temperature=1.0):  # noqa: ANN001, ANN202
            return generator

        def generate_windows(self, visual, context, *, num_samples=None):  # noqa: ANN001, ANN202
            calls.append((visual.shape[0], num_samples))
            level = (visual[:, :, 0].mean(dim=1) * 100 + 100).long()  # one quantised level per window
            q = level[:, None].expand(-1, num_samples)
            return torch.from_numpy(dequantize_linear(q.numpy(), 256))

    # short: one window, only the input's own samples are drawn
    wav = generate_sound(
        Stub(), torch.zeros(20, 4), window=156, overlap=31, samples_per_frame=100.0, num_samples=1990, seed=0
    )
    assert wav.shape == (1990,) and calls == [(1, 1990)]
    # long: windows batched, each drawn up to the end of its right seam; equal-power fades
    calls.clear()
    visual = torch.linspace(0, 1, 400)[:, None].expand(400, 4).contiguous()
    wav = generate_sound(
        Stub(),
        visual,
        window=156,
        overlap=31,
        samples_per_frame=100.0,
        num_samples=40000,
        seed=0,
        batch_size=2,
    )
    plan = plan_windows(400, 156, 31)
    assert wav.shape == (40000,)
    assert [b for b, _ in calls] == [2, plan.num_windows - 2]
    assert all(n < 15600 for _, n in calls[:1]), f"{calls=}: windows drawn past their last used sample"
    assert float(torch.diff(wav).abs().max()) < 0.01


def test_crossfade_rejects_a_wrong_number_of_chunks() -> None:
    plan = plan_windows(500, WINDOW, OVERLAP)
    with pytest.raises(AssertionError):
        crossfade(torch.zeros(plan.num_windows + 1, 1, WINDOW), plan)


# ---------------------------------------------------------------------------------------------------------
# The command on real clips


def _save(out: Path, paradigm: str, component: dict, settings: DataSettings = REGNET, **kw: Any) -> Path:
    cfg = {"name": out.name, "paradigm": paradigm, "model": {"generator": component}}
    torch.manual_seed(0)
    module = instantiate(component)
    features = kw.pop("features", FEATURES)
    return save_package(
        out,
        paradigm=paradigm,
        config=cfg,
        data_settings=settings,
        features=features,
        modules={"generator": module},
        **kw,
    )


DEBUG_REGNET = {
    "_component_": "v2s_models.builders.regnet_generator",
    "preset": "debug",
    "visual_dim": VISUAL_DIM,
    "n_mels": 80,
    "num_frames": 215,
    "mel_frames": 860,
}


def save_debug_regnet(out: Path) -> Path:
    """A REGNET debug generator package on random-projection features (also the corpus test's model)."""
    return _save(out, "gan_mel", DEBUG_REGNET)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("packages")
    regnet = DEBUG_REGNET
    return SimpleNamespace(
        regnet=save_debug_regnet(root / "regnet"),
        wrong_dim=_save(root / "wrong_dim", "gan_mel", {**regnet, "visual_dim": 100}),
        varietysound=_save(
            root / "varietysound",
            "gan_mel",
            {
                "_component_": "v2s_models.builders.varietysound_generator",
                "preset": "debug",
                "video_dim": VISUAL_DIM,
                "n_mels": 80,
            },
        ),
        # 4 kHz keeps the sample-by-sample generation short; AAC cannot carry 4 kHz, so the muxer resamples
        samplernn=_save(
            root / "samplernn",
            "autoregressive",
            {"_component_": "v2s_models.builders.zhou", "preset": "seq_debug", "visual_dim": VISUAL_DIM},
            settings=DataSettings(name="zhou_test", fps=15.6, sample_rate=4000),
        ),
        # the seq2seq SampleRNN reads per-second appearance features: the extractor's 128-d
        seq2seq=_save(
            root / "seq2seq",
            "autoregressive",
            {"_component_": "v2s_models.builders.seq2seq", "preset": "debug", "video_dim": VISUAL_DIM // 2},
            settings=DataSettings(name="zhou_test", fps=15.6, sample_rate=4000),
        ),
        vocoder=_save(
            root / "vocoder",
            "vocoder",
            {"_component_": "v2s_models.vocoders.hifigan.hifigan_debug"},
            features={},
            extra={"convention": "regnet"},
        ),
    )


def _run(*argv: str | Path) -> int:
    from v2s_models.cli import main

    return main([str(a) for a in argv])


def _video_packets(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


def _streams(path: Path) -> dict[str, dict]:
    import av

    with av.open(str(path)) as c:
        return {
            s.type: {
                "codec": s.codec_context.name,
                "duration": float(s.duration * s.time_base) if s.duration else None,
                "rate": s.average_rate if s.type == "video" else s.codec_context.sample_rate,
            }
            for s in c.streams
            if s.type in ("video", "audio")
        }


def _check_output(video_in: Path, out: Path, *, copied: bool) -> dict[str, dict]:
    """Both streams present; the sound lasts as long as the picture within one frame of the input; the picture's
    packets are the input's, byte for byte, where copied."""
    streams = _streams(out)
    assert set(streams) == {"video", "audio"}, streams
    assert streams["audio"]["codec"] == "aac"
    frame = 1.0 / float(_streams(video_in)["video"]["rate"])
    assert abs(streams["audio"]["duration"] - streams["video"]["duration"]) <= frame, streams
    if copied:
        assert _video_packets(out) == _video_packets(video_in)
    else:
        assert streams["video"]["codec"] == "h264"
        assert len(_video_packets(out)) == len(_video_packets(video_in))
    assert out.with_suffix(".wav").is_file()
    return streams


def _wav(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="float32")
    return x, sr


@pytest.mark.slow
def test_long_h264_clip_copies_packets_and_fills_its_length(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = real_media / "airplane_flyover.mp4"  # 11.2 s: two overlapping windows
    out = tmp_path / "airplane.mp4"
    assert (
        _run("generate", clip, "--model", packages.regnet, "--vocoder", packages.vocoder, "--out", out) == 0
    )
    err = capsys.readouterr().err
    assert "2 window(s)" in err and "video copied" in err, err
    _check_output(clip, out, copied=True)
    wav, sr = _wav(out.with_suffix(".wav"))
    assert sr == 22050 and wav.shape == (round(11.2 * 22050),)
    assert np.all(np.isfinite(wav)) and wav.std() > 0


@pytest.mark.slow
def test_mjpeg_clip_copies_into_mov_and_is_reencoded_into_mp4(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = real_media / "diver_mjpeg_mp2.mov"  # 14 s, MJPEG: mov holds it, mp4 (for players) does not
    wavs = []
    # two stems: each output writes OUT.wav beside it, and an existing one is never replaced without --overwrite
    for out, copied in ((tmp_path / "diver_copied.mov", True), (tmp_path / "diver_reencoded.mp4", False)):
        args = ("generate", clip, "--model", packages.regnet, "--vocoder", packages.vocoder, "--out", out)
        assert _run(*args) == 0
        err = capsys.readouterr().err
        assert ("re-encoded to H.264" in err) is (not copied), err
        streams = _check_output(clip, out, copied=copied)
        assert streams["video"]["duration"] == pytest.approx(14.04, abs=0.05)
        wavs.append(_wav(out.with_suffix(".wav"))[0])
    assert wavs[0].shape == (round(14.04 * 22050),)
    assert np.array_equal(*wavs), "the same seed must give the same sound"


@pytest.mark.slow
def test_short_clip_with_griffin_lim_is_trimmed_and_seeded(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path
) -> None:
    clip = real_media / "dog_quiet_1080p.mp4"  # 1.52 s of picture (its sound is longer): one looped window
    outs = {}
    for name, seed in (("a", 0), ("c", 1)):
        out = tmp_path / f"{name}.mp4"
        assert _run("generate", clip, "--model", packages.regnet, "--out", out, "--seed", seed) == 0
        streams = _check_output(clip, out, copied=True)
        outs[name], sr = _wav(out.with_suffix(".wav"))
    assert outs["a"].shape == (round(streams["video"]["duration"] * sr),)
    assert not np.array_equal(outs["a"], outs["c"]), "another seed must give another sound"


@pytest.mark.slow
def test_folder_input_writes_one_video_per_file(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    (src / "dog.mp4").symlink_to(real_media / "dog_quiet_1080p.mp4")
    (src / "sub" / "webcam.avi").symlink_to(real_media / "webcam_talk_mjpeg_u8.avi")
    (src / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    assert _run("generate", src, "--model", packages.regnet, "--vocoder", packages.vocoder, "--out", out) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4")) == ["dog.mp4", "sub/webcam.mp4"]
    _check_output(real_media / "dog_quiet_1080p.mp4", out / "dog.mp4", copied=True)
    _check_output(real_media / "webcam_talk_mjpeg_u8.avi", out / "sub" / "webcam.mp4", copied=False)


@pytest.mark.slow
def test_corrupt_input_fails_clearly_and_writes_nothing(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "truncated.mp4"
    data = (real_media / "airplane_flyover.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    garbage = tmp_path / "garbage.mov"
    garbage.write_bytes(np.random.default_rng(0).bytes(50_000))
    for bad in (truncated, garbage):
        out = tmp_path / "out" / f"{bad.stem}.mp4"
        assert _run("generate", bad, "--model", packages.regnet, "--out", out) == 1
        err = capsys.readouterr().err
        assert str(bad) in err and "corrupt" in err, err
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_bad_model_references_fail_clearly(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = real_media / "dog_quiet_1080p.mp4"
    out = tmp_path / "x.mp4"
    cases = [
        (("--model", tmp_path / "no_such_model"), "no_such_model"),
        (("--model", packages.wrong_dim), "100-d visual features"),
        (("--model", packages.varietysound), "--reference"),
        (("--model", packages.samplernn, "--device", "cuda"), "cuda")
        if not torch.cuda.is_available()
        else None,
    ]
    for case in filter(None, cases):
        args, needle = case
        assert _run("generate", clip, *args, "--out", out) == 2
        err = capsys.readouterr().err
        assert needle in err, err
        assert not out.exists() and not out.with_suffix(".wav").exists()


@pytest.mark.slow
def test_varietysound_takes_its_timbre_from_a_reference(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path
) -> None:
    clip = real_media / "dog_quiet_1080p.mp4"
    wavs = []
    for reference in ("dog_barking.mp4", "hitting_metal.mp4"):
        out = tmp_path / f"{reference}.mp4"
        # Griffin-Lim: the untrained debug HiFi-GAN maps every mel to nearly the same waveform
        args = ("--reference", real_media / reference, "--out", out)
        assert _run("generate", clip, "--model", packages.varietysound, *args) == 0
        _check_output(clip, out, copied=True)
        wavs.append(_wav(out.with_suffix(".wav"))[0])
    assert not np.array_equal(*wavs), "another reference must change the sound"


@pytest.mark.slow
def test_samplernn_generates_a_waveform_for_a_short_clip(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path
) -> None:
    clip = real_media / "dog_quiet_1080p.mp4"
    out = tmp_path / "srnn.mp4"
    assert _run("generate", clip, "--model", packages.samplernn, "--out", out) == 0
    streams = _check_output(clip, out, copied=True)
    assert streams["audio"]["rate"] == 7350  # 4 kHz is resampled to the next rate AAC signals
    wav, sr = _wav(out.with_suffix(".wav"))
    assert sr == 4000 and wav.shape == (round(streams["video"]["duration"] * 4000),)
    assert wav.std() > 0


@pytest.mark.slow
@pytest.mark.parametrize(("name", "windows"), [("dog_quiet_1080p.mp4", 1), ("airplane_flyover.mp4", 2)])
def test_seq2seq_generates_a_waveform_as_long_as_the_video(
    real_media: Path,
    packages: SimpleNamespace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    windows: int,
) -> None:
    """A per-second model (the seq2seq SampleRNN) reads one appearance row per second, 10 a window: the 1.52 s
    clip is one looped window, the 11.2 s one two windows overlapping by 2 s; the waveform covers the picture."""
    clip = real_media / name
    out = tmp_path / "seq2seq.mp4"
    assert _run("generate", clip, "--model", packages.seq2seq, "--out", out) == 0
    err = capsys.readouterr().err
    assert f"{windows} window(s)" in err, err
    streams = _check_output(clip, out, copied=True)
    wav, sr = _wav(out.with_suffix(".wav"))
    assert sr == 4000 and wav.shape == (round(streams["video"]["duration"] * 4000),)
    assert wav.std() > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dog_quiet_1080p.mp4", "airplane_flyover.mp4"])
def test_per_second_features_are_the_data_stages(
    real_media: Path, packages: SimpleNamespace, name: str
) -> None:
    """`v2s generate`'s per-second input is what the features stage writes to persecond/<clip>/appearance.npy
    for the clip's 10 s window (same frames, same extractor), with one row per second of the whole video."""
    from dataprep.features import compute_per_second
    from v2s_models.video_to_sound import VideoToSound

    clip = real_media / name
    v2s = VideoToSound(package=load_package(packages.seq2seq))
    feats = v2s.video_features(clip)
    stage = compute_per_second(
        clip, np.zeros(REGNET.num_samples, np.float32), REGNET, FEATURES, v2s.extractor
    )
    seconds = int(np.ceil(feats.duration - 1e-6))
    assert feats.num_frames == seconds, f"{feats.num_frames=} {feats.duration=}"
    assert feats.visual.shape == (max(seconds, 10), VISUAL_DIM // 2), f"{feats.visual.shape=}"
    assert feats.visual.dtype == np.float32
    np.testing.assert_array_equal(feats.visual[:10], stage["appearance"])


def test_unsupported_output_container_is_refused(
    packages: SimpleNamespace, real_media: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.webm"
    assert _run("generate", real_media / "dog_quiet_1080p.mp4", "--model", packages.regnet, "--out", out) == 2
    assert "unsupported output container" in capsys.readouterr().err
    assert not out.exists()


def test_help_lists_generate() -> None:
    from v2s_models.cli import build_parser

    assert "generate" in build_parser().format_help()


@pytest.mark.slow
def test_output_never_replaces_the_input_or_an_existing_file_and_follows_the_umask(
    real_media: Path, packages: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in" / "dog.mp4"
    src.parent.mkdir()
    src.write_bytes((real_media / "dog_quiet_1080p.mp4").read_bytes())
    (tmp_path / "link.mp4").symlink_to(src)
    original = src.read_bytes()
    # the input itself, through another spelling, through a link, and through a hard link
    os.link(src, tmp_path / "hard.mp4")
    for out in (src, tmp_path / "in" / ".." / "in" / "dog.mp4", tmp_path / "link.mp4", tmp_path / "hard.mp4"):
        assert _run("generate", src, "--model", packages.regnet, "--out", out, "--overwrite") == 2
        assert "would replace the input" in capsys.readouterr().err
    assert src.read_bytes() == original

    out = tmp_path / "out" / "dog.mp4"
    out.parent.mkdir()
    stale = out.parent / ".dog.mp4.abc123.part"  # what a killed run leaves (v2s_models.io.atomic_path)
    stale.write_bytes(b"half a file")
    old_mask = os.umask(0o002)
    try:
        assert _run("generate", src, "--model", packages.regnet, "--out", out) == 0
    finally:
        os.umask(old_mask)
    assert not stale.exists(), "the next run cleans the partial file"
    assert not list(out.parent.glob("*.part"))
    for written in (out, out.with_suffix(".wav")):
        assert written.stat().st_mode & 0o777 == 0o664, oct(written.stat().st_mode)
    first = out.read_bytes()
    capsys.readouterr()
    assert _run("generate", src, "--model", packages.regnet, "--out", out, "--seed", "1") == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_bytes() == first
    assert _run("generate", src, "--model", packages.regnet, "--out", out, "--seed", "1", "--overwrite") == 0
    assert out.read_bytes() != first
