"""Windows over inputs of any length, and the cross-fades that join them (used by generation and vocoding).

Any length. The models were trained on windows of `data_settings.duration` (10 s: 215 frames at 21.5 fps).
- Shorter inputs are fitted to one window the way training clips were (`pad_mode`: looped, or zero-padded with
  black frames), generated once, and the output cut to the input's length.
- Longer inputs are covered by full-length windows overlapping by at least `overlap_s` (default 2 s), spread
  evenly from the first frame to the last (`plan_windows`), generated as one batch. Consecutive windows are
  cross-faded over `fade` frames (= the overlap, or less where windows are closer than that) centred in their
  overlap, so each window contributes its middle, away from the edges where its convolutions and LSTMs saw
  padding. The weights of the two windows at a seam sum to one (linear) or their squares do (equal power).
- Where the cross-fade happens: for `gan_mel` on the mel, linearly. The mel is already log-compressed, so a
  linear fade of [0, 1] log-mels is a geometric interpolation of magnitudes; the vocoder then runs once over
  the whole mel, so there is no phase seam (cross-fading two independently vocoded waveforms would leave one
  wherever their phases disagree). For `autoregressive` the windows are independent random waveforms, which
  only the waveform can blend; their sum is uncorrelated, so the fade is equal-power (constant loudness; a
  linear fade would dip by 3 dB mid-seam).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

Curve = Literal["linear", "equal_power"]
CURVES: tuple[str, ...] = ("linear", "equal_power")


@dataclass(frozen=True)
class WindowPlan:
    """How an input of `total` frames is covered by windows of `window` frames.

    starts: first frame of each window (the last window ends at `total`; a single window when total <= window,
    then the input is fitted to it). seams: (start, end) of the cross-fade between window i and i + 1, `fade`
    frames long, centred in their overlap.
    """

    total: int
    window: int
    starts: tuple[int, ...]
    fade: int
    seams: tuple[tuple[int, int], ...]

    @property
    def num_windows(self) -> int:
        return len(self.starts)

    def scaled(self, factor: float, total: int) -> WindowPlan:
        """The same plan in another unit (mel frames: factor 4; samples: sample_rate / fps), `total` long."""
        starts = tuple(int(round(s * factor)) for s in self.starts)
        seams = tuple((int(round(a * factor)), int(round(b * factor))) for a, b in self.seams)
        fade = seams[0][1] - seams[0][0] if seams else 0
        seams = tuple((a, a + fade) for a, _ in seams)  # equal lengths despite rounding
        return WindowPlan(
            total=total, window=int(round(self.window * factor)), starts=starts, fade=fade, seams=seams
        )

    def used_end(self, i: int) -> int:
        """End (exclusive) of the part of window i that reaches the output: its right seam's end, or the end."""
        end = self.seams[i][1] if i < len(self.seams) else self.total
        return min(end, self.starts[i] + self.window)


def plan_windows(total: int, window: int, overlap: int) -> WindowPlan:
    """Covers `total` frames with windows of `window` frames overlapping by at least `overlap` frames.

    n = ceil((total - overlap) / (window - overlap)) windows (at least 2), starts spread evenly over
    [0, total - window]; the fade is `overlap`, less only where two windows overlap by less (rounding) or where
    consecutive seams would touch (inputs barely longer than two windows).
    """
    if total < 1 or window < 1:
        raise ValueError(f"plan_windows needs positive lengths, got {total=}, {window=}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window), got {overlap=} for {window=}")
    if total <= window:
        return WindowPlan(total=total, window=window, starts=(0,), fade=0, seams=())
    n = math.ceil((total - overlap) / (window - overlap))
    n = max(n, 2)
    starts = tuple(int(s) for s in np.round(np.linspace(0, total - window, n)).astype(np.int64))
    hops = np.diff(starts)
    fade = min(overlap, window - int(hops.max()))
    if n > 2:  # seams i and i + 1 are (s[i + 2] - s[i]) / 2 apart: keep them from touching
        fade = min(fade, int((np.asarray(starts[2:]) - np.asarray(starts[:-2])).min()) // 2)
    seams = []
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        lo = (b + a + window - fade) // 2  # centred in the overlap [b, a + window)
        seams.append((lo, lo + fade))
    plan = WindowPlan(total=total, window=window, starts=starts, fade=fade, seams=tuple(seams))
    for i, (lo, hi) in enumerate(plan.seams):
        assert starts[i + 1] <= lo and hi <= starts[i] + window, f"{plan=}"
        assert i == 0 or plan.seams[i - 1][1] <= lo, f"{plan=}"
    return plan


def _ramp(fade: int, curve: Curve) -> np.ndarray:
    """Rising weights (fade,) for the incoming window; the outgoing one gets the complement."""
    r = (np.arange(fade) + 0.5) / fade
    return np.sin(0.5 * np.pi * r) if curve == "equal_power" else r


def window_weights(plan: WindowPlan, curve: Curve = "linear") -> np.ndarray:
    """(num_windows, window) float64 weights of each window's samples in the output.

    1 inside the part a window owns, a ramp over its seams, 0 beyond them. At every output position the weights
    of the windows covering it sum to 1 ("linear") or their squares do ("equal_power").
    """
    if curve not in CURVES:
        raise ValueError(f"unknown cross-fade curve {curve!r}; known: {list(CURVES)}")
    up = _ramp(plan.fade, curve)
    down = (
        np.cos(0.5 * np.pi * (np.arange(plan.fade) + 0.5) / plan.fade) if curve == "equal_power" else 1 - up
    )
    weights = np.zeros((plan.num_windows, plan.window))
    for i, s in enumerate(plan.starts):
        lo = plan.seams[i - 1][0] - s if i > 0 else 0
        hi = plan.seams[i][1] - s if i < len(plan.seams) else plan.window
        weights[i, lo:hi] = 1.0
        if i > 0:
            weights[i, lo : lo + plan.fade] = up
        if i < len(plan.seams):
            weights[i, hi - plan.fade : hi] = down
    return weights


def crossfade(chunks: Tensor, plan: WindowPlan, curve: Curve = "linear") -> Tensor:
    """Joins window outputs: chunks (N, C, L >= plan.window) at plan.starts -> (C, plan.total).

    Chunks longer than the window (never the case here) are cut; positions past `plan.total` are dropped.
    """
    n, c, length = chunks.shape
    assert n == plan.num_windows and length >= plan.window, f"{chunks.shape=} {plan=}"
    weights = torch.as_tensor(window_weights(plan, curve), dtype=chunks.dtype, device=chunks.device)
    out = chunks.new_zeros(c, max(plan.total, max(plan.starts) + plan.window))
    for i, s in enumerate(plan.starts):
        out[:, s : s + plan.window] += chunks[i, :, : plan.window] * weights[i]
    return out[:, : plan.total]


# ---------------------------------------------------------------------------------------------------------
# Models and vocoders
