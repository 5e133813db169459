"""The timbre estimator (v2s_models/metrics/timbre_estimate.py) on synthetic strikes of known pitch, brightness
and decay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from v2s_models.metrics.timbre_estimate import (
    estimate_decay,
    estimate_pitch,
    estimate_timbre,
    spectral_centroid,
)

SR = 22050


def strikes(
    pitch: float, decay: float, *, partial: float = 0.0, onsets=(0.3, 1.1, 1.9), seconds: float = 2.6
):
    """Decaying sines (T60 = decay) at `onsets`, a second partial at 3x the pitch with amplitude `partial`,
    over a quiet white noise (seeded)."""
    rng = np.random.default_rng(0)
    x = 1e-3 * rng.standard_normal(int(seconds * SR))
    for t0 in onsets:
        i = int(t0 * SR)
        t = np.arange(x.shape[0] - i) / SR
        env = 10.0 ** (-3.0 * t / decay)
        x[i:] += env * (np.sin(2 * math.pi * pitch * t) + partial * np.sin(2 * math.pi * 3 * pitch * t))
    return x


@pytest.mark.parametrize("pitch", [80.0, 440.0, 1500.0])
def test_pitch_of_strikes(pitch: float) -> None:
    est = estimate_pitch(strikes(pitch, 0.3), SR, fmin=50.0, fmax=2500.0)
    assert abs(1200 * math.log2(est / pitch)) < 30, f"{pitch=} {est=}"


def test_pitch_range_excludes_a_stronger_partial() -> None:
    x = strikes(500.0, 0.3, partial=2.0)
    assert abs(estimate_pitch(x, SR, fmin=400.0, fmax=1000.0) - 500.0) < 10
    assert abs(estimate_pitch(x, SR) - 1500.0) < 30  # unrestricted, the stronger partial wins


@pytest.mark.parametrize("decay", [0.1, 0.25, 0.5])
def test_decay_of_strikes(decay: float) -> None:
    est = estimate_decay(strikes(300.0, decay), SR, pitch_hz=300.0)
    assert abs(est - decay) / decay < 0.2, f"{decay=} {est=}"


def test_centroid_rises_with_brightness() -> None:
    centroids = [spectral_centroid(strikes(300.0, 0.3, partial=p), SR) for p in (0.0, 0.5, 1.5)]
    assert centroids[0] < centroids[1] < centroids[2], centroids
    assert abs(centroids[0] - 300.0) < 60


def test_silence_and_stationary_noise_have_no_events() -> None:
    rng = np.random.default_rng(1)
    for x in (np.zeros(SR), 0.1 * rng.standard_normal(2 * SR)):
        est = estimate_timbre(x, SR)
        assert all(math.isnan(v) for v in est.as_dict().values()), est
