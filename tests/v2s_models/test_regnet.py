"""Tests of the REGNET generator, discriminator, losses and presets (v2s_models/regnet.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from v2s_models.regnet import AUX_TYPES, RegnetDiscriminator, RegnetGenerator, RegnetOutput
from v2s_models.regnet_losses import PAPER_LOSS_WEIGHTS, regnet_discriminator_loss, regnet_generator_loss
from v2s_models.regnet_presets import PAPER_PARAMETER_COUNTS, build_regnet, count_parameters, regnet_debug


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def debug_batch(
    g: RegnetGenerator, batch: int = 2, frames: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    T = frames or g.num_frames
    visual = torch.randn(batch, T, g.visual_dim)
    mel = torch.rand(batch, g.n_mels, 4 * T)
    noise = torch.randn(batch, g.noise_dim)
    return visual, mel, noise


# ------------------------------------------------------------------------------------------- paper size


@pytest.fixture(scope="module")
def paper_models() -> tuple[RegnetGenerator, RegnetDiscriminator]:
    torch.manual_seed(0)
    return build_regnet("regnet_paper")


def test_paper_parameter_counts(paper_models: tuple[RegnetGenerator, RegnetDiscriminator]) -> None:
    g, d = paper_models
    assert count_parameters(g) == PAPER_PARAMETER_COUNTS["generator"] == 94_095_184
    assert count_parameters(d) == PAPER_PARAMETER_COUNTS["discriminator"] == 11_420_545


def test_paper_shapes(paper_models: tuple[RegnetGenerator, RegnetDiscriminator]) -> None:
    g, d = paper_models
    assert (g.num_frames, g.mel_frames) == (215, 860)
    visual = torch.randn(1, 215, 2048)
    mel = torch.rand(1, 80, 860)
    g.train()
    with torch.no_grad():
        out = g(visual, mel)
        assert isinstance(out, RegnetOutput)
        assert out.mel_decoder.shape == (1, 80, 860), f"{out.mel_decoder.shape=}"
        assert out.mel_postnet.shape == (1, 80, 860), f"{out.mel_postnet.shape=}"
        d.train()
        # BatchNorm in train mode needs more than one value per channel: batch 1 still has 4T positions.
        probs = d(visual, out.mel_postnet)
        assert probs.shape == (1, 1, 213), f"{probs.shape=}"
        assert bool(((probs > 0) & (probs < 1)).all())
        generated = g.generate(visual)
    assert generated.shape == (1, 80, 860), f"{generated.shape=}"
    assert g.training, "generate() must restore the training mode"


# ------------------------------------------------------------------------------------------- debug size


def test_debug_preset_is_small() -> None:
    g, d = build_regnet("regnet_debug")
    assert count_parameters(g) < 200_000 and count_parameters(d) < 100_000


@pytest.mark.parametrize("aux_type", AUX_TYPES)
def test_gradients_reach_every_parameter(aux_type: str) -> None:
    g, d = build_regnet("regnet_debug", aux_type=aux_type)
    g.train()
    d.train()
    visual, mel, noise = debug_batch(g)
    out = g(visual, mel, noise)
    loss_d = regnet_discriminator_loss(d(visual, mel), d(visual, out.mel_postnet.detach()))
    loss_d.backward()
    losses = regnet_generator_loss(d(visual, out.mel_postnet), out, mel, weights=PAPER_LOSS_WEIGHTS)
    losses["total"].backward()
    for name, module in (("G", g), ("D", d)):
        for pname, p in module.named_parameters():
            assert p.grad is not None, f"{name}.{pname} got no gradient"
            assert p.grad.abs().sum() > 0, f"{name}.{pname} got an all-zero gradient"


def test_debug_overfits_one_batch() -> None:
    g, _ = build_regnet("regnet_debug")
    g.train()
    visual, mel, noise = debug_batch(g, batch=4)
    opt = torch.optim.Adam(g.parameters(), lr=1e-2)
    weights = {"gan": 0.0, "mel": 1.0}
    history = []
    for _ in range(200):
        opt.zero_grad()
        loss = regnet_generator_loss(None, g(visual, mel, noise), mel, weights=weights)["total"]
        loss.backward()
        opt.step()
        history.append(loss.item())
    first, last = history[0], min(history[-10:])
    assert last < 0.1 * first, f"mel loss fell only from {first:.4f} to {last:.4f}"


def test_one_gan_step_changes_both_networks() -> None:
    g, d = build_regnet("regnet_debug")
    visual, mel, noise = debug_batch(g)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_before = [p.detach().clone() for p in g.parameters()]
    d_before = [p.detach().clone() for p in d.parameters()]
    out = g(visual, mel, noise)
    opt_d.zero_grad()
    regnet_discriminator_loss(d(visual, mel), d(visual, out.mel_postnet.detach())).backward()
    opt_d.step()
    d_grads = [p.grad.clone() for p in d.parameters()]
    d.requires_grad_(False)
    opt_g.zero_grad()
    losses = regnet_generator_loss(d(visual, out.mel_postnet), out, mel, weights=PAPER_LOSS_WEIGHTS)
    losses["total"].backward()
    opt_g.step()
    unchanged = [torch.equal(a, p.grad) for a, p in zip(d_grads, d.parameters(), strict=True)]
    assert all(unchanged), "the G step must not write D gradients"
    assert all(p.grad is not None for p in g.parameters())
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(g_before, g.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, d.parameters(), strict=True))


def test_discriminator_forward_many_equals_separate_calls() -> None:
    g, d = build_regnet("regnet_debug")
    visual, mel, _ = debug_batch(g)
    fake = torch.rand_like(mel)
    d.train()
    separate = [d(visual, mel), d(visual, fake)]
    regnet_discriminator_loss(*separate).backward()
    grads = [p.grad.clone() for p in d.parameters()]
    d.zero_grad()
    shared = d.forward_many(visual, [mel, fake])
    regnet_discriminator_loss(*shared).backward()
    for a, b in zip(separate, shared, strict=True):
        torch.testing.assert_close(a, b)
    for (name, p), grad in zip(d.named_parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, grad, msg=lambda m, name=name: f"{name}: {m}")


# ------------------------------------------------------------------------------------ the regularizer


@pytest.mark.parametrize("aux_type", ["lstm_last", "lstm_sample", "conv"])
def test_regularizer_unused_in_eval(aux_type: str) -> None:
    g, _ = build_regnet("regnet_debug", aux_type=aux_type)
    visual, mel, noise = debug_batch(g)
    other_mel = torch.rand_like(mel)

    g.eval()
    a = g(visual, mel, noise).mel_postnet
    b = g(visual, other_mel, noise).mel_postnet
    c = g(visual, None, noise).mel_postnet
    assert torch.equal(a, b) and torch.equal(a, c), "in eval mode the real mel must not change the output"
    # No gradient can reach the regularizer from an eval-mode output: it was not used at all.
    a.sum().backward()
    assert all(p.grad is None for p in g.auxiliary.parameters())

    g.train()
    torch.manual_seed(1)  # same dropout masks for both calls
    a = g(visual, mel, noise).mel_postnet
    torch.manual_seed(1)
    b = g(visual, other_mel, noise).mel_postnet
    assert not torch.allclose(a, b), "in train mode the real mel must reach the output"


def test_regularizer_zero_without_real_mel_in_training() -> None:
    g, _ = build_regnet("regnet_debug")
    visual, mel, noise = debug_batch(g)
    g.train()
    aux = g.regularizer(None, 2, g.num_frames, visual)
    assert aux.shape == (2, g.num_frames, g.aux_dim) and not aux.any()
    aux = g.regularizer(mel, 2, g.num_frames, visual)
    assert aux.shape == (2, g.num_frames, g.aux_dim) and aux.any()


def test_aux_dropout_zeroes_whole_clips_in_training_only() -> None:
    g, _ = build_regnet("regnet_debug", aux_dropout=0.5)
    visual, mel, _ = debug_batch(g, batch=64)
    g.train()
    torch.manual_seed(0)
    aux = g.regularizer(mel, 64, g.num_frames, visual)
    dropped = ~aux.flatten(1).any(dim=1)  # each clip is either all zero or untouched
    kept = g.auxiliary(mel, g.num_frames)
    torch.testing.assert_close(aux[~dropped], kept[~dropped])
    assert 16 <= int(dropped.sum()) <= 48, f"p = 0.5 dropped {int(dropped.sum())} of 64 clips"
    g1, _ = build_regnet("regnet_debug", aux_dropout=1.0)
    g1.train()
    assert not g1.regularizer(mel, 64, g1.num_frames, visual).any()
    with pytest.raises(ValueError, match="aux_dropout"):
        build_regnet("regnet_debug", aux_dropout=1.5)


@pytest.mark.parametrize("aux_type", AUX_TYPES)
@pytest.mark.parametrize("frames", [8, 7, 3])
def test_aux_variants_shapes(aux_type: str, frames: int) -> None:
    g, d = build_regnet("regnet_debug", aux_type=aux_type)
    visual, mel, noise = debug_batch(g, frames=frames)
    for training in (True, False):
        g.train(training)
        out = g(visual, mel, noise)
        for t in out:
            assert t.shape == (2, g.n_mels, 4 * frames), f"{aux_type=} {training=} {t.shape=}"
        assert torch.isfinite(out.mel_postnet).all()
    if aux_type != "none":
        g.train()
        aux = g.auxiliary(mel, frames)
        assert aux.shape == (2, frames, g.aux_dim), f"{aux.shape=}"
    assert d(visual, out.mel_postnet).shape == (2, 1, frames - 2)


def test_aux_none_has_no_regularizer_and_fewer_parameters() -> None:
    g_none, _ = build_regnet("regnet_debug", aux_type="none")
    g_last, _ = build_regnet("regnet_debug", aux_type="lstm_last")
    assert g_none.auxiliary is None and g_none.aux_dim == 0
    assert count_parameters(g_none) < count_parameters(g_last)


def test_lstm_sample_repeats_each_segment() -> None:
    """Each video step receives the sample of its own segment: `rate / 4` equal steps per segment."""
    g, _ = build_regnet("regnet_debug", aux_type="lstm_sample", aux_sample_rate=8)
    g.train()
    _, mel, _ = debug_batch(g, frames=8)
    aux = g.auxiliary(mel, 8)  # 32 mel frames -> 4 segments of 8 mel frames -> 2 video steps each
    for k in range(4):
        assert torch.equal(aux[:, 2 * k], aux[:, 2 * k + 1])
        if k:
            assert not torch.equal(aux[:, 2 * k], aux[:, 2 * k - 1])


def test_lstm_last_is_constant_over_time() -> None:
    g, _ = build_regnet("regnet_debug", aux_type="lstm_last")
    _, mel, _ = debug_batch(g)
    aux = g.auxiliary(mel, g.num_frames)
    assert torch.equal(aux, aux[:, :1].expand_as(aux))


def test_postnet_is_residual_and_vision_drives_the_output() -> None:
    g, _ = build_regnet("regnet_debug")
    visual, _, noise = debug_batch(g)
    g.train()  # batch statistics: outputs of order 1 (a fresh model in eval mode outputs ~1e-6)
    with torch.no_grad():
        out = g(visual, None, noise)
        residual = out.mel_postnet - out.mel_decoder
        assert out.mel_decoder.abs().mean() > 0.1 and residual.abs().mean() > 0.1
        torch.testing.assert_close(residual, g.postnet(out.mel_decoder), rtol=1e-4, atol=1e-5)
        torch.manual_seed(1)  # same dropout masks for both calls
        out = g(visual, None, noise).mel_postnet
        torch.manual_seed(1)
        other = g(torch.randn_like(visual), None, noise).mel_postnet
        assert (out - other).abs().mean() > 0.1 * out.abs().mean()


# ----------------------------------------------------------------------------------- generation & noise


def test_generate_is_deterministic_given_noise_and_restores_mode() -> None:
    g, _ = build_regnet("regnet_debug")
    visual, _, noise = debug_batch(g)
    g.train()
    a = g.generate(visual, noise)
    b = g.generate(visual, noise)
    assert torch.equal(a, b)
    assert g.training
    assert not a.requires_grad
    g.eval()
    with torch.no_grad():
        assert torch.equal(a, g(visual, None, noise).mel_postnet)
    assert not g.training
    c = g.generate(visual)  # fresh noise each call
    assert not torch.equal(a, c)


def test_generate_longer_than_training_window() -> None:
    g, _ = build_regnet("regnet_debug")
    visual = torch.randn(1, 3 * g.num_frames, g.visual_dim)
    assert g.generate(visual).shape == (1, g.n_mels, 12 * g.num_frames)


# ------------------------------------------------------------------------------------------------ losses


def test_discriminator_loss_value() -> None:
    half = torch.full((2, 1, 5), 0.5)
    assert torch.allclose(regnet_discriminator_loss(half, half), torch.log(torch.tensor(2.0)))
    good = regnet_discriminator_loss(torch.full((2, 1, 5), 0.9), torch.full((2, 1, 5), 0.1))
    assert torch.allclose(good, -torch.log(torch.tensor(0.9)))


def test_generator_loss_value_and_weights() -> None:
    real = torch.zeros(2, 4, 8)
    out = RegnetOutput(mel_decoder=torch.full_like(real, 0.1), mel_postnet=torch.full_like(real, 0.2))
    d_fake = torch.full((2, 1, 6), 0.5)
    losses = regnet_generator_loss(d_fake, out, real, weights=PAPER_LOSS_WEIGHTS)
    mel = 0.1**2 + 0.2**2
    assert losses["mel"].item() == pytest.approx(mel)
    assert losses["gan"].item() == pytest.approx(0.6931472, rel=1e-5)
    assert losses["total"].item() == pytest.approx(0.6931472 + 10000 * mel, rel=1e-5)
    silent = regnet_generator_loss(d_fake, out, real, weights={"gan": 0.0, "mel": 0.0, "silence": 2.0})
    assert silent["total"].item() == pytest.approx(2 * mel)


def test_generator_loss_rejects_bad_weights_and_shapes() -> None:
    real = torch.zeros(2, 4, 8)
    out = RegnetOutput(real.clone(), real.clone())
    with pytest.raises(ValueError, match="missing"):
        regnet_generator_loss(None, out, real, weights={"mel": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        regnet_generator_loss(None, out, real, weights={"gan": 0.0, "mel": 1.0, "l1": 1.0})
    with pytest.raises(ValueError, match="d_fake is None"):
        regnet_generator_loss(None, out, real, weights={"gan": 1.0, "mel": 1.0})
    with pytest.raises(ValueError, match="differ in shape"):
        regnet_generator_loss(None, out, torch.zeros(2, 4, 9), weights={"gan": 0.0, "mel": 1.0})
    with pytest.raises(ValueError, match="same shape"):
        regnet_discriminator_loss(torch.full((2, 1, 5), 0.5), torch.full((2, 1, 6), 0.5))


# ------------------------------------------------------------------------------------------------ errors


def test_clear_errors_on_bad_inputs() -> None:
    g, d = build_regnet("regnet_debug")
    visual, mel, noise = debug_batch(g)
    with pytest.raises(ValueError, match=r"visual must be \(B, T, 16\)"):
        g(visual[..., :15])
    with pytest.raises(ValueError, match="visual must be"):
        g(visual[0])
    with pytest.raises(ValueError, match="real_mel must be"):
        g(visual, mel[..., :-1])
    with pytest.raises(ValueError, match="real_mel must be"):
        g(visual, mel[:, :-1])
    with pytest.raises(ValueError, match="real_mel must be"):
        g(visual, mel[:1])
    with pytest.raises(ValueError, match="noise must be"):
        g(visual, mel, noise[:, :-1])
    with pytest.raises(ValueError, match="mel must be"):
        d(visual, mel[..., :-4])
    with pytest.raises(ValueError, match="at least 3 video frames"):
        d(visual[:, :2], mel[..., :8])


def test_clear_errors_on_bad_configuration() -> None:
    kwargs = regnet_debug()["generator"]
    with pytest.raises(ValueError, match="aux_type"):
        RegnetGenerator(**{**kwargs, "aux_type": "gru"})
    with pytest.raises(ValueError, match="mel_frames must be 4 x num_frames"):
        RegnetGenerator(**{**kwargs, "mel_frames": 33})
    with pytest.raises(ValueError, match="aux_sample_rate"):
        RegnetGenerator(**{**kwargs, "aux_type": "lstm_sample", "aux_sample_rate": 6})
    with pytest.raises(ValueError, match="unknown REGNET preset"):
        build_regnet("regnet_huge")
    with pytest.raises(TypeError):
        RegnetGenerator(16)  # type: ignore[misc]  # keyword-only


def test_build_regnet_overrides() -> None:
    g, d = build_regnet("regnet_debug", visual_dim=24, aux_type="conv", aux_dim=4, d_branch_channels=8)
    assert g.visual_dim == d.visual_dim == 24
    assert g.aux_type == "conv" and g.aux_dim == 4
    assert d.mel_proj.out_channels == 8
