"""Up-sampling artifacts in a generated mel: the frame-energy ripple at the decoder's up-sampling periods.

A decoder that up-samples by transposed convolutions (REGNET: two k4 s2 steps, 4 mel frames per video frame) can
leave a pattern that repeats every 2 and 4 mel frames across every band ("checkerboard artifacts"). It shows in
the frame-energy curve e[t] (the mean over mel bands of frame t) as spectral peaks at 1/2 and 1/4 cycles per
frame. `ripple_fraction` is the share of e's variance that sits at those frequencies; real audio has no reason to
put more there than its neighbouring frequencies, so a generated mel whose fraction is many times the real one's
carries the artifact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

UPSAMPLE_PERIODS: tuple[int, ...] = (2, 4)


def frame_energy(mel: np.ndarray) -> np.ndarray:
    """(n_mels, L) mel, in any scale that is monotone in energy (RegNet's normalised log-mel) -> (L,) mean per frame."""
    if mel.ndim != 2:
        raise ValueError(f"expected a (n_mels, frames) mel, got shape {mel.shape}")
    return mel.astype(np.float64).mean(axis=0)


def ripple_fraction(mel: np.ndarray, periods: Sequence[int] = UPSAMPLE_PERIODS) -> float:
    """Share of the frame-energy curve's variance at the given periods (in frames), in [0, 1].

    The curve is mean-removed and Hann-windowed; the power at each period is summed over the rFFT bin nearest to
    1/period cycles per frame and its two neighbours (the window spreads a pure tone over three bins). A flat curve
    (no variance) gives 0.
    """
    e = frame_energy(mel)
    n = e.shape[0]
    if n < 2 * max(periods):
        raise ValueError(
            f"need at least {2 * max(periods)} frames to measure periods {tuple(periods)}, got {n}"
        )
    x = (e - e.mean()) * np.hanning(n)
    power = np.abs(np.fft.rfft(x)) ** 2
    power[0] = 0.0
    total = power.sum()
    if total <= 0.0:
        return 0.0
    bins: set[int] = set()
    for period in periods:
        centre = int(round(n / period))
        bins.update(b for b in (centre - 1, centre, centre + 1) if 0 < b < power.shape[0])
    return float(power[sorted(bins)].sum() / total)
