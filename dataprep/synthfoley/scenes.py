"""The eight SynthFoley scenes: a visible actor per category, drawn with numpy, frame by frame.

Each scene draws in "unmirrored" coordinates (the actor comes from the left) and flips the frame when the
plan says `mirror`; sizes scale with the frame height (`u = H / 120`). The contact, flash, burst or mouth
opening of each event is first visible exactly on `event.onset_frame`, and nowhere else:
- drum / hammer: the stick tip (yellow) / hammer head (blue) reaches its lowest point only on contact frames;
  the swing accelerates into the contact and rebounds right after.
- bouncing_ball: a red ball under gravity (26 H/s^2) whose parabolas meet the floor exactly on the contact
  frames, where it is drawn squashed; after the last bounce it flies out of the top of the frame.
- gun: a muzzle flash (pale yellow core) on the shot frame and, smaller, the next one; then recoil, smoke.
- fireworks: a rocket rises during the run-up, a white flash marks the burst frame, particles fade afterwards.
- dog_bark / cough / cry: the mouth (crimson) is open from the onset frame to `end_frame` (exclusive).
Reserved colours (the tests find actors by them): stick tip yellow, hammer head blue, ball red, muzzle flash
pale yellow, burst flash white, mouth crimson; backgrounds and props stay clear of them.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator

import numpy as np

from dataprep.synthfoley import draw
from dataprep.synthfoley.draw import Color
from dataprep.synthfoley.plan import ClipPlan
from dataprep.synthfoley.scene_base import (
    BALL_GRAVITY_H,
    BALL_RED,
    BURST_WHITE,
    FIREWORK_COLORS,
    FLASH_CORE,
    HEAD_BLUE,
    SKIN_TONES,
    TIP_YELLOW,
    _jitter,
    _muted,
    _Scene,
    _swing_angles,
)
from dataprep.synthfoley.scenes_voices import CoughScene, CryScene, DogScene


class DrumScene(_Scene):
    """A drum on a stage; a hand swings a stick whose yellow tip strikes the drum head."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, u, rng = self.h, self.u, self.rng
        img = draw.vertical_gradient(h, self.w, _jitter(rng, (70, 60, 90)), _jitter(rng, (40, 35, 50)))
        self._clutter(img, 0.05 * h, 0.5 * h, int(rng.integers(0, 3)))
        floor_y = 0.9 * h
        draw.rect(img, 0, floor_y, self.w, h, _jitter(rng, (90, 60, 40)))
        x_c = self.xpre(plan.actor_x)
        rx = 20 * u
        x_d, ry = x_c + 0.35 * rx, 0.3 * rx
        y_head = floor_y - 2 * u - 30 * u
        body = [(150, 30, 40), (30, 60, 140), (40, 110, 60), (120, 120, 130)][int(rng.integers(0, 4))]
        body = _jitter(rng, body, 10)
        draw.ellipse(img, x_d, floor_y - 2 * u, rx, ry, body)
        draw.rect(img, x_d - rx, y_head, x_d + rx, floor_y - 2 * u, body)
        draw.ellipse(img, x_d, y_head, rx + 1.5 * u, ry + 1.0 * u, (60, 60, 60))
        draw.ellipse(img, x_d, y_head, rx, ry, _jitter(rng, (225, 215, 190), 8))
        self.background = img
        self.head = (x_d, y_head, rx, ry)
        self.r_tip = 3.5 * u
        self.contact = (x_c, y_head - 0.5 * self.r_tip)
        self.length = 45 * u
        phi_c = math.radians(rng.uniform(25, 45))
        phi_up = phi_c - math.radians(rng.uniform(50, 70))
        self.pivot = (
            self.contact[0] - self.length * math.cos(phi_c),
            self.contact[1] - self.length * math.sin(phi_c),
        )
        self.phi = _swing_angles(plan, phi_up, phi_c)
        self.onsets = {e.onset_frame for e in plan.events}
        self.skin = _jitter(rng, SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))], 8)
        self.sleeve = _muted(rng)
        self.wood = _jitter(rng, (150, 100, 50))

    def state(self, j: int) -> Hashable | None:
        return (float(self.phi[j]), j in self.onsets)

    def draw(self, img: np.ndarray, j: int) -> None:
        u = self.u
        if j in self.onsets:  # the struck head lights up for the contact frame
            x_d, y_head, rx, ry = self.head
            draw.ellipse(img, x_d, y_head, rx, ry, (245, 238, 220))
        px, py = self.pivot
        tip = (px + self.length * math.cos(self.phi[j]), py + self.length * math.sin(self.phi[j]))
        draw.segment(img, (px - 40 * u, py + 35 * u), (px, py), 7 * u, self.sleeve)
        draw.segment(img, (px, py), tip, 2.5 * u, self.wood)
        draw.circle(img, px, py, 4.5 * u, self.skin)
        draw.circle(img, tip[0], tip[1], self.r_tip, TIP_YELLOW)


