from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from dataprep.synthfoley.plan import plan_clip
from dataprep.synthfoley.sound import synthesize_audio
from v2s_models.metrics.alignment import (
    VIDEO_FRAME_S,
    av_offset_ms,
    detect_onsets,
    envelope_offset_ms,
    events_to_envelope,
    match_onsets,
    onset_envelope,
    onset_prf,
)

SR = 22050


def _impacts(onsets: list[float], duration: float = 4.0, seed: int = 0) -> np.ndarray:
    """Decaying 600 Hz impacts at `onsets` over low-passed noise (34 dB below the impacts' peak)."""
    rng = np.random.default_rng(seed)
    n = int(duration * SR)
    noise = rng.standard_normal(n)
    noise = np.convolve(noise, np.ones(4) / 4, mode="same")
    x = 0.01 * noise / np.abs(noise).max()
    t = np.arange(int(0.3 * SR)) / SR
    hit = np.sin(2 * np.pi * 600 * t) * 10 ** (-3 * t / 0.12)
    for o in onsets:
        k = int(round(o * SR))
        m = min(len(hit), n - k)
        x[k : k + m] += 0.5 * hit[:m]
    return x.astype(np.float32)


ONSETS = [0.3, 0.9, 1.45, 2.2, 2.8, 3.5]


def test_detects_impacts_within_a_video_frame() -> None:
    det = detect_onsets(_impacts(ONSETS), SR)
    assert len(det) == len(ONSETS), f"{det=}"
    assert np.max(np.abs(det - np.array(ONSETS))) < 0.015, f"{det=}"


def test_identical_signals_offset_zero_f1_one() -> None:
    x = _impacts(ONSETS)
    det = detect_onsets(x, SR)
    assert onset_prf(det, detect_onsets(x.copy(), SR))["onset_f1"] == 1.0
    assert av_offset_ms(x, SR, reference=x) == pytest.approx(0.0, abs=1e-9)


def test_delay_of_100_ms() -> None:
    ref = _impacts(ONSETS)
    late = np.concatenate([np.zeros(int(0.1 * SR), np.float32), ref])[: len(ref)]
    offset = av_offset_ms(late, SR, reference=ref)
    assert offset == pytest.approx(100.0, abs=12.0)
    assert av_offset_ms(ref, SR, reference=late) == pytest.approx(-100.0, abs=12.0)  # early is negative
    prf = onset_prf(detect_onsets(ref, SR), detect_onsets(late, SR), tolerance=0.046)
    assert prf["onset_f1"] == 0.0


def test_offset_against_ground_truth_events() -> None:
    x = _impacts(ONSETS)
    assert av_offset_ms(x, SR, reference_onsets=ONSETS) == pytest.approx(0.0, abs=12.0)
    shifted = [o - 0.06 for o in ONSETS]  # the audio comes 60 ms after these events
    assert av_offset_ms(x, SR, reference_onsets=shifted) == pytest.approx(60.0, abs=12.0)
    env, rate = onset_envelope(x, SR)
    gt_env = events_to_envelope(ONSETS, len(x) / SR, rate)
    assert abs(len(gt_env) - len(env)) <= 2
    assert np.argmax(gt_env) == round(ONSETS[0] * rate) or gt_env[round(ONSETS[0] * rate)] == gt_env.max()
    assert np.isnan(envelope_offset_ms(np.ones(50), np.ones(50), rate))


def test_onset_prf_known_answers() -> None:
    ref = [1.0, 2.0, 3.0]
    assert onset_prf(ref, [1.02, 2.3, 3.0, 4.0]) == pytest.approx(
        {"onset_precision": 0.5, "onset_recall": 2 / 3, "onset_f1": 4 / 7}
    )
    # One estimate cannot match two references.
    assert match_onsets([1.0, 1.04], [1.02], tolerance=VIDEO_FRAME_S) == 1
    assert onset_prf([], [])["onset_f1"] == 1.0
    assert onset_prf(ref, [])["onset_f1"] == 0.0


def test_matching_is_maximum() -> None:
    """The in-order matching equals a maximum bipartite matching (Hungarian algorithm) on random cases."""
    rng = np.random.default_rng(0)
    for _ in range(300):
        ref = np.sort(rng.uniform(0, 1, rng.integers(0, 7)))
        est = np.sort(rng.uniform(0, 1, rng.integers(0, 7)))
        tol = 0.1
        hit = np.abs(ref[:, None] - est[None, :]) <= tol
        rows, cols = linear_sum_assignment(hit, maximize=True)
        best = int(hit[rows, cols].sum())
        assert match_onsets(ref, est, tol) == best, f"{ref=} {est=}"


def test_synthfoley_clip_onsets() -> None:
    """A real SynthFoley soundtrack (impacts over background noise): every visible onset is found."""
    plan = plan_clip(seed=0, category="hammer", index=0, size="tiny")
    wave = synthesize_audio(plan)[0]
    truth = [e.onset_s for e in plan.events]
    prf = onset_prf(truth, detect_onsets(wave, plan.sample_rate))
    assert prf["onset_recall"] == 1.0 and prf["onset_f1"] >= 0.9, f"{prf=}"
    assert abs(av_offset_ms(wave, plan.sample_rate, reference_onsets=truth)) < 15.0
