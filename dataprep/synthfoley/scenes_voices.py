"""The SynthFoley scenes with a mouth (dog_bark, cough, cry): the mouth (crimson) is open from the onset frame
to `end_frame` (exclusive). Conventions of every scene: `scenes.py`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np

from dataprep.synthfoley import draw
from dataprep.synthfoley.plan import ClipPlan
from dataprep.synthfoley.scene_base import FUR_COLORS, MOUTH_CRIMSON, SKIN_TONES, _jitter, _muted, _Scene


def _mouth_openness(plan: ClipPlan) -> np.ndarray:
    """Per-frame mouth opening in [0, 1]; > 0 exactly on frames [onset_frame, end_frame) of each event."""
    o = np.zeros(plan.num_frames)
    for e in plan.events:
        n = e.end_frame - e.onset_frame
        for i, j in enumerate(range(e.onset_frame, e.end_frame)):
            if plan.category == "cry":
                o[j] = 0.85 + 0.15 * math.sin(2 * math.pi * 2.5 * i / plan.fps)
            else:
                o[j] = 1.0 if i < 0.6 * n else 0.8
    return o


class DogScene(_Scene):
    """A dog's head in profile in a yard; its jaw drops open (crimson mouth) for each bark."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, w, u, rng = self.h, self.w, self.u, self.rng
        img = draw.vertical_gradient(h, w, _jitter(rng, (150, 190, 230)), _jitter(rng, (185, 210, 235)))
        draw.rect(img, 0, 0.72 * h, w, h, _jitter(rng, (80, 140, 70)))
        for _ in range(int(rng.integers(0, 3))):  # fence posts
            fx = rng.uniform(0, w)
            draw.rect(img, fx, 0.5 * h, fx + 4 * u, 0.75 * h, _muted(rng, 120, 170))
        self.background = img
        self.o = _mouth_openness(plan)
        self.hx = self.xpre(plan.actor_x) - 22 * u
        self.hy = 0.42 * h
        fur = FUR_COLORS[int(rng.integers(0, len(FUR_COLORS)))]
        self.fur = _jitter(rng, fur, 8)
        self.ear = tuple(max(0, c - 35) for c in self.fur)
        self.collar = _jitter(rng, (40, 80, 200))

    def state(self, j: int) -> Hashable | None:
        return float(self.o[j])

    def draw(self, img: np.ndarray, j: int) -> None:
        u, h, o = self.u, self.h, self.o[j]
        hx, hy = self.hx + 1.5 * u * o, self.hy - 2 * u * o  # the head jerks up and forward on a bark
        draw.polygon(
            img,
            np.array(
                [(hx - 12 * u, hy + 5 * u), (hx + 8 * u, hy + 10 * u), (hx + 15 * u, h), (hx - 35 * u, h)]
            ),
            self.fur,
        )
        draw.segment(img, (hx - 11 * u, hy + 14 * u), (hx + 9 * u, hy + 18 * u), 3 * u, self.collar)
        draw.circle(img, hx, hy, 16 * u, self.fur)
        draw.ellipse(img, hx - 5 * u, hy + 4 * u, 5.5 * u, 13 * u, self.ear, angle=0.3)
        draw.ellipse(img, hx + 16 * u, hy + 3 * u - 1.5 * u * o, 14 * u, 6.5 * u, self.fur)
        hinge = (hx + 6 * u, hy + 8 * u)
        if o > 0:
            a = 0.55 * o
            upper = (hx + 27 * u, hy + 7.5 * u - 1.5 * u * o)
            lower = (hinge[0] + 22 * u * math.cos(a), hinge[1] + 22 * u * math.sin(a))
            draw.polygon(img, np.array([hinge, upper, lower]), MOUTH_CRIMSON)
            mid = ((hinge[0] + lower[0]) / 2, (hinge[1] + lower[1]) / 2 + 1.5 * u)
            draw.ellipse(img, mid[0], mid[1], 11 * u, 2.5 * u, self.fur, angle=a)
        else:
            draw.segment(img, hinge, (hx + 27 * u, hy + 7.5 * u), 1.2 * u, (50, 35, 30))
        draw.circle(img, hx + 29 * u, hy - 1.5 * u * o, 2.8 * u, (20, 20, 20))
        draw.circle(img, hx + 5 * u, hy - 5 * u, 2.2 * u, (20, 20, 20))


