"""The acoustic-encoder capacity diagnostic (tests/bench/timbre_capacity.py, issue 13 item 1): its target and its
variants. The figures themselves come from the demo data (docs/results.md)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from torch import nn

from tests.bench.timbre_capacity import (
    build_encoder,
    spearman,
    spectral_peak_baseline,
    synthetic_clips,
    within_category_z,
)


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


def test_synthetic_clips_are_training_mels_on_the_demo_clips_scale() -> None:
    from dataprep.synthfoley.plan import plan_clip

    reference = [{"category": "hammer", "log_pitch": v} for v in (6.0, 7.0, 8.0)]
    clips = synthetic_clips(["hammer"], 2, 1000, reference)
    assert [c["split"] for c in clips] == ["train", "train"]
    for index, clip in enumerate(clips):
        assert clip["mel"].shape == (80, 860) and clip["mel"].dtype == np.float32
        assert 0.0 <= clip["mel"].min() and clip["mel"].max() <= 1.0 and clip["mel"].std() > 0.01
        pitch = plan_clip(seed=1000, category="hammer", index=index, size="demo").timbre.pitch_hz
        assert clip["log_pitch"] == pytest.approx(np.log(pitch))
        # z-scored with the reference clips' mean (7) and standard deviation (sqrt(2/3)), not their own
        assert clip["z"] == pytest.approx((np.log(pitch) - 7.0) / np.sqrt(2.0 / 3.0))
    with pytest.raises(SystemExit, match="drum"):
        synthetic_clips(["drum"], 1, 1000, reference)


def test_spectral_peak_baseline_reads_the_loudest_frames_peak_bin() -> None:
    clips = []
    for i, category in enumerate(["hammer"] * 5 + ["drum"] * 5):
        mel = np.zeros((80, 100), dtype=np.float32)
        bin_ = 10 + 3 * (i % 5)
        mel[bin_, 40:52] = 1.0  # a strike (12 % of the frames) whose peak bin rises with the pitch
        mel[70, :] = 0.5  # a steady hum: the loudest bin over the whole clip, but not in the strike frames
        z = (i % 5) if category == "hammer" else -(i % 5)  # drum: pitch falls as the bin rises
        clips.append({"category": category, "split": "test", "mel": mel, "z": float(z)})
    clips.append({"category": "hammer", "split": "train", "mel": np.zeros((80, 100), np.float32), "z": 9.0})
    result = spectral_peak_baseline(clips)
    assert result["hammer"] == pytest.approx(1.0) and result["drum"] == pytest.approx(-1.0)