class HammerScene(_Scene):
    """An anvil in a workshop; a hammer with a blue steel head swings down onto it."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, u, rng = self.h, self.u, self.rng
        img = draw.vertical_gradient(h, self.w, _jitter(rng, (150, 140, 120)), _jitter(rng, (110, 100, 90)))
        self._clutter(img, 0.05 * h, 0.45 * h, int(rng.integers(1, 4)))
        floor_y = 0.92 * h
        draw.rect(img, 0, floor_y, self.w, h, _jitter(rng, (80, 70, 60)))
        x_c = self.xpre(plan.actor_x)
        y_top = rng.uniform(0.62, 0.68) * h
        x_a = x_c + 5 * u
        steel = _jitter(rng, (65, 65, 72), 6)
        draw.polygon(
            img,
            np.array(
                [
                    (x_a - 12 * u, floor_y),
                    (x_a + 12 * u, floor_y),
                    (x_a + 7 * u, y_top + 16 * u),
                    (x_a - 7 * u, y_top + 16 * u),
                ]
            ),
            steel,
        )
        draw.rect(img, x_a - 8 * u, y_top + 6 * u, x_a + 8 * u, y_top + 17 * u, steel)
        draw.rect(img, x_a - 20 * u, y_top, x_a + 20 * u, y_top + 7 * u, steel)
        draw.polygon(
            img,
            np.array([(x_a + 20 * u, y_top), (x_a + 34 * u, y_top + 1.5 * u), (x_a + 20 * u, y_top + 7 * u)]),
            steel,
        )
        self.background = img
        self.hl, self.ht = 9 * u, 4.5 * u
        phi_c = math.radians(rng.uniform(0, 12))
        lowest = self.hl * math.cos(phi_c) + self.ht * math.sin(phi_c)
        self.contact = (x_c, y_top - lowest)
        self.length = 42 * u
        self.pivot = (
            self.contact[0] - self.length * math.cos(phi_c),
            self.contact[1] - self.length * math.sin(phi_c),
        )
        self.phi = _swing_angles(plan, phi_c - math.radians(rng.uniform(65, 85)), phi_c)
        self.onsets = {e.onset_frame: e for e in plan.events}
        self.skin = _jitter(rng, SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))], 8)
        self.sleeve = _muted(rng)
        self.wood = _jitter(rng, (120, 80, 45))
        self.sparks = rng.uniform(-1, 1, size=(8, 2))

    def state(self, j: int) -> Hashable | None:
        return None if j in self.onsets or (j - 1) in self.onsets else float(self.phi[j])

    def draw(self, img: np.ndarray, j: int) -> None:
        u = self.u
        px, py = self.pivot
        d = (math.cos(self.phi[j]), math.sin(self.phi[j]))
        head = (px + self.length * d[0], py + self.length * d[1])
        draw.segment(img, (px - 40 * u, py + 40 * u), (px, py), 7 * u, self.sleeve)
        draw.segment(img, (px, py), head, 3.5 * u, self.wood)
        draw.circle(img, px, py, 4.5 * u, self.skin)
        draw.rotated_rect(img, head, (-d[1], d[0]), self.hl, self.ht, HEAD_BLUE)
        if j in self.onsets or (j - 1) in self.onsets:  # sparks fly from the contact for two frames
            spread = 6 * u if j in self.onsets else 11 * u
            x0, y0 = self.contact[0] + self.ht, self.contact[1] + self.hl
            xs = x0 + np.abs(self.sparks[:, 0]) * spread
            ys = y0 - np.abs(self.sparks[:, 1]) * spread
            draw.dots(
                img, xs, ys, max(1, round(u)), np.tile(np.array([(255, 170, 60)]), (8, 1)), np.full(8, 0.9)
            )


class BallScene(_Scene):
    """A red ball bouncing on a floor under gravity; squashed on each contact frame."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, u, rng = self.h, self.u, self.rng
        img = draw.vertical_gradient(h, self.w, _jitter(rng, (185, 190, 200)), _jitter(rng, (150, 155, 165)))
        self._clutter(img, 0.05 * h, 0.55 * h, int(rng.integers(0, 3)))
        self.floor_y = rng.uniform(0.8, 0.88) * h
        floor = [(160, 120, 80), (70, 120, 80), (120, 120, 125)][int(rng.integers(0, 3))]
        draw.rect(img, 0, self.floor_y, self.w, h, _jitter(rng, floor))
        draw.rect(img, 0, self.floor_y - 1.5 * u, self.w, self.floor_y, (90, 85, 80))
        self.background = img
        self.r = rng.uniform(6, 9) * u
        self.g = BALL_GRAVITY_H * h
        self.times = np.array([e.onset_s for e in plan.events])
        self.onsets = {e.onset_frame for e in plan.events}
        xs = np.array([self.xpre(e.x_frac) for e in plan.events])
        # Constant horizontal speed through the contact points (the plan draws them on one line).
        self.x0 = float(xs[0])
        self.vx = float((xs[-1] - xs[0]) / (self.times[-1] - self.times[0])) if len(xs) > 1 else 0.0
        # The ball is thrown in from above the frame before the first bounce, and after the last one it
        # rises out of the top and is caught off-screen: arcs whose apex is 1.1-1.6 frame heights up.
        self.t_before = self.times[0] - math.sqrt(8.0 * rng.uniform(1.1, 1.6) * h / self.g)
        self.t_after = self.times[-1] + math.sqrt(8.0 * rng.uniform(1.1, 1.6) * h / self.g)

    def x_at(self, t: float) -> float:
        return float(np.clip(self.x0 + self.vx * (t - self.times[0]), self.r, self.w - self.r))

    def height(self, t: float) -> float | None:
        """Height of the ball's bottom above the floor at time t (pixels); None while off-screen."""
        times = self.times
        if t <= times[0]:
            return 0.5 * self.g * (t - self.t_before) * (times[0] - t) if t > self.t_before else None
        i = int(np.searchsorted(times, t, side="right")) - 1
        t0 = times[i]
        if i + 1 == len(times) and t >= 0.5 * (t0 + self.t_after):
            return None  # past the apex of the last arc: caught
        t1 = times[i + 1] if i + 1 < len(times) else self.t_after
        return 0.5 * self.g * (t - t0) * (t1 - t)

    def draw(self, img: np.ndarray, j: int) -> None:
        t = j / self.plan.fps
        x, r = self.x_at(t), self.r
        if j in self.onsets:
            hgt, rx, ry = 0.0, 1.3 * r, 0.72 * r
        else:
            hgt, rx, ry = self.height(t), r, r
            if hgt is None:
                return
        cy = self.floor_y - hgt - ry
        shadow = max(0.2, 1.2 - hgt / self.h)
        draw.ellipse(img, x, self.floor_y + 1.5 * self.u, rx * shadow, 0.25 * r, (0, 0, 0), alpha=0.35)
        if cy + ry < -1:
            return  # above the frame
        draw.ellipse(img, x, cy, rx, ry, BALL_RED)
        draw.ellipse(img, x - 0.35 * rx, cy - 0.35 * ry, 0.3 * rx, 0.25 * ry, (250, 150, 135))


