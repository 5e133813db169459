from __future__ import annotations

import numpy as np
import pytest
import torch

from v2s_models.metrics.periodicity import frame_energy, ripple_fraction
from v2s_models.regnet import RegnetDecoder


def _smooth_mel(frames: int = 860, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    envelope = np.convolve(rng.random(frames), np.hanning(31), mode="same")  # slow energy changes
    return np.tile(envelope, (80, 1)) + 0.01 * rng.standard_normal((80, frames))


def test_smooth_mel_has_little_ripple():
    assert ripple_fraction(_smooth_mel()) < 0.01


def test_period_two_and_four_patterns_are_found():
    mel = _smooth_mel()
    t = np.arange(mel.shape[1])
    ripple = 2.0 * ((t % 2) - 0.5) + 2.0 * np.cos(2 * np.pi * t / 4)  # about the envelope's own spread
    striped = mel + ripple
    assert ripple_fraction(striped) > 0.5, ripple_fraction(striped)
    assert ripple_fraction(striped) > 50 * ripple_fraction(mel)
    # a pattern at another period is not counted
    other = mel + 2.0 * np.cos(2 * np.pi * t / 7)
    assert ripple_fraction(other) < 0.05, ripple_fraction(other)


def test_flat_and_bad_inputs():
    assert ripple_fraction(np.ones((80, 64))) == 0.0
    with pytest.raises(ValueError, match="frames"):
        ripple_fraction(np.ones((80, 4)))
    with pytest.raises(ValueError, match="n_mels, frames"):
        frame_energy(np.ones(10))


@pytest.mark.parametrize("upsample", ["transposed", "resize_conv"])
def test_decoder_upsampling_on_a_constant_input(upsample: str):
    """A constant input shows the structural difference: the transposed convolutions' uneven overlap makes a
    period-2/4 pattern out of nothing (random init), the resize-convolution cannot."""
    torch.manual_seed(0)
    dec = RegnetDecoder(in_dim=8, channels=16, n_mels=16, upsample=upsample).eval()
    with torch.no_grad():
        mel = dec(torch.ones(1, 64, 8))[0].numpy()  # (16, 256)
    inner = mel[:, 16:-16]  # away from the zero-padded edges
    fraction = ripple_fraction(inner)
    if upsample == "transposed":
        assert fraction > 0.5, fraction
    else:
        assert np.allclose(inner, inner[:, :1], atol=1e-5), "a constant input must give a constant output"


def test_unknown_upsampling_is_refused():
    with pytest.raises(ValueError, match="decoder_upsample"):
        RegnetDecoder(in_dim=8, channels=16, n_mels=16, upsample="bilinear")  # type: ignore[arg-type]
