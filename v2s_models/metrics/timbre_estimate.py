"""Timbre parameters of a sound, estimated from its waveform: pitch, brightness (spectral centroid), decay.

These are the three parameters a timbre swap test moves (SynthFoley's `pitch_hz`, `brightness`, `decay_s`),
measured on any waveform (a real clip, a generated one), with no ground truth:

- events: peaks of the 5 ms envelope that stand over the floor after a sharp rise (`event_peaks`), so hum, a
  noise bed, a whoosh or a voice's swell are not taken for strikes.
- `pitch_hz`: per event, the strongest spectral peak within [fmin, fmax] of its tonal part (20-220 ms after the
  onset: past a drum's pitch glide and a strike's noise burst) minus the stationary floor (the median spectrum
  of the quietest quarter of frames: background noise and hum), refined by parabolic interpolation on the log
  power; the median over the events. A caller that knows the sound's family passes its pitch range (a
  hammer's 400-2000 Hz): partials above the fundamental then never win.
- `centroid_hz`: per event, the power-weighted mean frequency of its first 50 ms (the attack, where a strike's
  brightness shows) minus the floor; the median over the events ("brightness"). `centroid_ratio` = centroid /
  pitch, brightness relative to the pitch (a bar's partials scale with its pitch).
- `decay_s`: T60 of the events: the envelope (5 ms frames, in dB) of the band around the pitch (the tonal part,
  which stands further above the noise than the whole band) or of the whole signal; for each event peak (a local
  maximum over the floor after a sharp rise, `event_peaks`) a line is fitted from 3 dB below the peak down to 35 dB below it or 6 dB above
  the floor, whichever comes first, and T60 = 60 / slope; the median over the events.

All estimates are NaN where the sound has no events (silence, a stationary noise). They are meant for ranking
sounds of one family (a rank correlation), not as calibrated measurements.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import signal

# An event peak: (dB over the floor, dB of rise, within seconds). Strict first; where that finds no event, the
# relaxed test (generated sound often stands only 8-15 dB over its floor, and a mel + vocoder smears an attack
# over ~50 ms). The relaxed test alone takes noise fluctuations for events on real clips.
EVENT_TESTS: tuple[tuple[float, float, float], ...] = ((15.0, 10.0, 0.02), (8.0, 6.0, 0.05))
DECAY_FRAME_S = 0.005  # the event envelope's frame
PITCH_SKIP_S = 0.02  # past the attack (a drum's membrane glides down to its pitch in ~20 ms)
PITCH_LENGTH_S = 0.2
CENTROID_LENGTH_S = 0.05


@dataclass(frozen=True)
class TimbreParams:
    """Estimated timbre of one sound (NaN where it has no events)."""

    pitch_hz: float
    centroid_hz: float
    centroid_ratio: float
    decay_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _mono(wave: np.ndarray) -> np.ndarray:
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected a waveform (N,) or (C, N), got shape {np.shape(wave)}")
    return x


def _envelope_db(x: np.ndarray, sr: int, frame_s: float) -> np.ndarray:
    hop = max(1, int(round(frame_s * sr)))
    n = x.shape[0] // hop
    if n < 1:
        return np.full(1, -300.0)
    rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    return 20.0 * np.log10(np.maximum(rms, 1e-15))


def event_peaks(env_db: np.ndarray, frame_s: float) -> tuple[np.ndarray, float]:
    """(frame indices of the event peaks, floor in dB) of an envelope in dB: local maxima at least 50 ms
    apart standing H dB over the floor (the 20th percentile) and reached by a rise of R dB within S seconds,
    (H, R, S) the first of `EVENT_TESTS` that finds an event (an onset, not a swell: a strike's attack takes a
    few ms; a whoosh or a texture's fluctuation rises slowly)."""
    floor = float(np.quantile(env_db, 0.2))
    distance = max(1, int(round(0.05 / frame_s)))
    peaks = np.zeros(0, dtype=np.int64)
    for over, rise_db, rise_s in EVENT_TESTS:
        peaks, _ = signal.find_peaks(env_db, height=floor + over, distance=distance)
        back = max(1, int(round(rise_s / frame_s)))
        rise = np.array([env_db[p] - env_db[max(0, p - back) : p + 1].min() for p in peaks])
        peaks = peaks[rise >= rise_db] if peaks.size else peaks
        if peaks.size:
            break
    return peaks, floor


def _power(segment: np.ndarray, n_fft: int) -> np.ndarray:
    """Hann-windowed power spectrum (n_fft // 2 + 1,) per unit window energy (comparable across lengths)."""
    w = np.hanning(segment.shape[0])
    return np.abs(np.fft.rfft(segment * w, n=n_fft)) ** 2 / max(float(np.sum(w**2)), 1e-12)


def event_spectra(
    wave: np.ndarray, sr: int, *, skip_s: float, length_s: float, n_fft: int | None = None
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """(freqs (F,), one power spectrum (F,) per event, the floor (F,)): the span [onset + skip_s, onset + skip_s + length_s)
    of each event (cut before the next one), minus the stationary floor (the median spectrum of the quietest
    quarter of `length_s` frames, kept > 0 by 1e-9 of its peak), clipped at 0. Events: `event_peaks` of the 5 ms
    envelope."""
    x = _mono(wave)
    n_fft = n_fft or 1 << int(math.ceil(math.log2(max(4.0 * length_s * sr, 256))))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    env = _envelope_db(x, sr, DECAY_FRAME_S)
    peaks, _floor = event_peaks(env, DECAY_FRAME_S)
    if peaks.size == 0:
        return freqs, [], np.ones_like(freqs)
    hop = int(round(DECAY_FRAME_S * sr))
    n_len = max(16, int(round(length_s * sr)))
    frames = [x[s : s + n_len] for s in range(0, max(1, x.shape[0] - n_len + 1), max(1, n_len // 2))]
    frame_power = np.stack([_power(f, n_fft) for f in frames if f.shape[0] >= 16])
    energy = frame_power.sum(axis=1)
    floor = np.median(frame_power[energy <= np.quantile(energy, 0.25)], axis=0)
    floor = floor + 1e-9 * max(float(frame_power.max()), 1e-30)
    out = []
    onsets = peaks * hop
    for k, onset in enumerate(onsets):
        lo = int(onset + skip_s * sr)
        hi = min(lo + n_len, int(onsets[k + 1]) if k + 1 < len(onsets) else x.shape[0])
        if hi - lo < 16:
            continue
        spectrum = np.clip(_power(x[lo:hi], n_fft) - floor, 0.0, None)
        if np.any(spectrum > 0):
            out.append(spectrum)
    return freqs, out, floor


def _peak_hz(freqs: np.ndarray, spectrum: np.ndarray, fmin: float, fmax: float) -> float:
    band = np.flatnonzero((freqs >= fmin) & (freqs <= fmax))
    if band.size == 0 or not np.any(spectrum[band] > 0):
        return math.nan
    i = int(band[np.argmax(spectrum[band])])
    if 0 < i < len(spectrum) - 1 and np.all(spectrum[i - 1 : i + 2] > 0):
        a, b, c = np.log(spectrum[i - 1 : i + 2])
        denom = a - 2.0 * b + c
        offset = 0.5 * (a - c) / denom if denom < 0 else 0.0
        return float(freqs[i] + np.clip(offset, -0.5, 0.5) * (freqs[1] - freqs[0]))
    return float(freqs[i])


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.median(finite)) if finite else math.nan


def estimate_pitch(wave: np.ndarray, sr: int, *, fmin: float = 30.0, fmax: float | None = None) -> float:
    """Pitch (Hz) of the events of a waveform (N,) or (C, N) at `sr`: per event, the strongest peak in
    [fmin, fmax] (default: up to 0.45 sr) of its tonal part (20-220 ms after the onset) over the stationary
    floor; the median over the events. NaN without events."""
    freqs, spectra, floor = event_spectra(wave, sr, skip_s=PITCH_SKIP_S, length_s=PITCH_LENGTH_S)
    top = fmax if fmax is not None else 0.45 * sr
    return _median([_peak_hz(freqs, s, fmin, top) for s in spectra])


def _centroid(freqs: np.ndarray, spectrum: np.ndarray, fmin: float) -> float:
    keep = freqs >= fmin
    total = spectrum[keep].sum()
    return float((freqs[keep] * spectrum[keep]).sum() / total) if total > 0 else math.nan


def spectral_centroid(wave: np.ndarray, sr: int, *, fmin: float = 20.0) -> float:
    """Power-weighted mean frequency (Hz) above `fmin` of each event's first 50 ms (its attack, where the
    brightness of a strike shows), the median over the events; NaN without events."""
    freqs, spectra, _floor = event_spectra(wave, sr, skip_s=0.0, length_s=CENTROID_LENGTH_S)
    return _median([_centroid(freqs, s, fmin) for s in spectra])


def event_decays(env_db: np.ndarray, frame_s: float, *, min_range_db: float = 6.0) -> list[float]:
    """T60 (s) of each event of an envelope in dB (one value per `frame_s`), as the module docstring says."""
    peaks, floor = event_peaks(env_db, frame_s)
    decays = []
    for k, p in enumerate(peaks):
        end = peaks[k + 1] if k + 1 < len(peaks) else env_db.shape[0]
        seg = env_db[p:end] - env_db[p]
        stop_db = max(-35.0, floor + 6.0 - env_db[p])
        if stop_db > -min_range_db:
            continue  # too little range over the floor to fit a slope
        start = int(np.argmax(seg <= -3.0)) if np.any(seg <= -3.0) else None
        below = np.flatnonzero(seg <= stop_db)
        if start is None or below.size == 0 or below[0] - start < 3:
            continue
        stop = int(below[0])
        t = np.arange(start, stop + 1) * frame_s
        slope = float(np.polyfit(t, seg[start : stop + 1], 1)[0])  # dB per second
        if slope < 0:
            decays.append(-60.0 / slope)
    return decays


def estimate_decay(wave: np.ndarray, sr: int, *, pitch_hz: float | None = None, band: float = 1.3) -> float:
    """T60 (s) of the events of a waveform, the median over events; the envelope of the band
    [pitch / band, pitch * band] when `pitch_hz` is given (the tonal part), else of the whole signal; NaN when
    no event has 6 dB to fit."""
    x = _mono(wave)
    if pitch_hz is not None and math.isfinite(pitch_hz):
        lo, hi = pitch_hz / band, min(pitch_hz * band, 0.45 * sr)
        if lo < hi:
            sos = signal.butter(2, [lo, hi], btype="bandpass", fs=sr, output="sos")
            x = signal.sosfilt(sos, x)
    decays = event_decays(_envelope_db(x, sr, DECAY_FRAME_S), DECAY_FRAME_S)
    return float(np.median(decays)) if decays else math.nan


def estimate_timbre(
    wave: np.ndarray, sr: int, *, pitch_range: tuple[float, float] | None = None
) -> TimbreParams:
    """Pitch, centroid, centroid / pitch and decay of a waveform (N,) or (C, N) at `sr` (module docstring);
    `pitch_range`: where to look for the pitch (Hz), e.g. the sound family's range."""
    fmin, fmax = pitch_range if pitch_range is not None else (30.0, None)
    pitch = estimate_pitch(wave, sr, fmin=fmin, fmax=fmax)
    centroid = spectral_centroid(wave, sr)
    ratio = centroid / pitch if math.isfinite(pitch) and pitch > 0 else math.nan
    return TimbreParams(
        pitch_hz=pitch,
        centroid_hz=centroid,
        centroid_ratio=ratio,
        decay_s=estimate_decay(wave, sr, pitch_hz=pitch),
    )
