"""The regularizer diagnostic of tests/bench/bench_regnet_sound.py (issue 13 item 4)."""

from __future__ import annotations

import torch

from tests.bench.bench_regnet_sound import ConstantRegularizer, generate_with_regularizer
from v2s_models.regnet_presets import build_regnet


def test_regularizer_modes_reach_the_decoder_and_leave_the_model_in_eval() -> None:
    torch.manual_seed(0)
    g, _ = build_regnet("regnet_debug")
    visual = torch.randn(g.num_frames, g.visual_dim)
    real = torch.rand(g.n_mels, 4 * g.num_frames).numpy()
    with torch.no_grad():
        own = generate_with_regularizer(g, visual, real)
        assert not g.training and own.shape == (g.n_mels, 4 * g.num_frames)
        noise = torch.randn(1, g.noise_dim, generator=torch.Generator().manual_seed(0))
        plain = g.generate(visual[None], noise)[0]  # the regularizer at zero, as at generation
        g.auxiliary = ConstantRegularizer(torch.zeros(g.aux_dim))
        torch.testing.assert_close(generate_with_regularizer(g, visual, real), plain)
        assert not torch.allclose(own, plain), "the real mel's code must change the output"
        g.auxiliary = ConstantRegularizer(torch.ones(g.aux_dim))
        assert not torch.allclose(generate_with_regularizer(g, visual, real), plain)
