"""Clip plans: every random choice of one SynthFoley clip, drawn from (seed, category, index) alone.

A `ClipPlan` fixes the format (fps, size, sample rate, channels, length), the event schedule on the video
frame grid, the timbre, the background and the off-screen sounds. Rendering (`scenes.py`) and synthesis
(`sound.py`) are deterministic functions of the plan plus their own seeded random streams, so a plan is
cheap to draw (no pixels, no samples) and tests can sample hundreds of them.

Timing conventions (the alignment ground truth):
- Every visible event happens on a video frame: its onset is `onset_s = visual_onset_frame / fps`, and its
  sound starts at sample `round(onset_s * sample_rate)`.
- A clip holds a whole number of frames and a whole number of samples of the same length:
  `num_frames / fps == num_samples / sample_rate` exactly (the frame count is a multiple of
  `fps / gcd(fps, sample_rate)`), so the audio and video streams have equal durations.
- Events never overlap: each occupies [onset - lead, onset + tail) on the frame grid, where `lead` is the
  visible run-up (a swing, a rocket rising) and `tail` covers both the sound (to -60 dB, or to the mouth
  closing) and the visible follow-through; footprints are separated by at least 80 ms.
- Off-screen sounds start at least 100 ms away from any visible onset, so an onset in the audio is never
  ambiguous between a visible and an invisible cause.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

GENERATOR_VERSION = "1.0.0"

CATEGORIES: tuple[str, ...] = (
    "drum",
    "hammer",
    "bouncing_ball",
    "gun",
    "fireworks",
    "dog_bark",
    "cough",
    "cry",
)
EVENT_KINDS: dict[str, str] = {
    "drum": "hit",
    "hammer": "strike",
    "bouncing_ball": "bounce",
    "gun": "shot",
    "fireworks": "burst",
    "dog_bark": "bark",
    "cough": "cough",
    "cry": "cry",
}
FPS_RANGE: tuple[int, int] = (15, 30)
SAMPLE_RATES: tuple[int, ...] = (22050, 44100, 48000)
DURATION_RANGE_S: tuple[float, float] = (2.0, 10.0)
MAX_EVENTS = 8
SNR_RANGE_DB: tuple[float, float] = (6.0, 36.0)
BACKGROUND_KINDS: tuple[str, ...] = ("white", "pink", "brown", "hum")
OFFSCREEN_KINDS: tuple[str, ...] = ("knock", "chirp", "beep", "whoosh", "footsteps")
OFFSCREEN_PROBABILITY = 1.0 / 3.0
OFFSCREEN_DURATION_S: dict[str, tuple[float, float]] = {
    "knock": (0.2, 0.35),
    "chirp": (0.25, 0.6),
    "beep": (0.1, 0.4),
    "whoosh": (0.3, 0.8),
    "footsteps": (0.6, 1.5),
}

# Per-category timbre ranges (pitch log-uniform, decay log-uniform, brightness uniform in [0, 1]).
# pitch_hz: the fundamental of the sound's tonal part (membrane, bar, ball, boom, voice f0).
# decay_s: percussive categories: T60 of the event (time to -60 dB); barks and coughs: T60 of the voice
# envelope (the sound is cut when the mouth closes); cry: the release at the end of each cry.
TIMBRE_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "drum": {"pitch_hz": (60.0, 250.0), "decay_s": (0.15, 0.6), "brightness": (0.2, 0.7)},
    "hammer": {"pitch_hz": (400.0, 2000.0), "decay_s": (0.08, 0.4), "brightness": (0.5, 1.0)},
    "bouncing_ball": {"pitch_hz": (150.0, 700.0), "decay_s": (0.04, 0.15), "brightness": (0.2, 0.6)},
    "gun": {"pitch_hz": (60.0, 180.0), "decay_s": (0.1, 0.4), "brightness": (0.6, 1.0)},
    "fireworks": {"pitch_hz": (35.0, 110.0), "decay_s": (0.4, 1.0), "brightness": (0.3, 0.9)},
    "dog_bark": {"pitch_hz": (250.0, 800.0), "decay_s": (0.15, 0.4), "brightness": (0.4, 0.9)},
    "cough": {"pitch_hz": (120.0, 350.0), "decay_s": (0.15, 0.4), "brightness": (0.4, 0.9)},
    "cry": {"pitch_hz": (300.0, 600.0), "decay_s": (0.01, 0.03), "brightness": (0.3, 0.8)},
}
# How long a voice event keeps the mouth open (its sound lasts exactly as long), seconds.
MOUTH_OPEN_S: dict[str, tuple[float, float]] = {
    "dog_bark": (0.12, 0.3),
    "cough": (0.15, 0.4),
    "cry": (0.5, 1.5),
}
START_MARGIN_S = 0.1
EVENT_GAP_S = 0.08
OFFSCREEN_CLEARANCE_S = 0.1
BALL_MIN_SPACING_S = 0.25  # with gravity 26 H/s^2 the shortest hop still rises 0.2 H above the floor

ALL_FRAME_SIZES: tuple[tuple[int, int], ...] = (  # (width, height), even for 4:2:0 H.264
    (160, 120),
    (192, 144),
    (256, 144),
    (320, 180),
    (320, 240),
    (424, 240),
    (480, 270),
    (512, 288),
    (640, 360),
)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """Format ranges of one data-set size. `clips_per_category` is None where a count must be given."""

    name: str
    duration_s: tuple[float, float]
    frame_sizes: tuple[tuple[int, int], ...]
    size_weights: tuple[float, ...]
    clips_per_category: int | None


PROFILES: dict[str, Profile] = {
    # CI: short, small clips (the whole set encodes in a few seconds).
    "tiny": Profile(
        name="tiny",
        duration_s=(2.0, 3.0),
        frame_sizes=ALL_FRAME_SIZES[:3],
        size_weights=(0.5, 0.25, 0.25),
        clips_per_category=2,
    ),
    # Demo: modest sizes, small frames drawn most often, so 240 clips encode in about a minute on 2 cores.
    "demo": Profile(
        name="demo",
        duration_s=(2.0, 6.0),
        frame_sizes=ALL_FRAME_SIZES[:6],
        size_weights=(0.3, 0.2, 0.2, 0.15, 0.1, 0.05),
        clips_per_category=30,
    ),
    # Any N: the full ranges of the issue.
    "full": Profile(
        name="full",
        duration_s=DURATION_RANGE_S,
        frame_sizes=ALL_FRAME_SIZES,
        size_weights=(1.0,) * len(ALL_FRAME_SIZES),
        clips_per_category=None,
    ),
}


@dataclass(frozen=True, kw_only=True)
class Timbre:
    pitch_hz: float
    decay_s: float
    brightness: float


@dataclass(frozen=True, kw_only=True)
class Event:
    """One visible event. `lead_frames` frames of visible run-up end on `onset_frame`, where the contact,
    flash, burst or mouth opening is first visible; `end_frame` is the first frame after the mouth closes
    (voice categories) or the frame at which the sound has decayed by 60 dB (rounded up)."""

    onset_frame: int
    end_frame: int
    lead_frames: int
    onset_s: float
    offset_s: float
    gain: float
    x_frac: float  # horizontal position of the sound source in the frame (0 left, 1 right): stereo pan
    y_frac: float  # vertical position (fireworks burst height; 0 elsewhere)


@dataclass(frozen=True, kw_only=True)
class Offscreen:
    onset_s: float
    offset_s: float
    kind: str
    gain: float
    pan: float


@dataclass(frozen=True, kw_only=True)
class ClipPlan:
    seed: int
    category: str
    index: int
    size: str
    fps: int
    width: int
    height: int
    sample_rate: int
    channels: int
    num_frames: int
    num_samples: int
    events: tuple[Event, ...]
    timbre: Timbre
    background_kind: str
    snr_db: float
    offscreen: tuple[Offscreen, ...]
    mirror: bool  # the scene is drawn flipped left-right
    actor_x: float  # the actor's contact point, fraction of the width after mirroring

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def clip_id(self) -> str:
        return clip_id(self.category, self.index)

    def rng(self, stream: int) -> np.random.Generator:
        """An independent random stream of this clip (0: the plan, 1: pixels, 2: samples)."""
        return np.random.default_rng(_seed_sequence(self.seed, self.category, self.index, stream))

    def ground_truth(self) -> dict[str, Any]:
        """The clip's ground truth as JSON-ready data (floats rounded to 6 decimals)."""
        kind = EVENT_KINDS[self.category]
        return {
            "dataset": "SynthFoley",
            "generator_version": GENERATOR_VERSION,
            "clip_id": self.clip_id,
            "category": self.category,
            "index": self.index,
            "seed": self.seed,
            "size": self.size,
            "content_key": content_key(self.seed, self.size, self.category, self.index),
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration": _r(self.duration),
            "num_frames": self.num_frames,
            "num_samples": self.num_samples,
            "events": [
                {
                    "onset_s": _r(e.onset_s),
                    "offset_s": _r(e.offset_s),
                    "visual_onset_frame": e.onset_frame,
                    "kind": kind,
                }
                for e in self.events
            ],
            "timbre": {
                "pitch_hz": _r(self.timbre.pitch_hz),
                "decay_s": _r(self.timbre.decay_s),
                "brightness": _r(self.timbre.brightness),
            },
            "background": {"snr_db": _r(self.snr_db), "kind": self.background_kind},
            "offscreen": [
                {"onset_s": _r(o.onset_s), "offset_s": _r(o.offset_s), "kind": o.kind} for o in self.offscreen
            ],
        }


