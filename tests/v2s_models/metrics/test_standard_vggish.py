"""VGGish equals torchvggish (front end: vggish_input.waveform_to_examples; network: torchvggish's VGG with the
same random weights by key name, read before its last ReLU, which av-benchmark's copy drops)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from v2s_models.metrics.standard import vggish
from v2s_models.metrics.standard.weights import load_strict

torchvggish = pytest.importorskip("torchvggish")


def test_log_mel_examples_equal_torchvggish_input() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 3 + 1234) / 16000
    wave = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(t.size)
    ours = vggish.log_mel_examples(wave)
    ref = torchvggish.vggish_input.waveform_to_examples(wave, 16000, return_tensor=False)
    assert ours.shape == ref.shape == (3, 96, 64), f"{ours.shape=} {ref.shape=}"
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)
    assert vggish.log_mel_examples(np.zeros(15000)).shape == (0, 96, 64)


def test_vggish_equals_torchvggish_with_the_same_random_weights() -> None:
    torch.manual_seed(0)
    reference = torchvggish.torchvggish.VGG(torchvggish.torchvggish.make_layers(), postprocess=False).eval()
    ours = vggish.vggish()
    state = {
        k: torch.randn(v.shape) / np.sqrt(v[0].numel() if v.ndim > 1 else 1)
        for k, v in reference.state_dict().items()
    }
    reference.load_state_dict(state)
    load_strict(ours, state, source="torchvggish state")
    examples = torch.from_numpy(
        vggish.log_mel_examples(np.random.default_rng(1).standard_normal(16000 * 2))
    ).float()
    with torch.no_grad():
        emb = ours(examples[:, None])
        features = reference.features(examples[:, None]).permute(0, 2, 3, 1).reshape(len(examples), -1)
        pre_relu = reference.embeddings[:5](features)
        post_relu = reference(examples[:, None])
    assert emb.shape == (2, 128), f"{emb.shape=}"
    torch.testing.assert_close(emb, pre_relu, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.relu(emb), post_relu, rtol=1e-5, atol=1e-5)
    assert vggish.widths_of(state) == vggish.OFFICIAL_WIDTHS
