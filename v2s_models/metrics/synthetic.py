"""Metrics that need SynthFoley's ground truth (dataprep/synthfoley; one JSON per clip).

Ground truth (`gt`, the clip's JSON as a dict): `events` (visible: onset_s, offset_s, where offset is the -60 dB
point or the mouth closing), `offscreen` (audible in the real track with no visible cause: onset_s,
offset_s), `timbre` {pitch_hz: the fundamental of the tonal part, decay_s: T60 of the event, brightness in
[0, 1]: a one-pole low-pass at 300 * 2^(6 b) Hz on the noise part, harmonic tilt / partial weights}, and
`duration`. Training data loops clips to 10 s, so `tile_ground_truth` repeats the events with period
`num_samples / sample_rate` (= duration) over a longer generated clip.

- `offscreen_energy_ratio` = mean power (energy per sample) of the generated audio inside off-screen windows
  that overlap no visible event / mean power inside visible-event windows. Low is good: a model that voices
  only what it sees has ~background level in the off-screen windows (the real track: about 1, since
  off-screen sounds are mixed as loud as the events). Mean power, not total energy, so window lengths cancel.
- `timbre_params` estimates, from the events that start at the given onsets: pitch (the strongest spectral
  peak between 30 Hz and 4 kHz from 10 ms after each onset for half the event's T60 (20-250 ms), Hann
  window, 8x zero padding, minus the power spectrum of as long a stretch just before the onset (the
  stationary background: hum, brown noise), parabolic interpolation on the log magnitude), decay (T60 from a least-squares line through the frame energies in dB,
  from the first frame 5 dB under the event's peak down to 40 dB under it or 6 dB above the clip's noise
  floor, whichever comes first) and brightness (the inverse of the generator's low-pass law applied to the
  spectral centroid: log2(centroid / 300) / 6, clipped to [0, 1]; a rough indicator only, as the generator's
  brightness also shapes partial weights). Each is the median over events.
- `timbre_error`: pitch error |1200 log2(est / gt)| in cents, decay error 100 |est - gt| / gt in percent,
  brightness error |est - gt|.

Pitch and decay are meaningful for the tonal, percussive categories (drum, hammer, bouncing_ball; tested to
within 50 cents and 25 %); for noise-like sounds (gun crack, fireworks, cough) they are indicative only.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def clip_period(gt: dict[str, Any]) -> float:
    """Length of one loop of the clip in seconds (num_samples / sample_rate when present, else duration)."""
    if gt.get("num_samples") and gt.get("sample_rate"):
        return float(gt["num_samples"]) / float(gt["sample_rate"])
    return float(gt["duration"])


def tile_ground_truth(gt: dict[str, Any], duration_s: float) -> dict[str, Any]:
    """A copy of `gt` whose `events` and `offscreen` repeat every `clip_period(gt)` seconds up to
    `duration_s` (the data pipeline's loop padding); windows are cut at `duration_s`, and those starting at or
    after it are dropped. `duration` becomes `duration_s`."""
    period = clip_period(gt)
    out = copy.deepcopy(gt)
    for key in ("events", "offscreen"):
        tiled = []
        for k in range(int(math.ceil(duration_s / period))):
            for e in gt.get(key, []):
                onset = e["onset_s"] + k * period
                if onset < duration_s:
                    tiled.append(
                        {**e, "onset_s": onset, "offset_s": min(e["offset_s"] + k * period, duration_s)}
                    )
        out[key] = tiled
    out["duration"] = duration_s
    return out


def visible_onsets(gt: dict[str, Any]) -> np.ndarray:
    """Onset times (s) of the visible events, ascending."""
    return np.sort(np.asarray([e["onset_s"] for e in gt.get("events", [])], dtype=np.float64))


def _mask(windows: Sequence[dict[str, Any]], n: int, sr: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    for w in windows:
        a, b = int(round(w["onset_s"] * sr)), int(round(w["offset_s"] * sr))
        m[max(0, a) : max(0, min(n, b))] = True
    return m


def offscreen_energy_ratio(wave: np.ndarray, sr: int, gt: dict[str, Any]) -> float:
    """Mean power of `wave` (N,) in off-screen-only windows / mean power in visible-event windows (module
    doc). `gt` must cover the wave's length (see `tile_ground_truth`). nan when either region is empty or the
    visible windows are silent."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    visible = _mask(gt.get("events", []), len(x), sr)
    off = _mask(gt.get("offscreen", []), len(x), sr) & ~visible
    if not visible.any() or not off.any():
        return float("nan")
    p_visible = float(np.mean(x[visible] ** 2))
    if p_visible <= 0:
        return float("nan")
    return float(np.mean(x[off] ** 2)) / p_visible


def _frame_db(x: np.ndarray, frame: int, hop: int) -> np.ndarray:
    if len(x) < frame:
        return np.zeros(0)
    idx = np.arange(0, len(x) - frame + 1, hop)[:, None] + np.arange(frame)[None]
    return 10.0 * np.log10(np.mean(x[idx] ** 2, axis=1) + 1e-20)


def _pitch(seg: np.ndarray, sr: int, fmin: float, fmax: float, background: np.ndarray | None) -> float:
    n = 1 << int(math.ceil(math.log2(len(seg) * 8)))
    window = np.hanning(len(seg))
    power = np.abs(np.fft.rfft(seg * window, n)) ** 2
    if background is not None:  # spectral subtraction of the stationary background (hum, brown noise)
        power = np.clip(power - np.abs(np.fft.rfft(background * window, n)) ** 2, 0.0, None)
    spec = np.sqrt(power)
    freqs = np.fft.rfftfreq(n, 1.0 / sr)
    band = np.flatnonzero((freqs >= fmin) & (freqs <= fmax))
    k = int(band[np.argmax(spec[band])])
    if 0 < k < len(spec) - 1:
        a, b, c = np.log(spec[k - 1 : k + 2] + 1e-20)
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
        return float((k + shift) * sr / n)
    return float(freqs[k])


def timbre_params(
    wave: np.ndarray,
    sr: int,
    onsets: Sequence[float],
    *,
    fmin: float = 30.0,
    fmax: float = 4000.0,
) -> dict[str, float]:
    """{"pitch_hz", "decay_s", "brightness"} estimated from the events starting at `onsets` (s) in a mono
    waveform (N,) (module doc); nan for a quantity no event allows estimating."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    onsets = np.sort(np.asarray(onsets, dtype=np.float64))
    frame, hop = max(16, int(0.005 * sr)), max(4, int(0.0025 * sr))
    all_db = _frame_db(x, frame, hop)
    floor_db = float(np.percentile(all_db, 10)) if all_db.size else -200.0
    pitches, decays, centroids = [], [], []
    for i, t in enumerate(onsets):
        start = int(round(t * sr))
        stop = len(x) if i + 1 == len(onsets) else int(round(onsets[i + 1] * sr))
        stop = min(stop, start + int(2.0 * sr))
        seg = x[start:stop]
        if len(seg) < int(0.03 * sr):
            continue
        decay = float("nan")
        db = _frame_db(seg, frame, hop)
        if db.size >= 4:
            peak = int(np.argmax(db[: max(1, int(0.05 * sr / hop))]))
            top = db[peak]
            end_level = max(top - 40.0, floor_db + 6.0)
            after = np.arange(peak, len(db))
            first = after[db[after] <= top - 5.0]
            last = after[db[after] <= end_level]
            if first.size and last.size and last[0] - first[0] >= 2:
                fit = np.arange(first[0], last[0] + 1)
                slope = np.polyfit(fit * hop / sr, db[fit], 1)[0]  # dB per second
                if slope < 0:
                    decay = -60.0 / slope
                    decays.append(decay)
        # The tonal part: from 10 ms (past the attack) for half a T60 (-30 dB), 20-250 ms.
        length = int(np.clip(0.5 * decay if np.isfinite(decay) else 0.25, 0.02, 0.25) * sr)
        tone = seg[int(0.01 * sr) : int(0.01 * sr) + length]
        background = x[max(0, start - len(tone) - int(0.005 * sr)) : max(0, start - int(0.005 * sr))]
        if len(tone) >= int(0.02 * sr):
            pitches.append(_pitch(tone, sr, fmin, fmax, background if len(background) == len(tone) else None))
            spec = np.abs(np.fft.rfft(tone * np.hanning(len(tone)))) ** 2
            freqs = np.fft.rfftfreq(len(tone), 1.0 / sr)
            centroids.append(float(np.sum(freqs * spec) / max(np.sum(spec), 1e-20)))
    brightness = [float(np.clip(math.log2(max(c, 1e-3) / 300.0) / 6.0, 0.0, 1.0)) for c in centroids]
    return {
        "pitch_hz": float(np.median(pitches)) if pitches else float("nan"),
        "decay_s": float(np.median(decays)) if decays else float("nan"),
        "brightness": float(np.median(brightness)) if brightness else float("nan"),
    }


def timbre_error(estimated: dict[str, float], gt: dict[str, Any]) -> dict[str, float]:
    """{"pitch_error_cents", "decay_error_pct", "brightness_error"} of `estimated` (timbre_params) against
    the ground truth's `timbre` (either the whole clip JSON or its `timbre` dict)."""
    truth = gt.get("timbre", gt)
    return {
        "pitch_error_cents": float(abs(1200.0 * math.log2(estimated["pitch_hz"] / truth["pitch_hz"]))),
        "decay_error_pct": float(100.0 * abs(estimated["decay_s"] - truth["decay_s"]) / truth["decay_s"]),
        "brightness_error": float(abs(estimated["brightness"] - truth["brightness"])),
    }