def _r(x: float) -> float:
    return round(float(x), 6)


def clip_id(category: str, index: int) -> str:
    return f"{category}_{index:04d}"


def content_key(seed: int, size: str, category: str, index: int) -> str:
    """What a clip's bytes depend on; a clip on disk with the same key is not generated again."""
    payload = json.dumps([GENERATOR_VERSION, seed, size, category, index])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _seed_sequence(seed: int, category: str, index: int, stream: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, CATEGORIES.index(category), index, stream])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _check(seed: int, category: str, index: int, size: str) -> None:
    if category not in CATEGORIES:
        raise ValueError(f"unknown SynthFoley category {category!r}; expected one of {CATEGORIES}")
    if size not in PROFILES:
        raise ValueError(f"unknown SynthFoley size {size!r}; expected one of {tuple(PROFILES)}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if not isinstance(index, int) or index < 0:
        raise ValueError(f"clip index must be a non-negative int, got {index!r}")


def _lead_tail_s(
    category: str, rng: np.random.Generator, timbre: Timbre, swing_s: float
) -> tuple[float, float]:
    """Visible run-up before an onset and the span after it that the event occupies (sound + motion)."""
    if category in ("drum", "hammer"):
        return swing_s, max(timbre.decay_s, 0.12)
    if category == "bouncing_ball":
        return 0.0, max(timbre.decay_s, BALL_MIN_SPACING_S)
    if category == "gun":
        return 0.0, max(timbre.decay_s, 0.15)
    if category == "fireworks":
        return float(rng.uniform(0.35, 0.6)), max(timbre.decay_s, 0.2)
    lo, hi = MOUTH_OPEN_S[category]
    return 0.0, float(rng.uniform(lo, hi))


def plan_clip(*, seed: int, category: str, index: int, size: str = "tiny") -> ClipPlan:
    """Draw every random choice of clip `index` of `category` (cheap: no pixels, no samples)."""
    _check(seed, category, index, size)
    profile = PROFILES[size]
    rng = np.random.default_rng(_seed_sequence(seed, category, index, 0))

    fps = int(rng.integers(FPS_RANGE[0], FPS_RANGE[1] + 1))
    sample_rate = int(rng.choice(SAMPLE_RATES))
    channels = int(rng.integers(1, 3))
    weights = np.asarray(profile.size_weights, dtype=np.float64)
    width, height = profile.frame_sizes[int(rng.choice(len(weights), p=weights / weights.sum()))]
    # Frame counts on a grid of q frames make num_frames / fps == num_samples / sample_rate exactly.
    q = fps // math.gcd(fps, sample_rate)
    lo_f = math.ceil(profile.duration_s[0] * fps / q) * q
    hi_f = math.floor(profile.duration_s[1] * fps / q) * q
    want = rng.uniform(*profile.duration_s) * fps
    num_frames = int(min(max(round(want / q) * q, lo_f), hi_f))
    num_samples = num_frames * sample_rate // fps
    assert num_samples * fps == num_frames * sample_rate, f"{num_frames=} {fps=} {sample_rate=}"

    ranges = TIMBRE_RANGES[category]
    timbre = Timbre(
        pitch_hz=_log_uniform(rng, *ranges["pitch_hz"]),
        decay_s=_log_uniform(rng, *ranges["decay_s"]),
        brightness=float(rng.uniform(*ranges["brightness"])),
    )
    swing_s = float(rng.uniform(0.12, 0.22))
    mirror = bool(rng.integers(0, 2))
    actor_x = float(rng.uniform(0.45, 0.62))
    if mirror:
        actor_x = 1.0 - actor_x

    # Event schedule on the frame grid: footprints [k - lead, k + tail) separated by >= gap frames.
    wanted = int(rng.integers(1, MAX_EVENTS + 1))
    leads, tails = [], []
    for _ in range(wanted):
        lead_s, tail_s = _lead_tail_s(category, rng, timbre, swing_s)
        lead_f = max(2, math.ceil(lead_s * fps)) if lead_s > 0 else 0
        leads.append(lead_f)
        tails.append(max(2, math.ceil(tail_s * fps)))
    gap_f = max(2, math.ceil(EVENT_GAP_S * fps))
    start_f = math.ceil(START_MARGIN_S * fps)
    avail = num_frames - 1 - start_f
    n = wanted
    while n > 1 and sum(leads[:n]) + sum(tails[:n]) + (n - 1) * gap_f > avail:
        n -= 1
    used = sum(leads[:n]) + sum(tails[:n]) + (n - 1) * gap_f
    assert used <= avail, f"{category}: one event ({used} frames) does not fit a {num_frames}-frame clip"
    slack = avail - used
    parts = np.floor(rng.dirichlet(np.ones(n + 1)) * slack).astype(int)
    ball_x0, ball_x1 = (float(v) for v in rng.uniform(0.2, 0.8, size=2))
    events = []
    cursor = start_f + int(parts[0])
    prev_t = None
    for i in range(n):
        k = cursor + leads[i]
        onset_s = k / fps
        if category in MOUTH_OPEN_S:
            end_f = k + tails[i]
            offset_s = end_f / fps
        else:
            offset_s = min(onset_s + timbre.decay_s, num_frames / fps)
            end_f = min(math.ceil(offset_s * fps), num_frames)
        gain = float(rng.uniform(0.6, 1.0))
        x_frac, y_frac = actor_x, 0.0
        if category == "bouncing_ball":
            x_frac = ball_x0 + (ball_x1 - ball_x0) * onset_s / (num_frames / fps)
            # A bounce is as loud as the ball is fast: the speed grows with the fall time, half the time
            # since the last contact (the first fall, from about 1.35 frame heights, takes ~0.32 s).
            fall = 0.32 if prev_t is None else (onset_s - prev_t) / 2.0
            gain = float(np.clip(0.35 + 0.65 * fall / 0.5, 0.35, 1.0))
        elif category == "fireworks":
            x_frac = float(rng.uniform(0.15, 0.85))
            y_frac = float(rng.uniform(0.15, 0.4))
        events.append(
            Event(
                onset_frame=k,
                end_frame=end_f,
                lead_frames=leads[i],
                onset_s=onset_s,
                offset_s=offset_s,
                gain=gain,
                x_frac=x_frac,
                y_frac=y_frac,
            )
        )
        prev_t = onset_s
        cursor += leads[i] + tails[i] + gap_f + int(parts[i + 1])
    assert events[-1].end_frame <= num_frames, f"{events[-1]=} {num_frames=}"

    background_kind = str(rng.choice(BACKGROUND_KINDS))
    snr_db = float(rng.uniform(*SNR_RANGE_DB))
    duration = num_frames / fps
    offscreen = []
    if rng.uniform() < OFFSCREEN_PROBABILITY:
        for _ in range(int(rng.integers(1, 4))):
            kind = str(rng.choice(OFFSCREEN_KINDS))
            length = float(rng.uniform(*OFFSCREEN_DURATION_S[kind]))
            gain = float(rng.uniform(0.3, 1.0))
            pan = float(rng.uniform(0.0, 1.0))
            for _attempt in range(20):
                onset = math.floor(float(rng.uniform(0.0, duration - length)) * sample_rate) / sample_rate
                if all(abs(onset - e.onset_s) >= OFFSCREEN_CLEARANCE_S for e in events):
                    offscreen.append(
                        Offscreen(onset_s=onset, offset_s=onset + length, kind=kind, gain=gain, pan=pan)
                    )
                    break
        offscreen.sort(key=lambda o: o.onset_s)

    return ClipPlan(
        seed=seed,
        category=category,
        index=index,
        size=size,
        fps=fps,
        width=width,
        height=height,
        sample_rate=sample_rate,
        channels=channels,
        num_frames=num_frames,
        num_samples=num_samples,
        events=tuple(events),
        timbre=timbre,
        background_kind=background_kind,
        snr_db=snr_db,
        offscreen=tuple(offscreen),
        mirror=mirror,
        actor_x=actor_x,
    )
