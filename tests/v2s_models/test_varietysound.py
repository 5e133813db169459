"""Tests for VarietySound (v2s_models/varietysound.py, modules/sgau.py, modules/fft_block.py)."""

from __future__ import annotations

import pytest
import torch

from v2s_models.modules.fft_block import FFTBlock, sinusoidal_table
from v2s_models.modules.sgau import (
    ResampleSpec,
    SelfGatedAcousticUnit,
    apply_resample,
    random_resample,
    resample_positions,
)
from v2s_models.varietysound import (
    DEBUG_N_MELS,
    DEBUG_VIDEO_DIM,
    build_varietysound,
    varietysound_debug,
    varietysound_paper,
)
from v2s_models.varietysound_discriminators import (
    build_mel_discriminator,
    build_tdad,
    mel_discriminator_debug,
    mel_discriminator_paper,
    tdad_debug,
    tdad_paper,
    time_shift,
)
from v2s_models.varietysound_encoders import energy_mask
from v2s_models.varietysound_losses import (
    PAPER_LOSS_WEIGHTS,
    event_shape_l1_loss,
    generator_loss,
    mel_discriminator_loss,
    mel_l1_loss,
    mel_peak_l1_loss,
    tdad_loss,
)

T_DEBUG = 16  # video frames in debug tests -> 64 mel frames


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _debug_batch(batch: int = 2, t: int = T_DEBUG, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    return torch.randn(batch, t, DEBUG_VIDEO_DIM, generator=g), torch.rand(
        batch, DEBUG_N_MELS, 4 * t, generator=g
    )


def _synthetic_events(
    n: int, *, t: int = T_DEBUG, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Aligned synthetic pairs: sound events at random video frames, each 4 mel frames long.

    Video: a fixed direction where an event happens, plus noise. Mel: background 0.1 plus a Gaussian spectral
    bump (a per-clip "timbre": its centre bin) during the event's mel frames.
    """
    events = (torch.rand(n, t, generator=generator) < 0.25).float()
    direction = torch.randn(DEBUG_VIDEO_DIM, generator=_gen(123))
    video = events[:, :, None] * direction + 0.1 * torch.randn(n, t, DEBUG_VIDEO_DIM, generator=generator)
    bins = torch.arange(DEBUG_N_MELS).float()
    centre = torch.randint(3, DEBUG_N_MELS - 3, (n,), generator=generator).float()
    envelope = torch.exp(-(((bins[None] - centre[:, None]) / 3.0) ** 2))  # (n, n_mels)
    activity = events.repeat_interleave(4, dim=1)  # (n, 4t)
    mel = 0.1 + 0.8 * envelope[:, :, None] * activity[:, None, :]
    return video, mel


# ----------------------------------------------------------------------------------------------------------
# Paper sizes


@pytest.fixture(scope="module")
def paper_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return varietysound_paper().eval()


def test_paper_shapes_video_215x2048_to_mel_80x860(paper_generator: torch.nn.Module) -> None:
    torch.set_num_threads(1)
    video = torch.randn(1, 215, 2048)
    mel = torch.rand(1, 80, 860)
    with torch.no_grad():
        parts = paper_generator.encode(video, mel, mel, generator=_gen(0))
        assert parts["temporal"].shape == (1, 215, 8), f"{parts['temporal'].shape=}"
        assert parts["timbre"].shape == (1, 215, 512), f"{parts['timbre'].shape=}"
        assert parts["background"].shape == (1, 215, 8), f"{parts['background'].shape=}"
        out = paper_generator.decode(parts)
        assert out.shape == (1, 80, 860), f"{out.shape=}"
        assert torch.isfinite(out).all()
        scores = tdad_paper().eval()(out, video)
        assert scores.dim() == 2 and scores.shape[0] == 1, f"{scores.shape=}"
        assert ((scores > 0) & (scores < 1)).all(), "TDAD output must be a sigmoid"
        windows = mel_discriminator_paper().eval()(out, generator=_gen(0))
        assert [s.shape for s in windows] == [(1, 1)] * 3, f"{[s.shape for s in windows]=}"


def test_paper_sizes_follow_table3(paper_generator: torch.nn.Module) -> None:
    g = paper_generator
    convs = [m for m in g.temporal_encoder.convs if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 8 and all(c.out_channels == 512 and c.kernel_size == (5,) for c in convs)
    assert convs[0].in_channels == 2048
    lstm = g.temporal_encoder.lstm
    assert (lstm.num_layers, lstm.hidden_size, lstm.bidirectional) == (2, 256, True)
    assert g.temporal_encoder.bottleneck.out_features == 8
    units = g.acoustic_encoder.units
    assert len(units) == 5
    unit = units[1]
    k1, k2 = (m for m in unit.input_gate if isinstance(m, torch.nn.Conv1d))
    assert (k1.kernel_size, k2.kernel_size, k1.out_channels, k2.out_channels) == ((5,), (7,), 512, 512)
    assert isinstance(unit.input_gate[-1], torch.nn.InstanceNorm1d)
    assert unit.output_gate[0].kernel_size == (3,) and isinstance(unit.output_gate[1], torch.nn.GroupNorm)
    assert unit.skip_gate[0].kernel_size == (5,) and isinstance(unit.skip_gate[1], torch.nn.GroupNorm)
    assert units[0].in_channels == 80
    assert (g.acoustic_encoder.lstm.num_layers, g.acoustic_encoder.lstm.hidden_size) == (2, 256)
    assert (g.background_encoder.lstm.num_layers, g.background_encoder.lstm.hidden_size) == (2, 128)
    ups = [m for m in g.decoder.upsample if isinstance(m, torch.nn.ConvTranspose1d)]
    assert [(u.kernel_size, u.stride, u.out_channels) for u in ups] == [((4,), (2,), 1024)] * 2
    assert len(g.decoder.blocks) == 4
    block = g.decoder.blocks[0]
    assert (block.attention.dim, block.attention.heads) == (512, 2)
    assert (block.conv1.kernel_size, block.conv1.out_channels) == ((9,), 512)
    assert g.decoder.out_proj.out_features == 80
    d = tdad_paper()
    d_ups = [m for m in d.video_upsample if isinstance(m, torch.nn.ConvTranspose1d)]
    assert [(u.kernel_size, u.stride, u.out_channels) for u in d_ups] == [((4,), (2,), 1024)] * 2
    d_convs = [m for m in d.convs if isinstance(m, torch.nn.Conv1d)]
    assert len(d_convs) == 4 and all(c.kernel_size == (4,) for c in d_convs)
    assert [c.out_channels for c in d_convs] == [512, 512, 512, 1]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in d.convs) == 3, "BN on all but the last conv"
    assert PAPER_LOSS_WEIGHTS == {"mel": 10000.0, "adv": 1.0}


# ----------------------------------------------------------------------------------------------------------
# Training behaviour (debug sizes)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    g, d_t, d_m = varietysound_debug(use_background=True), tdad_debug(), mel_discriminator_debug()
    video, mel = _debug_batch(batch=3)
    fake = g(video, mel, mel, generator=_gen(1))
    starts = d_m.sample_starts(3, mel.shape[2], generator=_gen(2))
    loss_g, _ = generator_loss(
        fake, mel, weights=PAPER_LOSS_WEIGHTS, tdad_fake=d_t(fake, video), mel_d_fake=d_m(fake, starts=starts)
    )
    g.zero_grad()
    loss_g.backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"generator parameter {name} got no gradient"

    shifted = time_shift(mel, min_shift=8, generator=_gen(3))
    loss_t, _ = tdad_loss(d_t(mel, video), d_t(fake.detach(), video), d_t(shifted, video))
    loss_m, _ = mel_discriminator_loss(d_m(mel, starts=starts), d_m(fake.detach(), starts=starts))
    d_t.zero_grad()
    d_m.zero_grad()
    (loss_t + loss_m).backward()
    for prefix, module in (("tdad", d_t), ("mel_d", d_m)):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{prefix} parameter {name} got no gradient"


def test_debug_generator_overfits_one_batch() -> None:
    torch.manual_seed(0)
    g = varietysound_debug()
    video, mel = _synthetic_events(2, t=8, generator=_gen(0))
    opt = torch.optim.Adam(g.parameters(), lr=5e-3)
    draws = _gen(1)  # resampling stays on: the timbre path must cope with a fresh draw every step
    losses = []
    for _ in range(150):
        loss = mel_l1_loss(g(video, mel, mel, generator=draws), mel)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    drop = 1.0 - min(losses[-10:]) / losses[0]
    assert drop >= 0.9, f"L1 only fell from {losses[0]:.4f} to {min(losses[-10:]):.4f} ({drop:.1%})"


def test_tdad_learns_to_score_shifted_real_mels_as_fake() -> None:
    torch.manual_seed(0)
    d = tdad_debug()
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    g = _gen(0)
    for _ in range(120):
        video, mel = _synthetic_events(16, generator=g)
        shifted = time_shift(mel, min_shift=8, generator=g)
        # Only the two real-data terms of eq. 4-6; the generated-mel negative needs a generator.
        loss = torch.mean((1.0 - d(mel, video)) ** 2) + torch.mean(d(shifted, video) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    d.eval()
    held_out = _gen(999)  # clips never seen in training
    video, mel = _synthetic_events(64, generator=held_out)
    shifted = time_shift(mel, min_shift=8, generator=held_out)
    with torch.no_grad():
        aligned_score = d(mel, video).mean(1)
        shifted_score = d(shifted, video).mean(1)
    assert aligned_score.mean() > shifted_score.mean() + 0.1, (
        f"{aligned_score.mean()=} {shifted_score.mean()=}"
    )
    accuracy = (aligned_score > shifted_score).float().mean()
    assert accuracy >= 0.85, f"aligned clip scored above its shifted copy in only {accuracy:.0%} of clips"


# ----------------------------------------------------------------------------------------------------------
# Random resampling and the acoustic path


def test_random_resample_without_stretch_permutes_whole_segments() -> None:
    spec = ResampleSpec(min_segment=4, max_segment=8, min_scale=1.0, max_scale=1.0)
    length = 64
    x = torch.arange(length, dtype=torch.float32).expand(3, 2, length).contiguous()
    out = random_resample(x, spec, generator=_gen(0))
    assert out.shape == x.shape, f"{out.shape=}"
    for row in out[:, 0]:
        assert torch.equal(row.sort().values, x[0, 0]), "without stretching every frame appears exactly once"
        # Runs of consecutive frames are whole source segments (or several that stay adjacent after the
        # shuffle), so at most one run (the segment trimmed at the clip's end) is shorter than min_segment.
        breaks = torch.nonzero(torch.diff(row) != 1).flatten()
        assert len(breaks) >= 1, "segments were not shuffled"
        runs = torch.diff(torch.cat([torch.tensor([-1]), breaks, torch.tensor([length - 1])]))
        assert int((runs < spec.min_segment).sum()) <= 1, f"segments were cut: run lengths {runs.tolist()}"
    assert torch.equal(out[:, 1], out[:, 0]), "all channels of a sample share one plan"
    assert not torch.equal(out[0, 0], out[1, 0]), "each sample draws its own plan"


def test_random_resample_is_deterministic_given_a_generator_and_stays_in_range() -> None:
    spec = ResampleSpec(min_segment=4, max_segment=8, min_scale=0.5, max_scale=1.5)
    x = torch.rand(2, 3, 50, generator=_gen(5))
    a = random_resample(x, spec, generator=_gen(7))
    b = random_resample(x, spec, generator=_gen(7))
    c = random_resample(x, spec, generator=_gen(8))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.shape == x.shape
    pos = resample_positions(4, 50, spec, generator=_gen(1))
    assert pos.shape == (4, 50) and pos.min() >= 0 and pos.max() <= 49
    lo, hi = x.amin(dim=2, keepdim=True), x.amax(dim=2, keepdim=True)
    assert ((a >= lo - 1e-6) & (a <= hi + 1e-6)).all(), "linear interpolation cannot leave the input's range"
    # A stretched segment repeats or skips frames: the output is no longer a permutation of the input.
    ramp = torch.arange(50, dtype=torch.float32).view(1, 1, 50)
    stretched = random_resample(ramp, spec, generator=_gen(3))
    assert not torch.equal(stretched.sort().values, ramp)


def test_sgau_applies_one_plan_to_both_outputs() -> None:
    torch.manual_seed(0)
    unit = SelfGatedAcousticUnit(in_channels=6, channels=8, groups=2)
    x = torch.randn(2, 6, 40)
    spec = ResampleSpec(min_segment=4, max_segment=8)
    plain_x, plain_c = unit(x, x)
    res_x, res_c = unit(x, x, spec=spec, generator=_gen(3))
    positions = resample_positions(2, 40, spec, generator=_gen(3))
    torch.testing.assert_close(res_x, apply_resample(plain_x, positions))
    torch.testing.assert_close(res_c, apply_resample(plain_c, positions))
    # eq. 8: x_o = tanh(s + v) * sigmoid(o + v) with s the skip-gate output (= c_o before R)
    v = unit.input_gate(x)
    torch.testing.assert_close(plain_x, torch.tanh(plain_c + v) * torch.sigmoid(unit.output_gate(x) + v))


def test_acoustic_path_is_invariant_to_segment_order() -> None:
    """The timbre vector (averaged over resampling draws) of a mel whose 8-frame segments are permuted matches
    the original's far more closely than a different mel's; without resampling the permutation changes it as
    much as a different mel does (so the invariance comes from R[.], not from the test data)."""
    torch.manual_seed(0)
    enc = varietysound_debug().eval().acoustic_encoder
    bins = torch.arange(DEBUG_N_MELS).float()
    ramp = torch.linspace(0.1, 1.0, 64)  # strongly non-stationary: loudness rises over the clip
    mel_a = (torch.exp(-(((bins - 5) / 3) ** 2))[:, None] * ramp[None, :]).unsqueeze(0)
    mel_b = (torch.exp(-(((bins - 14) / 3) ** 2))[:, None] * ramp.flip(0)[None, :]).unsqueeze(0)
    order = torch.randperm(8, generator=_gen(1))
    mel_p = mel_a.view(1, DEBUG_N_MELS, 8, 8)[:, :, order].reshape(1, DEBUG_N_MELS, 64)
    draws = 128  # one batch row per draw: every row gets its own resampling plan
    with torch.no_grad():
        t_a, t_p, t_b = (
            enc.timbre(m.expand(draws, -1, -1), generator=_gen(0)).mean(0) for m in (mel_a, mel_p, mel_b)
        )
        enc.resample = False
        u_a, u_p = enc.timbre(mel_a)[0], enc.timbre(mel_p)[0]
    permuted, different, unresampled = (t_a - t_p).norm(), (t_a - t_b).norm(), (u_a - u_p).norm()
    assert permuted < 0.35 * different, f"{permuted=:.4f} {different=:.4f}"
    assert permuted < 0.35 * unresampled, f"{permuted=:.4f} {unresampled=:.4f}"


def test_resampling_switches() -> None:
    torch.manual_seed(0)
    video, mel = _debug_batch()
    g = varietysound_debug().eval()
    with torch.no_grad():
        a = g(video, mel, generator=_gen(1))
        b = g(video, mel, generator=_gen(1))
        c = g(video, mel, generator=_gen(2))
    assert torch.equal(a, b), "the same generator seed must give the same output"
    assert not torch.allclose(a, c), "resampling is on at evaluation by default"
    g_off = varietysound_debug(resample_in_eval=False).eval()
    with torch.no_grad():
        assert torch.equal(g_off(video, mel, generator=_gen(1)), g_off(video, mel, generator=_gen(2)))
    g_off.train()
    assert g_off.acoustic_encoder.resampling_active, "resampling stays on in training"
    assert not varietysound_debug(resample=False).acoustic_encoder.resampling_active


# ----------------------------------------------------------------------------------------------------------
# Ablations, background encoder, inference


def _changed_inputs() -> dict[str, torch.Tensor]:
    video, mel = _debug_batch(seed=0)
    video2, mel2 = _debug_batch(seed=1)
    return {"video": video, "mel": mel, "video2": video2, "mel2": mel2}


@pytest.mark.parametrize(
    ("switch", "module", "changed"),
    [
        ("use_temporal", "temporal_encoder", "video"),
        ("use_timbre", "acoustic_encoder", "reference"),
        ("use_background", "background_encoder", "background"),
    ],
)
def test_ablation_switch_removes_the_encoder(switch: str, module: str, changed: str) -> None:
    x = _changed_inputs()

    def run(g: torch.nn.Module, which: str | None) -> torch.Tensor:
        video = x["video2"] if which == "video" else x["video"]
        ref = x["mel2"] if which == "reference" else x["mel"]
        bg = x["mel2"] if which == "background" else x["mel"]
        with torch.no_grad():
            return g(video, ref, bg, generator=_gen(0))

    torch.manual_seed(0)
    full = varietysound_debug().eval()
    assert not torch.allclose(run(full, None), run(full, changed)), f"full model must depend on {changed}"
    torch.manual_seed(0)
    ablated = varietysound_debug(**{switch: False}).eval()
    assert getattr(ablated, module) is None
    assert not any(n.startswith(module) for n, _ in ablated.named_parameters()), f"{module} parameters remain"
    n_full, n_ablated = (sum(p.numel() for p in m.parameters()) for m in (full, ablated))
    assert n_ablated < n_full
    torch.testing.assert_close(run(ablated, None), run(ablated, changed), rtol=0, atol=0)


def test_generator_needs_at_least_one_encoder() -> None:
    with pytest.raises(ValueError, match="at least one"):
        varietysound_debug(use_temporal=False, use_timbre=False, use_background=False)


def test_energy_mask_zeroes_frames_above_the_median_energy() -> None:
    mel = torch.rand(2, DEBUG_N_MELS, 31, generator=_gen(0))
    masked, mask = energy_mask(mel)
    energy = mel.mean(1)
    median = energy.median(1, keepdim=True).values
    assert torch.equal(mask, energy > median)
    assert mask.sum(1).tolist() == [15, 15], "31 distinct energies: 15 lie above the median"
    assert (masked[mask.unsqueeze(1).expand_as(mel)] == 0).all()
    assert torch.equal(masked[~mask.unsqueeze(1).expand_as(mel)], mel[~mask.unsqueeze(1).expand_as(mel)])
    loud = torch.zeros(1, 4, 6)
    loud[:, :, [1, 4]] = 1.0  # two loud frames, four silent ones: only the loud ones exceed the median (0)
    masked_loud, mask_loud = energy_mask(loud, mask_value=-5.0)
    assert mask_loud.tolist() == [[False, True, False, False, True, False]]
    assert (masked_loud[:, :, [1, 4]] == -5.0).all() and (masked_loud[:, :, [0, 2, 3, 5]] == 0).all()


def test_background_encoder_sees_masked_mel_and_silence_at_inference() -> None:
    torch.manual_seed(0)
    g = varietysound_debug().eval()
    video, mel = _debug_batch()
    enc = g.background_encoder
    masked, mask = energy_mask(mel)
    louder = mel.clone()
    louder[mask.unsqueeze(1).expand_as(mel)] += 0.5  # change only the frames that get masked
    with torch.no_grad():
        torch.testing.assert_close(enc(mel, num_frames=T_DEBUG), enc(louder, num_frames=T_DEBUG))
        silent = g(video, mel, None, generator=_gen(0))
        zeros = g(video, mel, torch.zeros_like(mel), generator=_gen(0))
    torch.testing.assert_close(silent, zeros, rtol=0, atol=0)


def test_reference_of_any_length_and_fft_block_mask() -> None:
    torch.manual_seed(0)
    g = varietysound_debug().eval()
    video, _ = _debug_batch()
    with torch.no_grad():
        out = g(video, torch.rand(2, DEBUG_N_MELS, 37), generator=_gen(0))
    assert out.shape == (2, DEBUG_N_MELS, 4 * T_DEBUG), f"{out.shape=}"
    block = FFTBlock(dim=8, heads=2, kernel=3, filter_size=8, dropout=0.0).eval()
    x = torch.randn(1, 10, 8)
    pad = torch.zeros(1, 10, dtype=torch.bool)
    pad[:, 6:] = True
    y = block(x, pad)
    assert (y[:, 6:] == 0).all()
    y_other_padding = block(torch.cat([x[:, :6], torch.randn(1, 4, 8)], 1), pad)
    # Attention ignores padded keys and padded frames are zeroed before the convolution sees them.
    torch.testing.assert_close(y[:, :6], y_other_padding[:, :6])
    table = sinusoidal_table(5, 4)
    assert table.shape == (5, 4) and torch.allclose(table[0], torch.tensor([0.0, 1.0, 0.0, 1.0]))


# ----------------------------------------------------------------------------------------------------------
# Discriminators and losses


def test_time_shift_rolls_each_clip_by_at_least_min_shift() -> None:
    mel = torch.rand(8, 3, 40, generator=_gen(0))
    shifted = time_shift(mel, min_shift=10, generator=_gen(1))
    for i in range(8):
        matches = [k for k in range(40) if torch.equal(torch.roll(mel[i], k, dims=1), shifted[i])]
        assert len(matches) == 1, "each clip must be a circular roll of itself"
        k = matches[0]
        assert min(k, 40 - k) >= 10, f"roll by {k} is closer than min_shift"
    assert torch.equal(time_shift(mel, min_shift=10, generator=_gen(1)), shifted)
    with pytest.raises(ValueError, match="min_shift"):
        time_shift(mel, min_shift=25)
    with pytest.raises(ValueError, match="min_shift"):
        time_shift(mel, min_shift=0)


def test_multi_window_discriminator_windows() -> None:
    d = mel_discriminator_debug().eval()
    assert d.windows == (8, 16, 32)
    assert mel_discriminator_paper().windows == (32, 64, 128)
    assert all(sum(isinstance(m, torch.nn.Conv2d) for m in s.modules()) == 3 for s in d.discriminators)
    mel = torch.rand(2, DEBUG_N_MELS, 64)
    starts = d.sample_starts(2, 64, generator=_gen(0))
    assert all(((s >= 0) & (s <= 64 - w)).all() for s, w in zip(starts, d.windows, strict=True))
    a = d(mel, starts=starts)
    b = d(mel, starts=starts)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    # A window only sees its own frames: changing frames outside every window leaves the scores unchanged.
    fixed = [torch.zeros(2, dtype=torch.long)] * 3
    edited = mel.clone()
    edited[:, :, 32:] = 0.0
    assert all(torch.equal(x, y) for x, y in zip(d(mel, starts=fixed), d(edited, starts=fixed), strict=True))
    with pytest.raises(ValueError, match="shorter than the longest window"):
        d(torch.rand(2, DEBUG_N_MELS, 20))


def test_losses_match_the_paper_equations() -> None:
    pred = torch.full((2, 4, 8), 0.5)
    target = torch.full((2, 4, 8), 0.25)
    tdad_fake = torch.full((2, 3), 0.5)  # (1 - 0.5)^2 = 0.25
    mel_fake = [torch.zeros(2, 1), torch.ones(2, 1)]  # 1 + 0
    total, parts = generator_loss(
        pred, target, weights={"mel": 100.0, "adv": 2.0}, tdad_fake=tdad_fake, mel_d_fake=mel_fake
    )
    torch.testing.assert_close(parts["mel"], torch.tensor(0.25))
    torch.testing.assert_close(total, torch.tensor(100.0 * 0.25 + 2.0 * (0.25 + 1.0)))
    only_mel, parts = generator_loss(pred, target, weights=PAPER_LOSS_WEIGHTS)
    torch.testing.assert_close(only_mel, torch.tensor(10000.0 * 0.25))
    assert parts["adv_tdad"] == 0 and parts["adv_mel"] == 0
    with pytest.raises(ValueError, match="keys"):
        generator_loss(pred, target, weights={"mel": 1.0})
    with pytest.raises(ValueError, match="equal shapes"):
        mel_l1_loss(pred, target[:, :, :4])
    ones, zeros = torch.ones(2, 3), torch.zeros(2, 3)
    assert tdad_loss(ones, zeros, zeros)[0] == 0
    total, parts = tdad_loss(zeros, ones, torch.full((2, 3), 0.5))
    torch.testing.assert_close(total, torch.tensor(1.0 + 1.0 + 0.25))
    total, _ = mel_discriminator_loss(
        [torch.ones(2, 1), torch.zeros(2, 1)], [torch.zeros(2, 1), torch.ones(2, 1)]
    )
    torch.testing.assert_close(total, torch.tensor(2.0))


def test_peak_loss_forgives_a_small_offset_but_not_a_missing_strike() -> None:
    target = torch.zeros(1, 2, 32)
    target[..., 10] = 1.0  # a one-frame strike
    late = torch.roll(target, 1, dims=-1)  # drawn one frame late
    missing = torch.zeros_like(target)
    # plain L1 prefers leaving the strike out to drawing it a frame off: the case the peak term is for
    torch.testing.assert_close(mel_l1_loss(late, target), 2 * mel_l1_loss(missing, target))
    torch.testing.assert_close(
        mel_peak_l1_loss(late, target, window=4), 0.5 * mel_peak_l1_loss(missing, target, window=4)
    )
    assert mel_peak_l1_loss(target, target, window=4) == 0
    torch.testing.assert_close(mel_peak_l1_loss(late, target, window=1), mel_l1_loss(late, target))
    with pytest.raises(ValueError, match="window"):
        mel_peak_l1_loss(late, target, window=0)
    # an optional weight: absent (the paper) adds nothing; given, adds weight x the term
    base, parts = generator_loss(late, target, weights={"mel": 1.0, "adv": 1.0})
    assert "mel_peak" not in parts
    total, parts = generator_loss(
        late, target, weights={"mel": 1.0, "adv": 1.0, "mel_peak": 3.0}, peak_window=4
    )
    torch.testing.assert_close(total, base + 3.0 * mel_peak_l1_loss(late, target, window=4))
    with pytest.raises(ValueError, match="mel_peak"):
        generator_loss(late, target, weights={"mel": 1.0, "adv": 1.0, "peak": 1.0})


def test_event_shape_loss_sees_a_strikes_pitch_not_the_floor_or_the_level() -> None:
    floor = torch.full((1, 8, 40), 0.1)
    target = floor.clone()
    target[:, 2, 10:14] = 0.9  # a strike in band 2
    wrong_pitch = floor.clone()
    wrong_pitch[:, 5, 10:14] = 0.9  # the same strike in band 5
    assert event_shape_l1_loss(target, target) == 0
    assert event_shape_l1_loss(wrong_pitch, target) > 0.1
    # a different noise floor or a louder strike of the right pitch costs the whole-mel L1, not this term
    torch.testing.assert_close(event_shape_l1_loss(target + 0.3, target), torch.tensor(0.0))
    quieter_floor = target.clone()
    quieter_floor[:, :, :10] = 0.0
    torch.testing.assert_close(event_shape_l1_loss(quieter_floor, target), torch.tensor(0.0))
    assert mel_l1_loss(quieter_floor, target) > 0
    # a clip with no frame above its median adds nothing
    torch.testing.assert_close(event_shape_l1_loss(wrong_pitch, floor), torch.tensor(0.0))
    with pytest.raises(ValueError, match="event_shape_l1_loss"):
        event_shape_l1_loss(target[0], target[0])
    base, parts = generator_loss(wrong_pitch, target, weights={"mel": 1.0, "adv": 1.0})
    assert "event_shape" not in parts
    total, parts = generator_loss(wrong_pitch, target, weights={"mel": 1.0, "adv": 1.0, "event_shape": 2.0})
    torch.testing.assert_close(total, base + 2.0 * event_shape_l1_loss(wrong_pitch, target))
    torch.testing.assert_close(parts["event_shape"], event_shape_l1_loss(wrong_pitch, target))


# ----------------------------------------------------------------------------------------------------------
# Errors and builders


def test_clear_errors_on_wrong_shapes() -> None:
    g = varietysound_debug().eval()
    video, mel = _debug_batch()
    with pytest.raises(ValueError, match="features per frame"):
        g(torch.randn(2, T_DEBUG, DEBUG_VIDEO_DIM + 1), mel)
    with pytest.raises(ValueError, match=r"video must be \(B, T"):
        g(video[0], mel)
    with pytest.raises(ValueError, match="reference_mel must have 20 mel bins"):
        g(video, torch.rand(2, 80, 64))
    with pytest.raises(ValueError, match="reference_mel has batch 1"):
        g(video, mel[:1])
    with pytest.raises(ValueError, match="reference_mel is required"):
        g(video, None)
    with pytest.raises(ValueError, match="background_mel must be"):
        g(video, mel, mel[0])
    d = tdad_debug()
    with pytest.raises(ValueError, match="mel must have 64 frames"):
        d(mel[:, :, :60], video)
    with pytest.raises(ValueError, match="random_resample expects"):
        random_resample(torch.rand(3, 4), ResampleSpec())
    with pytest.raises(ValueError, match="min_segment"):
        ResampleSpec(min_segment=10, max_segment=5)


def test_builders_and_overrides() -> None:
    for dim in (2, 64):
        g = build_varietysound("debug", bottleneck_dim=dim)
        assert g.temporal_encoder.bottleneck.out_features == dim
        video, mel = _debug_batch()
        with torch.no_grad():
            assert g.eval()(video, mel, generator=_gen(0)).shape == (2, DEBUG_N_MELS, 4 * T_DEBUG)
    assert isinstance(build_varietysound("varietysound_debug"), type(varietysound_debug()))
    assert build_tdad("debug").upsample_factor == 4
    assert build_mel_discriminator("debug", windows=(4, 8)).windows == (4, 8)
    with pytest.raises(ValueError, match="unknown preset"):
        build_varietysound("huge")
    with pytest.raises(ValueError, match="unknown VarietySoundGenerator option"):
        build_varietysound("debug", bottleneck=3)