def _rotate(points: np.ndarray, angle: float, origin: tuple[float, float]) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return points @ rot.T + np.asarray(origin)


class GunScene(_Scene):
    """A pistol held at the side of a shooting range; each shot shows a muzzle flash, recoil and smoke."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, u, rng = self.h, self.u, self.rng
        img = draw.vertical_gradient(h, self.w, _jitter(rng, (110, 115, 105)), _jitter(rng, (80, 82, 78)))
        ground_y = 0.8 * h
        draw.rect(img, 0, ground_y, self.w, h, _jitter(rng, (90, 85, 70)))
        muzzle_x = self.xpre(plan.actor_x)
        self.grip = (muzzle_x - 30 * u, rng.uniform(0.45, 0.6) * h)
        tx = min(self.w - 14 * u, muzzle_x + 0.35 * self.w)
        ty = self.grip[1] - 8 * u
        draw.rect(img, tx - 2 * u, ty, tx + 2 * u, ground_y + 4 * u, (100, 75, 50))
        for i, col in enumerate([(235, 235, 235), (200, 40, 40), (235, 235, 235), (200, 40, 40)]):
            draw.circle(img, tx, ty, (13 - 3 * i) * u, col)
        self.background = img
        metal = _jitter(rng, (45, 45, 50), 6)
        self.parts: list[tuple[np.ndarray, Color]] = [
            (np.array([(-6, -7.5), (30, -7.5), (30, -1), (-6, -1)]) * u, _jitter(rng, (70, 70, 78), 6)),
            (np.array([(0, -1), (27, -1), (27, 1.5), (0, 1.5)]) * u, metal),
            (np.array([(-5, -1), (5, -1), (2, 17), (-9, 15)]) * u, metal),
        ]
        self.muzzle = np.array([(30 * u, -4.5 * u)])
        self.recoil = np.zeros(plan.num_frames)
        self.shots = {e.onset_frame for e in plan.events}
        smoke_f = max(2, round(0.5 * plan.fps))
        self.smoke: list[tuple[int, int]] = []
        for e in plan.events:
            k = e.onset_frame
            for jj in range(k, plan.num_frames):
                self.recoil[jj] = max(self.recoil[jj], 0.2 * math.exp(-(jj - k) / (0.06 * plan.fps)))
            self.smoke.append((k, smoke_f))
        self.recoil[self.recoil < 0.002] = 0.0
        self.busy = np.zeros(plan.num_frames, dtype=bool)  # flash, recoil or smoke on screen
        for k, length in self.smoke:
            self.busy[k : k + length + 1] = True
        self.busy |= self.recoil > 0
        self.skin = _jitter(rng, SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))], 8)
        self.sleeve = _muted(rng)

    def state(self, j: int) -> Hashable | None:
        return None if self.busy[j] else "rest"

    def draw(self, img: np.ndarray, j: int) -> None:
        u, fps = self.u, self.plan.fps
        angle = -self.recoil[j]
        muzzle = _rotate(self.muzzle, angle, self.grip)[0]
        for k, length in self.smoke:
            if k < j <= k + length:
                tau = (j - k) / fps
                a = 0.5 * (1.0 - (j - k) / (length + 1))
                draw.circle(
                    img,
                    muzzle[0] + 8 * u + 20 * u * tau,
                    muzzle[1] - 15 * u * tau,
                    3 * u + 12 * u * tau,
                    (170, 170, 170),
                    alpha=a,
                )
        hand = _rotate(np.array([(-2 * u, 5 * u)]), angle, self.grip)[0]
        draw.segment(img, (hand[0] - 60 * u, hand[1] + 40 * u), tuple(hand), 8 * u, self.sleeve)
        for pts, col in self.parts:
            draw.polygon(img, _rotate(pts, angle, self.grip), col)
        draw.circle(img, hand[0], hand[1], 5.5 * u, self.skin)
        if j in self.shots or (j - 1) in self.shots:
            scale = 1.0 if j in self.shots else 0.55
            d = (math.cos(angle), math.sin(angle))
            c = (muzzle[0] + 7 * u * scale * d[0], muzzle[1] + 7 * u * scale * d[1])
            for spoke in (-0.9, -0.45, 0.45, 0.9):
                a2 = angle + spoke
                tip = (c[0] + 14 * u * scale * math.cos(a2), c[1] + 14 * u * scale * math.sin(a2))
                base = np.array([(c[0], c[1] - 2 * u), tip, (c[0], c[1] + 2 * u)])
                draw.polygon(img, base, (255, 150, 40))
            draw.ellipse(img, c[0], c[1], 8 * u * scale, 4.5 * u * scale, FLASH_CORE, angle=angle)


def _rocket_position(launch: float, bx: float, by: float, h: float, p: float) -> tuple[float, float]:
    """Rocket position at progress p in [0, 1] from the ground at x=launch to the burst point (bx, by)."""
    return launch + (bx - launch) * p, 0.97 * h - (0.97 * h - by) * (1.0 - (1.0 - p) ** 2)


class FireworksScene(_Scene):
    """A night sky over a skyline; rockets rise and burst into fading particles with a white flash."""

    def __init__(self, *, plan: ClipPlan) -> None:
        super().__init__(plan=plan)
        h, w, u, rng = self.h, self.w, self.u, self.rng
        img = draw.vertical_gradient(h, w, _jitter(rng, (8, 8, 28), 6), _jitter(rng, (35, 25, 65), 8))
        n_stars = int(rng.integers(15, 40))
        sx, sy = rng.integers(0, w, n_stars), rng.integers(0, int(0.7 * h), n_stars)
        img[sy, sx] = rng.integers(110, 190, size=(n_stars, 1))
        x = 0.0
        while x < w:
            bw, bh = rng.uniform(0.06, 0.15) * w, rng.uniform(0.06, 0.2) * h
            draw.rect(img, x, h - bh, x + bw, h, (15, 15, 24))
            for _ in range(int(rng.integers(0, 4))):
                wx, wy = rng.uniform(x + 1, x + bw - 2), rng.uniform(h - bh + 1, h - 2)
                draw.rect(img, wx, wy, wx + max(1.0, u), wy + max(1.0, u), (190, 170, 90))
            x += bw + rng.uniform(0, 0.05) * w
        self.background = img
        self.bursts = []
        for e in plan.events:
            n = int(rng.integers(40, 80))
            ang = rng.uniform(0, 2 * math.pi, n)
            speed = rng.uniform(0.6, 1.0, n) * rng.uniform(18, 30) * u
            main, second = rng.choice(len(FIREWORK_COLORS), size=2, replace=False)
            cols = np.array(
                [FIREWORK_COLORS[main] if c else FIREWORK_COLORS[second] for c in rng.uniform(size=n) < 0.75]
            )
            bx, by = self.xpre(e.x_frac), e.y_frac * h
            launch = bx + rng.uniform(-0.05, 0.05) * w
            self.bursts.append((e, bx, by, launch, ang, speed, cols, rng.uniform(0.8, 1.4)))
        self.dot = max(2, round(1.5 * u))
        self.busy = np.zeros(plan.num_frames, dtype=bool)  # a rocket or a burst on screen
        for e, *_rest, fade in self.bursts:
            self.busy[e.onset_frame - e.lead_frames : e.onset_frame + math.ceil(fade * plan.fps) + 1] = True

    def state(self, j: int) -> Hashable | None:
        return None if self.busy[j] else "sky"

    def draw(self, img: np.ndarray, j: int) -> None:
        u, h, fps = self.u, self.h, self.plan.fps
        for e, bx, by, launch, ang, speed, cols, fade in self.bursts:
            k = e.onset_frame
            if k - e.lead_frames <= j < k:  # the rocket rises, decelerating
                p = (j - (k - e.lead_frames)) / e.lead_frames
                tail = _rocket_position(launch, bx, by, h, max(0.0, p - 0.15))
                hx, hy = _rocket_position(launch, bx, by, h, p)
                draw.segment(img, tail, (hx, hy), 1.5 * u, (200, 130, 60), alpha=0.7)
                draw.circle(img, hx, hy, 1.2 * u, (255, 215, 150))
            elif j >= k:
                tau = (j - k) / fps
                if tau < 0.25:
                    draw.circle(
                        img, bx, by, 14 * u, tuple(int(c) for c in cols[0]), alpha=0.15 * (1 - tau / 0.25)
                    )
                if tau < fade:
                    radius = speed * (1.0 - math.exp(-tau / 0.22))
                    xs = bx + radius * np.cos(ang)
                    ys = by + radius * np.sin(ang) + 12 * u * tau * tau
                    draw.dots(img, xs, ys, self.dot, cols, np.full(len(xs), 1.0 - tau / fade))
                if j == k:
                    draw.circle(img, bx, by, 7 * u, BURST_WHITE)
                elif j == k + 1:
                    draw.circle(img, bx, by, 4.5 * u, (238, 238, 238))


SCENES: dict[str, type[_Scene]] = {
    "drum": DrumScene,
    "hammer": HammerScene,
    "bouncing_ball": BallScene,
    "gun": GunScene,
    "fireworks": FireworksScene,
    "dog_bark": DogScene,
    "cough": CoughScene,
    "cry": CryScene,
}


def render_frames(plan: ClipPlan) -> Iterator[np.ndarray]:
    """Yield the clip's frames one by one, each (H, W, 3) uint8 RGB."""
    scene = SCENES[plan.category](plan=plan)
    for j in range(plan.num_frames):
        frame = scene.frame(j)
        assert frame.shape == (plan.height, plan.width, 3), f"{frame.shape=}"
        yield frame
