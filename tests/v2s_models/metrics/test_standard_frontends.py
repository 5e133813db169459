"""Clip handling as av-benchmark's AudioDataset: mono, mean removed, torchaudio-style resampling, 8 s kept."""

from __future__ import annotations

import numpy as np
import pytest

from v2s_models.metrics.standard.frontends import pad_or_cut, prepare_clip, resample, to_mono


@pytest.mark.parametrize(("orig", "new"), [(22050, 16000), (22050, 32000), (16000, 32000), (48000, 16000)])
def test_resample_keeps_a_passband_sine_and_the_reference_length(orig: int, new: int) -> None:
    t = np.arange(orig) / orig  # 1 s
    out = resample(np.sin(2 * np.pi * 1000 * t), orig, new)
    assert out.size == int(np.ceil(new * orig / orig)), f"{out.size=}"
    expected = np.sin(2 * np.pi * 1000 * np.arange(out.size) / new)
    core = slice(new // 10, -new // 10)  # away from the zero-padded edges
    np.testing.assert_allclose(out[core], expected[core], atol=2e-3)


def test_resample_removes_content_above_the_new_nyquist() -> None:
    t = np.arange(22050) / 22050
    out = resample(np.sin(2 * np.pi * 10000 * t), 22050, 16000)  # 10 kHz > 8 kHz
    # a 6-zero-crossing Hann-windowed sinc (torchaudio's default) attenuates by about 43 dB here
    assert np.abs(out[1600:-1600]).max() < 1e-2


def test_prepare_clip_is_mono_zero_mean_and_cut_to_eight_seconds() -> None:
    stereo = np.stack([np.full(16000 * 9, 0.5), np.full(16000 * 9, 0.1)])
    clip = prepare_clip(stereo + np.sin(np.arange(16000 * 9))[None] * 0.1, 16000, 16000, 8.0)
    assert clip.shape == (16000 * 8,) and clip.dtype == np.float32
    assert abs(clip.mean()) < 1e-3
    assert to_mono(stereo).shape == (16000 * 9,)
    assert pad_or_cut(np.ones(3), 5).tolist() == [1, 1, 1, 0, 0] and pad_or_cut(np.ones(7), 5).size == 5
