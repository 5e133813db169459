"""The timbre-vector probe (tests/bench/timbre_probe.py, issue 13 item 1): its regression and its targets. The
figures come from trained models on the demo data (docs/results.md)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.bench.timbre_probe import TARGETS, loo_ridge_spearman, probe_row


def test_leave_one_out_ridge_finds_a_linear_code_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=40)
    coded = np.column_stack([3.0 * y + 0.05 * rng.normal(size=40), rng.normal(size=(40, 7))])
    assert loo_ridge_spearman(coded, y, alpha=1.0) > 0.95
    noise = rng.normal(size=(40, 8))
    assert abs(loo_ridge_spearman(noise, y, alpha=1.0)) < 0.5  # leave-one-out is biased negative on noise


def test_targets_read_the_synthfoley_ground_truth_and_rows_are_per_category() -> None:
    gt = {
        "timbre": {"pitch_hz": 440.0, "decay_s": 0.2, "brightness": 0.7},
        "background": {"snr_db": 20.0},
        "events": [{}, {}, {}],
        "duration": 6.0,
    }
    assert TARGETS["log pitch"](gt) == pytest.approx(np.log(440.0))
    assert TARGETS["events/s"](gt) == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    clips = []
    for category in ("hammer", "drum"):
        for _ in range(12):
            pitch = float(rng.uniform(100, 1000))
            g = {
                **gt,
                "timbre": {**gt["timbre"], "pitch_hz": pitch},
                "background": {"snr_db": rng.uniform(5, 30)},
            }
            clips.append({"category": category, "gt": g})
    # the vector encodes log pitch for hammer only
    vectors = np.stack(
        [
            [
                np.log(c["gt"]["timbre"]["pitch_hz"]) if c["category"] == "hammer" else rng.normal(),
                rng.normal(),
            ]
            for c in clips
        ]
    )
    pitch_cell = probe_row(vectors, clips, ("hammer", "drum"), alpha=0.1).split(" | ")[0]
    hammer, drum = (float(v) for v in pitch_cell.split(" / "))
    assert hammer > 0.9 and abs(drum) < 0.7
