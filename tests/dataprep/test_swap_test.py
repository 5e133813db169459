"""The timbre swap test's statistics (dataprep/synthfoley/swap_test.py) on hand-made cases, and re-voicing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dataprep.synthfoley.plan import plan_clip
from dataprep.synthfoley.swap_test import rank_direction_stats, revoice
from v2s_models.metrics.timbre_estimate import estimate_pitch

VIDEOS = ["a", "a", "b", "b", "c", "c"]
REFS = [1.0, 5.0] * 3  # low reference 1, high reference 5


def stats(out):
    return rank_direction_stats(VIDEOS, REFS, out, high=5.0, low=1.0)


def test_outputs_that_follow_the_reference() -> None:
    s = stats([1.1, 4.9, 0.9, 5.2, 1.0, 5.0])
    assert s["fraction_right"] == 1.0 and s["fraction_wrong"] == 0.0 and s["fraction_tied"] == 0.0
    assert s["spearman"] == pytest.approx(s["spearman_max"])
    # two reference values: 3 low and 3 high, ties averaged, so the best possible rho is below 1
    assert s["spearman_max"] == pytest.approx(0.8783100656536799)


def test_ignoring_the_reference_scores_zero_with_ties_counted_as_not_moving() -> None:
    s = stats([2.0, 2.0, 7.0, 7.0, 3.0, 3.0])  # one output per video, whatever the reference
    assert s["spearman"] == pytest.approx(0.0, abs=1e-12)
    assert s["fraction_right"] == 0.0 and s["fraction_tied"] == 1.0


def test_mixed_directions_and_nan() -> None:
    s = stats([2.0, 3.0, 4.0, 1.0, math.nan, 6.0])
    assert s["fraction_right"] == pytest.approx(1 / 3)
    assert s["fraction_wrong"] == pytest.approx(1 / 3)
    assert s["videos_nan"] == 1 and s["videos"] == 3
    assert -1.0 <= s["spearman"] <= 1.0


def test_revoice_moves_the_pitch_and_keeps_the_schedule() -> None:
    gt = plan_clip(seed=0, category="hammer", index=3, size="tiny").ground_truth()
    same, sr = revoice(gt, gt["timbre"])
    low, _ = revoice(gt, {**gt["timbre"], "pitch_hz": 500.0})
    high, _ = revoice(gt, {**gt["timbre"], "pitch_hz": 1500.0})
    assert same.shape == low.shape == (gt["num_samples"],) and sr == gt["sample_rate"]
    assert estimate_pitch(low, sr, fmin=320.0, fmax=2500.0) < estimate_pitch(
        high, sr, fmin=320.0, fmax=2500.0
    )
    assert np.isfinite(same).all()
