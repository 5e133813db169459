"""REGNET generator options for issue 13 item 4: ICNR-style decoder initialisation, the anti-alias blur after the
transposed layers and a learned output bias."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from v2s_models.regnet import RegnetDecoder, RegnetGenerator, TemporalFilter, binomial_blur
from v2s_models.regnet_presets import regnet_debug


def _debug_generator(**overrides: object) -> RegnetGenerator:
    torch.manual_seed(0)
    return RegnetGenerator(**{**regnet_debug()["generator"], **overrides})


def _transposed_layers(decoder: RegnetDecoder) -> list[nn.ConvTranspose1d]:
    return [m for m in decoder.modules() if isinstance(m, nn.ConvTranspose1d)]


def _period2_step(decoder: RegnetDecoder, frames: int = 16, margin: int = 16) -> float:
    """Largest |y[t] - y[t+1]| over the interior of the decoder's output for a time-constant input (eval mode)."""
    decoder.eval()
    width = _transposed_layers(decoder)[0].in_channels
    x = torch.ones(2, frames, width) * torch.randn(2, 1, width)
    with torch.no_grad():
        y = decoder(x)  # (B, n_mels, 4 * frames)
    assert y.shape[2] == 4 * frames, f"{y.shape=}"
    inner = y[:, :, margin:-margin]
    return float((inner[:, :, 1:] - inner[:, :, :-1]).abs().max() / y.abs().max())


def test_icnr_transposed_layer_equals_nearest_upsampling_then_conv() -> None:
    g = _debug_generator(decoder_init="icnr")
    for layer in _transposed_layers(g.decoder):
        w = layer.weight  # (in, out, 4)
        v = torch.stack([w[..., 3], w[..., 2] - w[..., 3], w[..., 0]], -1).transpose(0, 1)  # (out, in, 3)
        assert torch.allclose(w[..., 1], w[..., 0] + w[..., 2] - w[..., 3], atol=1e-7), "W1 != V1 + V2"
        x = torch.randn(2, layer.in_channels, 7)
        resize_conv = nn.functional.conv1d(nn.functional.interpolate(x, scale_factor=2), v, padding=1)
        with torch.no_grad():
            assert torch.allclose(layer(x), resize_conv + layer.bias[:, None], atol=1e-6), (
                "not resize-conv at init"
            )


def test_icnr_decoder_maps_a_constant_input_to_a_constant_output_at_init() -> None:
    icnr = _period2_step(_debug_generator(decoder_init="icnr").decoder)
    default = _period2_step(_debug_generator().decoder)
    assert icnr < 1e-5, f"icnr decoder output varies over time for a constant input: {icnr=}"
    # The paper's N(0, 0.02) init alternates between two kernel halves: a frame-to-frame step of the output's order.
    assert default > 0.05, f"expected the default init to show the period-2 pattern, {default=}"


def test_icnr_keeps_the_parameters_and_rejects_resize_conv() -> None:
    default, icnr = _debug_generator(), _debug_generator(decoder_init="icnr")
    assert {k: v.shape for k, v in default.state_dict().items()} == {
        k: v.shape for k, v in icnr.state_dict().items()
    }
    with pytest.raises(ValueError, match="decoder_init"):
        _debug_generator(decoder_init="orthogonal")
    with pytest.raises(ValueError, match="resize_conv"):
        _debug_generator(decoder_init="icnr", decoder_upsample="resize_conv")


