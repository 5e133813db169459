from __future__ import annotations

import math

import numpy as np
import pytest

from dataprep.synthfoley.plan import plan_clip
from dataprep.synthfoley.sound import synthesize_audio
from v2s_models.metrics import evaluate_clip


def test_evaluate_clip_on_a_synthfoley_track() -> None:
    plan = plan_clip(seed=0, category="hammer", index=0, size="tiny")
    wave = synthesize_audio(plan)[0]
    gt = plan.ground_truth()
    sr = plan.sample_rate
    looped = np.tile(wave, 2)  # the data pipeline loops clips; the ground truth is tiled to match
    out = evaluate_clip(looped, sr, reference_wave=looped, gt=gt)
    assert out["onset_recall"] == 1.0 and out["onset_f1"] >= 0.9, f"{out=}"
    assert abs(out["av_offset_ms"]) < 15.0
    assert out["mcd_db"] == 0.0
    assert out["pitch_error_cents"] < 10.0 and out["decay_error_pct"] < 25.0, f"{out=}"
    assert math.isnan(out["offscreen_energy_ratio"]) == (not gt["offscreen"])
    late = np.concatenate([np.zeros(int(0.1 * sr), np.float32), looped])[: len(looped)]
    shifted = evaluate_clip(late, sr, reference_wave=looped)
    assert shifted["av_offset_ms"] == pytest.approx(100.0, abs=12.0)
    assert shifted["onset_f1"] < 0.2 and shifted["mcd_db"] > 0