class CoughScene(_Scene):
    """A person facing the camera; for each cough the mouth opens, the head jerks and a fist rises."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, w, rng = self.h, self.w, self.rng
        img = draw.vertical_gradient(h, w, _jitter(rng, (200, 195, 180)), _jitter(rng, (170, 160, 150)))
        self._clutter(img, 0.05 * h, 0.5 * h, int(rng.integers(1, 3)))
        self.background = img
        self.o = _mouth_openness(plan)
        self.hx, self.hy = self.xpre(plan.actor_x), 0.42 * h
        self.skin = _jitter(rng, SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))], 8)
        self.dark_skin = tuple(max(0, c - 30) for c in self.skin)
        self.hair = _jitter(
            rng, [(40, 30, 25), (90, 60, 30), (150, 120, 70), (60, 60, 60)][int(rng.integers(0, 4))], 8
        )
        self.shirt = _muted(rng, 50, 160)

    def state(self, j: int) -> Hashable | None:
        return float(self.o[j])

    def draw(self, img: np.ndarray, j: int) -> None:
        u, h, o = self.u, self.h, self.o[j]
        hx, hy = self.hx, self.hy + 3 * u * o
        draw.ellipse(img, self.hx, h + 5 * u, 42 * u, 30 * u, self.shirt)
        draw.rect(img, self.hx - 6 * u, self.hy + 12 * u, self.hx + 6 * u, self.hy + 30 * u, self.skin)
        draw.ellipse(img, hx, hy - 8 * u, 17 * u, 14 * u, self.hair)
        for side in (-1, 1):
            draw.circle(img, hx + side * 16 * u, hy, 3.5 * u, self.skin)
        draw.ellipse(img, hx, hy + 2 * u, 16 * u, 19 * u, self.skin)
        for side in (-1, 1):
            ex, ey = hx + side * 6 * u, hy - 3 * u
            if o > 0:  # eyes squeezed shut, brows pulled down
                draw.segment(img, (ex - 2.5 * u, ey), (ex + 2.5 * u, ey), 1.2 * u, (40, 30, 30))
                draw.segment(
                    img,
                    (ex - 3 * u * side, ey - 5 * u),
                    (ex + 3 * u * side, ey - 3.5 * u),
                    1.2 * u,
                    self.hair,
                )
            else:
                draw.ellipse(img, ex, ey, 2 * u, 2.5 * u, (40, 30, 30))
                draw.segment(img, (ex - 3 * u, ey - 5 * u), (ex + 3 * u, ey - 5.5 * u), 1.2 * u, self.hair)
        draw.ellipse(img, hx, hy + 4 * u, 1.8 * u, 3 * u, self.dark_skin)
        my = hy + 11 * u
        if o > 0:
            draw.ellipse(img, hx, my, 6.5 * u, 6 * u * o + 1.2 * u, (150, 70, 70))
            draw.ellipse(img, hx, my, 5.5 * u * (0.8 + 0.2 * o), 5 * u * o, MOUTH_CRIMSON)
            draw.circle(img, hx - 14 * u, hy + 20 * u, 5 * u, self.dark_skin)  # a fist rises toward the mouth
        else:
            draw.segment(img, (hx - 4.5 * u, my), (hx + 4.5 * u, my), 1.4 * u, (120, 60, 60))


class CryScene(_Scene):
    """A baby's face in a nursery; the mouth stays wide open, eyes shut and tears run, while it cries."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, w, u, rng = self.h, self.w, self.u, self.rng
        img = draw.vertical_gradient(h, w, _jitter(rng, (220, 200, 220)), _jitter(rng, (200, 210, 230)))
        bar = _jitter(rng, (200, 170, 130), 10)
        for bx in np.arange(rng.uniform(0, 12 * u), w, 12 * u):  # crib bars behind the baby
            draw.rect(img, bx, 0.1 * h, bx + 2.5 * u, h, bar)
        self.background = img
        self.o = _mouth_openness(plan)
        self.start = np.full(plan.num_frames, -1)
        for e in plan.events:
            self.start[e.onset_frame : e.end_frame] = e.onset_frame
        self.hx, self.hy = self.xpre(plan.actor_x), 0.45 * h
        self.skin = _jitter(rng, (250, 210, 195), 6)
        self.onesie = _jitter(
            rng, [(170, 200, 230), (230, 200, 140), (190, 230, 190)][int(rng.integers(0, 3))], 10
        )

    def state(self, j: int) -> Hashable | None:
        return "rest" if self.o[j] == 0 else None  # tears run while crying

    def draw(self, img: np.ndarray, j: int) -> None:
        u, h, o, fps = self.u, self.h, self.o[j], self.plan.fps
        hx, hy = self.hx, self.hy
        draw.ellipse(img, hx, h + 2 * u, 32 * u, 24 * u, self.onesie)
        for side in (-1, 1):
            draw.circle(img, hx + side * 21 * u, hy + 2 * u, 4 * u, self.skin)
        draw.ellipse(img, hx, hy, 22 * u, 21 * u, self.skin)
        draw.segment(img, (hx - 2 * u, hy - 20 * u), (hx + 2 * u, hy - 23 * u), 1.5 * u, (140, 100, 60))
        for side in (-1, 1):
            draw.ellipse(img, hx + side * 13 * u, hy + 6 * u, 4.5 * u, 3 * u, (240, 165, 160), alpha=0.6)
            ex, ey = hx + side * 8 * u, hy - 3 * u
            if o > 0:  # eyes squeezed shut, tears running
                draw.segment(img, (ex - 3 * u, ey - 1 * u), (ex, ey + 1 * u), 1.2 * u, (60, 40, 40))
                draw.segment(img, (ex, ey + 1 * u), (ex + 3 * u, ey - 1 * u), 1.2 * u, (60, 40, 40))
                tau = (j - self.start[j]) / fps
                for lag in (0.0, 0.4):
                    drop = ((tau + lag) * 25 * u) % (18 * u)
                    draw.ellipse(
                        img, ex + side * 1.5 * u, ey + 3 * u + drop, 1.5 * u, 2.5 * u, (70, 150, 255)
                    )
            else:
                draw.circle(img, ex, ey, 2.5 * u, (40, 30, 30))
        my = hy + 10 * u
        if o > 0:
            draw.ellipse(img, hx, my, 8 * u, 7 * u * o, MOUTH_CRIMSON)
        else:
            draw.segment(img, (hx - 3.5 * u, my), (hx + 3.5 * u, my + 0.5 * u), 1.3 * u, (160, 80, 80))