def test_output_bias_default_off_is_identity() -> None:
    implicit, explicit = _debug_generator(), _debug_generator(decoder_init="default", output_bias=False)
    assert implicit.output_bias is None
    assert list(implicit.state_dict()) == list(explicit.state_dict())
    for (k, a), b in zip(implicit.state_dict().items(), explicit.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    visual, noise = torch.randn(2, 8, 16), torch.randn(2, 8)
    assert torch.equal(implicit.generate(visual, noise), explicit.generate(visual, noise))


def test_output_bias_shape_offset_and_gradient() -> None:
    off, on = _debug_generator(), _debug_generator(output_bias=True, output_bias_init=0.3)
    assert on.output_bias is not None and on.output_bias.shape == (16,), "one bias per mel band"
    assert set(on.state_dict()) - set(off.state_dict()) == {"output_bias"}
    assert torch.allclose(on.output_bias, torch.full((16,), 0.3))
    visual, noise = torch.randn(2, 8, 16), torch.randn(2, 8)
    off.eval(), on.eval()
    with torch.no_grad():
        a, b = off(visual, None, noise), on(visual, None, noise)
    assert b.mel_postnet.shape == (2, 16, 32), f"{b.mel_postnet.shape=}"
    assert torch.allclose(b.mel_decoder, a.mel_decoder + 0.3, atol=1e-6), "the bias shifts the decoder's mel"
    on.train()
    on(visual, torch.rand(2, 16, 32), noise).mel_postnet.mean().backward()
    assert on.output_bias.grad is not None and on.output_bias.grad.abs().sum() > 0


def test_transposed_blur_keeps_the_paper_parameters_and_removes_the_period2_pattern() -> None:
    paper, blur = _debug_generator(), _debug_generator(decoder_upsample="transposed_blur")
    assert [p.shape for p in paper.parameters()] == [p.shape for p in blur.parameters()], (
        "the blur adds no parameter"
    )
    assert _period2_step(paper.decoder) > 0.05
    assert _period2_step(blur.decoder) < 1e-5, "a constant input must give a constant output"
    # icnr starts the same transposed layers; the blur follows them
    assert (
        _period2_step(_debug_generator(decoder_upsample="transposed_blur", decoder_init="icnr").decoder)
        < 1e-5
    )


def test_binomial_blur_response() -> None:
    blur = binomial_blur()
    t = torch.arange(64, dtype=torch.float32)
    x = torch.stack([torch.ones(64), torch.cos(torch.pi * t), torch.cos(torch.pi * t / 2)])[
        None
    ]  # (1, 3, 64)
    y = blur(x)[0, :, 4:-4]  # away from the replicated edges
    assert y.shape == (3, 56), f"{y.shape=}"
    assert torch.allclose(y[0], torch.ones(56)), "gain 1 at DC"
    assert y[1].abs().max() < 1e-6, "gain 0 at a period of 2 frames"
    assert torch.allclose(y[2], 0.5 * x[0, 2, 4:-4], atol=1e-6), "gain 0.5 at a period of 4 frames"


def test_output_smoothing_is_a_moving_average_of_both_outputs() -> None:
    off, on = _debug_generator(), _debug_generator(output_smoothing=4)
    assert off.smoothing is None and on.output_smoothing == 4
    assert list(on.state_dict()) == list(off.state_dict()), "no parameter, no buffer in the state_dict"
    on.load_state_dict(off.state_dict())
    visual, noise = torch.randn(2, 8, 16), torch.randn(2, 8)
    off.eval(), on.eval()
    with torch.no_grad():
        a, b = off(visual, None, noise), on(visual, None, noise)
    box = TemporalFilter([0.25] * 4)
    assert b.mel_postnet.shape == a.mel_postnet.shape == (2, 16, 32), f"{b.mel_postnet.shape=}"
    assert torch.allclose(b.mel_postnet, box(a.mel_postnet), atol=1e-6)
    assert torch.allclose(b.mel_decoder, box(a.mel_decoder), atol=1e-6)
    # gain 0 at periods 2 and 4 frames: a mel alternating with either period comes out constant (interior)
    t = torch.arange(32, dtype=torch.float32)
    ripple = torch.stack([torch.cos(torch.pi * t), torch.cos(torch.pi * t / 2)])[None] + 1.0
    assert torch.allclose(box(ripple)[..., 3:-3], torch.ones(1, 2, 26), atol=1e-6)
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="output_smoothing"):
            _debug_generator(output_smoothing=bad)
