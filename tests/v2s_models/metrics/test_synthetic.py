from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dataprep.synthfoley.plan import Event, Timbre, plan_clip
from dataprep.synthfoley.sound import event_sound
from v2s_models.metrics.synthetic import (
    offscreen_energy_ratio,
    tile_ground_truth,
    timbre_error,
    timbre_params,
    visible_onsets,
)

SR = 22050
GT = {
    "duration": 2.0,
    "num_samples": 44100,
    "sample_rate": 22050,
    "events": [{"onset_s": 0.2, "offset_s": 0.4}, {"onset_s": 1.2, "offset_s": 1.4}],
    "offscreen": [{"onset_s": 0.6, "offset_s": 0.9}, {"onset_s": 1.3, "offset_s": 1.7}],
    "timbre": {"pitch_hz": 440.0, "decay_s": 0.2, "brightness": 0.5},
}


def test_tile_ground_truth_loops_events() -> None:
    tiled = tile_ground_truth(GT, 5.0)
    np.testing.assert_allclose(visible_onsets(tiled), [0.2, 1.2, 2.2, 3.2, 4.2, 5.2][:5])
    assert [e["onset_s"] for e in tiled["offscreen"]] == pytest.approx([0.6, 1.3, 2.6, 3.3, 4.6])
    assert tiled["offscreen"][-1]["offset_s"] == 4.9 and tiled["duration"] == 5.0
    assert len(GT["events"]) == 2  # the input is not modified


def test_tile_a_real_ground_truth_file() -> None:
    path = Path(__file__).resolve().parents[3] / "data/raw/synthfoley/bouncing_ball/bouncing_ball_0000.json"
    plan = plan_clip(seed=0, category="bouncing_ball", index=0, size="tiny")
    gt = json.loads(path.read_text()) if path.is_file() else plan.ground_truth()
    tiled = tile_ground_truth(gt, 10.0)
    period = gt["num_samples"] / gt["sample_rate"]
    assert len(tiled["events"]) == sum(
        1 for k in range(10) for e in gt["events"] if e["onset_s"] + k * period < 10.0
    )
    assert max(visible_onsets(tiled)) < 10.0


def _noise_at(windows: list[dict], n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n)
    for w in windows:
        a, b = int(w["onset_s"] * SR), int(w["offset_s"] * SR)
        x[a:b] = rng.standard_normal(b - a)
    return x


def test_offscreen_energy_ratio() -> None:
    n = GT["num_samples"]
    only_visible = _noise_at(GT["events"], n, 0)
    visible = _noise_at(GT["events"], n, 2)
    only_offscreen = np.where(visible != 0, 0.01 * visible, _noise_at(GT["offscreen"], n, 1))
    both = only_visible + _noise_at(GT["offscreen"], n, 3)
    assert offscreen_energy_ratio(only_visible, SR, GT) == 0.0
    assert offscreen_energy_ratio(only_offscreen, SR, GT) > 1000.0
    # Unit-power noise everywhere, doubled where 1.3-1.4 s overlaps: visible mean power 1.25 -> ratio 0.8.
    assert offscreen_energy_ratio(both, SR, GT) == pytest.approx(0.8, rel=0.1)
    # 1.3-1.4 s overlaps a visible event: it does not count as off-screen.
    overlap_only = np.zeros(n)
    overlap_only[int(1.3 * SR) : int(1.4 * SR)] = 1.0
    assert offscreen_energy_ratio(overlap_only, SR, GT) == 0.0
    assert math.isnan(offscreen_energy_ratio(only_visible, SR, {**GT, "offscreen": []}))


def _events_track(category: str, timbre: Timbre, onsets: list[float], seed: int = 0) -> np.ndarray:
    """SynthFoley's own event synthesis at known onsets over white noise 40 dB below the events' peak."""
    rng = np.random.default_rng(seed)
    x = 0.01 * rng.standard_normal(int(3.0 * SR))
    for o in onsets:
        ev = Event(onset_frame=0, end_frame=0, lead_frames=0, onset_s=o, offset_s=o + timbre.decay_s,
                   gain=1.0, x_frac=0.5, y_frac=0.0)  # fmt: skip
        s = event_sound(category, timbre, ev, SR, rng)
        k = int(o * SR)
        x[k : k + len(s)] += s[: len(x) - k]
    return x


@pytest.mark.parametrize(
    ("category", "pitch", "decay", "cents", "percent"),
    [
        ("hammer", 523.0, 0.25, 10.0, 15.0),
        ("hammer", 1500.0, 0.1, 10.0, 15.0),
        ("drum", 120.0, 0.4, 80.0, 15.0),
    ],
)
def test_timbre_params_recover_pitch_and_decay(
    category: str, pitch: float, decay: float, cents: float, percent: float
) -> None:
    onsets = [0.3, 1.2, 2.1]
    timbre = Timbre(pitch_hz=pitch, decay_s=decay, brightness=0.6)
    est = timbre_params(_events_track(category, timbre, onsets), SR, onsets)
    err = timbre_error(est, {"timbre": {"pitch_hz": pitch, "decay_s": decay, "brightness": 0.6}})
    assert err["pitch_error_cents"] < cents, f"{est=}"
    assert err["decay_error_pct"] < percent, f"{est=}"


def test_brightness_increases_with_brightness() -> None:
    onsets = [0.3, 1.2, 2.1]
    dull, bright = (
        timbre_params(
            _events_track("hammer", Timbre(pitch_hz=500.0, decay_s=0.2, brightness=b), onsets), SR, onsets
        )
        for b in (0.5, 1.0)
    )
    assert bright["brightness"] > dull["brightness"]


def test_timbre_error_known_answer() -> None:
    err = timbre_error({"pitch_hz": 880.0, "decay_s": 0.3, "brightness": 0.4}, GT)
    assert err == pytest.approx(
        {"pitch_error_cents": 1200.0, "decay_error_pct": 50.0, "brightness_error": 0.1}
    )
