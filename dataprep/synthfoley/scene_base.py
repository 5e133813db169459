"""What every SynthFoley scene shares: the reserved colours, palettes, the `_Scene` base class (background,
mirroring, frame loop) and the swing timing of the striking actors. The scenes: `scenes.py`, `scenes_voices.py`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np

from dataprep.synthfoley import draw
from dataprep.synthfoley.draw import Color
from dataprep.synthfoley.plan import ClipPlan

TIP_YELLOW: Color = (250, 215, 40)
HEAD_BLUE: Color = (60, 100, 235)
BALL_RED: Color = (235, 45, 35)
FLASH_CORE: Color = (255, 245, 120)
BURST_WHITE: Color = (255, 255, 255)
MOUTH_CRIMSON: Color = (190, 15, 50)
BALL_GRAVITY_H = 26.0  # frame heights per second squared

SKIN_TONES: tuple[Color, ...] = ((240, 200, 170), (215, 165, 125), (165, 115, 85), (115, 80, 60))
FUR_COLORS: tuple[Color, ...] = ((150, 100, 55), (110, 80, 60), (190, 160, 120), (95, 95, 95), (70, 55, 45))
FIREWORK_COLORS: tuple[Color, ...] = (
    (255, 60, 60),
    (60, 255, 90),
    (80, 140, 255),
    (255, 200, 40),
    (220, 80, 255),
)


def _jitter(rng: np.random.Generator, color: Color, amount: int = 15) -> Color:
    c = np.clip(np.asarray(color) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _muted(rng: np.random.Generator, lo: int = 60, hi: int = 170) -> Color:
    """A low-saturation colour for props, far from every reserved colour."""
    return _jitter(rng, (int(rng.integers(lo, hi)),) * 3, 20)


class _Scene:
    def __init__(self, *, plan: ClipPlan) -> None:
        self.plan = plan
        self.h, self.w = plan.height, plan.width
        self.u = plan.height / 120.0
        self.rng = plan.rng(1)
        self.background = np.zeros((self.h, self.w, 3), np.uint8)
        self._cache: dict[Hashable, np.ndarray] = {}

    def xpre(self, frac: float) -> float:
        """Pixel x, before the mirror flip, of a final horizontal position `frac`."""
        return (1.0 - frac if self.plan.mirror else frac) * self.w

    def _clutter(self, img: np.ndarray, y0: float, y1: float, count: int) -> None:
        for _ in range(count):
            cw, ch = self.rng.uniform(0.08, 0.2) * self.w, self.rng.uniform(0.1, 0.25) * self.h
            x, y = self.rng.uniform(0, self.w - cw), self.rng.uniform(y0, max(y0, y1 - ch))
            draw.rect(img, x, y, x + cw, y + ch, _muted(self.rng))

    def draw(self, img: np.ndarray, j: int) -> None:
        raise NotImplementedError

    def state(self, j: int) -> Hashable | None:
        """A key such that frames with equal keys are identical (None: frame j is unique)."""
        return None

    def frame(self, j: int) -> np.ndarray:
        """Frame `j` as an (H, W, 3) uint8 RGB array (read-only: frames at rest are shared)."""
        key = self.state(j)
        if key is not None and key in self._cache:
            return self._cache[key]
        img = self.background.copy()
        self.draw(img, j)
        img = np.ascontiguousarray(img[:, ::-1]) if self.plan.mirror else img
        img.flags.writeable = False
        if key is not None and len(self._cache) < 16:
            self._cache[key] = img
        return img


def _swing_angles(plan: ClipPlan, up: float, contact: float) -> np.ndarray:
    """Striker angle per frame: resting at `up`, accelerating into `contact` on onset frames, rebounding."""
    phi = np.full(plan.num_frames, up)
    post = max(2, math.ceil(0.1 * plan.fps))
    for e in plan.events:
        k, lead = e.onset_frame, e.lead_frames
        for j in range(k - lead, k + 1):
            p = (j - (k - lead)) / lead
            phi[j] = up + (contact - up) * p * p
        for j in range(k + 1, min(k + post + 1, plan.num_frames)):
            q = (j - k) / post
            phi[j] = contact + (up - contact) * (1.0 - (1.0 - q) ** 2)
    return phi
