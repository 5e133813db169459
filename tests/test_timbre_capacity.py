"""The acoustic-encoder capacity diagnostic (tests/bench/timbre_capacity.py, issue 13 item 1): its target and its
variants. The figures themselves come from the demo data (docs/results.md)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from torch import nn

from tests.bench.timbre_capacity import build_encoder, spearman, within_category_z


def test_the_target_is_log_pitch_standardised_within_each_category() -> None:
    rng = np.random.default_rng(0)
    clips = [
        {"category": c, "log_pitch": float(v)}
        for c, m in (("drum", 4.5), ("hammer", 7.0))
        for v in rng.normal(m, 0.3 if c == "drum" else 0.6, 12)
    ]
    within_category_z(clips)
    for category in ("drum", "hammer"):
        z = np.array([c["z"] for c in clips if c["category"] == category])
        assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0)
    # the category alone predicts nothing: the two categories' z-scores are on the same scale
    assert spearman(
        [float(c["category"] == "hammer") for c in clips], [c["z"] for c in clips]
    ) == pytest.approx(0.0, abs=0.2)


def test_variants_switch_off_the_named_parts_of_the_paper_encoder() -> None:
    base = dict(units=2, channels=16, lstm_layers=1, lstm_hidden=8, pooling="last")
    paper = build_encoder(argparse.Namespace(**base, no_resample=False, no_instance_norm=False))
    assert paper.resample and all(isinstance(u.input_gate[-1], nn.InstanceNorm1d) for u in paper.units)
    plain = build_encoder(argparse.Namespace(**base, no_resample=True, no_instance_norm=True))
    assert not plain.resample and all(isinstance(u.input_gate[-1], nn.Identity) for u in plain.units)
