"""Temporal alignment: onset detection, onset precision / recall / F1, and an audio-visual offset.

Onsets. `onset_envelope` is librosa's spectral flux onset strength (log-power mel spectrogram, first-order
difference, half-wave rectified, mean over bands), with `center=True`, which delays the flux by half an
analysis window so that frame j describes a window ending at sample j * hop: the flux peaks on the frame where
a sound starts, not half a window earlier. `detect_onsets` peak-picks that envelope with librosa's
`onset_detect` rule (local maximum within +/- 30 ms, `delta` above the +/- 100 ms local mean of the envelope
scaled to [0, 1], at most one onset per `min_gap_s`; no backtracking), in our own code (`pick_peaks`).
Defaults: n_fft 1024, hop 256 at any rate (the RegNet mel analysis: 46 ms windows, 11.6 ms hop at 22050 Hz,
the finest timing the mel generators produce), delta 0.25. First tuned at n_fft 512 / hop 128 on real
SynthFoley soundtracks (detected onsets 3-11 ms after the ground truth; on 32 tiny clips, off-screen onsets
set aside, precision 0.90 and recall 0.96 at one video frame), then moved to the mel analysis because
generated audio voiced by Griffin-Lim carries phase noise that the short window turns into spurious onsets.
Measured on the demo test split (32 clips, 10 s, onset F1 against the visible events; off-screen events in
the real audio count as false positives): real audio 0.684 at 512 / 128, 0.703 at 1024 / 256, 0.781 at
1024 / 256 with the quarter-window latency compensation of `onset_envelope` (the default); the demo REGNET
0.158 / 0.532 / 0.576; the same model's sound for another clip's video (the wrong-timing control) 0.155 /
0.035 / 0.047. Only the larger window tells the two apart.

Onset scores follow mir_eval's onset evaluation (one-to-one matching within a tolerance window, each
reference and each estimate used at most once, maximum number of matches); the matching is our own: on a
line with a symmetric window, matching in time order (each reference to the earliest unused estimate inside
its window) is a maximum matching. Default tolerance: one video frame of the RegNet convention, 1 / 21.5 s.

Offset. `av_offset_ms` cross-correlates two onset envelopes (mean removed, L2 normalised) over lags within
+/- `max_lag_ms` and refines the best lag with a parabola through its neighbours. Positive means the first
(generated) signal is late. It is a signal-processing stand-in for av-benchmark's DeSync (a trained
synchronisation model's predicted offset), usable without a hub; the reference can be audio or ground-truth
event times (`events_to_envelope`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

VIDEO_FRAME_S = 1.0 / 21.5
DEFAULT_N_FFT = 1024
DEFAULT_HOP = 256


def onset_envelope(
    wave: np.ndarray, sr: int, *, hop: int = DEFAULT_HOP, n_fft: int = DEFAULT_N_FFT
) -> tuple[np.ndarray, float]:
    """Spectral-flux onset strength of a mono waveform (N,) -> (envelope (T,), frames per second).

    Frame j of the envelope describes the STFT window ending at sample j * hop (librosa's `center=True`),
    advanced by round(n_fft / 4 / hop) frames: behind the Hann window's taper, the flux of a sudden sound
    peaks about a quarter window after the sound enters the window, so without this shift every onset is
    found ~n_fft / 4 late (12 ms at 1024 / 22050 Hz); after it, detections fall within half a hop.
    """
    import librosa

    wave = _mono(wave)
    env = librosa.onset.onset_strength(
        y=wave.astype(np.float32),
        sr=sr,
        hop_length=hop,
        n_fft=n_fft,
        n_mels=64,
        fmax=min(sr / 2, 11025.0),
        max_size=3,  # flux against the max of 3 neighbouring bands: less sensitive to pitch wobble
        pad_mode="reflect",  # no spurious onset where a noisy clip starts
    )
    lag = int(round(n_fft / 4 / hop))
    env = env.astype(np.float64)
    if lag and env.size > lag:
        env = np.concatenate([env[lag:], np.zeros(lag)])
    return env, sr / hop


def detect_onsets(
    wave: np.ndarray,
    sr: int,
    *,
    hop: int = DEFAULT_HOP,
    n_fft: int = DEFAULT_N_FFT,
    delta: float = 0.25,
    min_gap_s: float = 0.05,
) -> np.ndarray:
    """Onset times in seconds, (K,) float64 ascending, of a mono waveform (N,) at `sr` Hz.

    `delta`: a peak must exceed the local mean of the [0, 1]-scaled envelope by this much (librosa's delta);
    `min_gap_s`: at most one onset in this time (librosa's `wait`). Silence gives no onsets.
    """
    env, rate = onset_envelope(wave, sr, hop=hop, n_fft=n_fft)
    frames = pick_peaks(
        env,
        delta=delta,
        wait=max(1, int(round(min_gap_s * rate))),
        max_half_width=max(1, int(round(0.03 * rate))),
        avg_half_width=max(1, int(round(0.1 * rate))),
    )
    return frames.astype(np.float64) / rate


def pick_peaks(
    env: np.ndarray, *, delta: float, wait: int, max_half_width: int, avg_half_width: int
) -> np.ndarray:
    """Peak picking of an onset envelope (T,) -> frame indices (K,) int64, librosa's rule (Boeck et al. 2012).

    The envelope is scaled to [0, 1]; frame n is a peak when it is the maximum of env[n - w : n + w + 1]
    (w = `max_half_width`), exceeds the mean of env[n - a : n + a + 1] (a = `avg_half_width`) by `delta`,
    and comes at least `wait` frames after the previous peak. Our own code: librosa's numba `peak_pick`
    crashes (segmentation fault) with this environment's numba.
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    env = np.asarray(env, dtype=np.float64)
    if env.size == 0 or env.max() - env.min() < 1e-8:
        return np.zeros(0, dtype=np.int64)
    x = (env - env.min()) / (env.max() - env.min())
    local_max = maximum_filter1d(x, size=2 * max_half_width + 1, mode="constant", cval=0.0)
    local_mean = uniform_filter1d(x, size=2 * avg_half_width + 1, mode="nearest")
    candidates = np.flatnonzero((x >= local_max) & (x >= local_mean + delta))
    peaks: list[int] = []
    for n in candidates:
        if not peaks or n - peaks[-1] >= wait:
            peaks.append(int(n))
    return np.asarray(peaks, dtype=np.int64)


def match_onsets(reference: Sequence[float], estimated: Sequence[float], tolerance: float) -> int:
    """Size of a maximum one-to-one matching of reference and estimated onsets with |r - e| <= tolerance."""
    ref = np.sort(np.asarray(reference, dtype=np.float64))
    est = np.sort(np.asarray(estimated, dtype=np.float64))
    matched, j = 0, 0
    for r in ref:
        while j < len(est) and est[j] < r - tolerance - 1e-12:  # too early for this and every later reference
            j += 1
        if j < len(est) and est[j] <= r + tolerance + 1e-12:
            matched += 1
            j += 1
    return matched


def onset_prf(
    reference: Sequence[float], estimated: Sequence[float], tolerance: float = VIDEO_FRAME_S
) -> dict[str, float]:
    """Onset precision, recall and F1 (mir_eval-style matching, `tolerance` seconds each side).

    precision = matches / len(estimated), recall = matches / len(reference), F1 their harmonic mean.
    Conventions for empty lists (mir_eval returns 0 and warns): no estimates -> precision 1; no references ->
    recall 1; both empty -> all 1 (nothing to find, nothing invented); F1 is 0 when P + R = 0.
    """
    n_ref, n_est = len(reference), len(estimated)
    m = match_onsets(reference, estimated, tolerance)
    precision = m / n_est if n_est else 1.0
    recall = m / n_ref if n_ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"onset_precision": precision, "onset_recall": recall, "onset_f1": f1}


def events_to_envelope(
    onsets_s: Sequence[float], duration_s: float, rate: float, *, smooth_s: float = 0.01
) -> np.ndarray:
    """An onset envelope for ground-truth event times: unit impulses at round(onset * rate), smoothed by a
    Gaussian of standard deviation `smooth_s`; (round(duration_s * rate) + 1,) float64. Use the `rate`
    returned by `onset_envelope` so that the two envelopes share a time axis."""
    n = int(round(duration_s * rate)) + 1
    env = np.zeros(n)
    for t in onsets_s:
        k = int(round(float(t) * rate))
        if 0 <= k < n:
            env[k] += 1.0
    sigma = smooth_s * rate
    if sigma > 0.3:
        half = int(np.ceil(4 * sigma))
        x = np.arange(-half, half + 1)
        kernel = np.exp(-0.5 * (x / sigma) ** 2)
        env = np.convolve(env, kernel / kernel.sum(), mode="same")
    return env


def envelope_offset_ms(
    generated_env: np.ndarray, reference_env: np.ndarray, rate: float, *, max_lag_ms: float = 500.0
) -> float:
    """Lag (ms) maximising the normalised cross-correlation sum_n g[n + l] r[n]; positive: generated late.

    Returns nan when either envelope is constant (no onsets to align).
    """
    g = np.asarray(generated_env, dtype=np.float64)
    r = np.asarray(reference_env, dtype=np.float64)
    n = min(len(g), len(r))
    g, r = g[:n] - g[:n].mean(), r[:n] - r[:n].mean()
    gn, rn = np.linalg.norm(g), np.linalg.norm(r)
    if n == 0 or gn < 1e-12 or rn < 1e-12:
        return float("nan")
    g, r = g / gn, r / rn
    max_lag = max(1, min(n - 1, int(round(max_lag_ms / 1000.0 * rate))))
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([np.dot(g[max(0, l) : n + min(0, l)], r[max(0, -l) : n - max(0, l)]) for l in lags])
    best = int(np.argmax(corr))
    shift = 0.0
    if 0 < best < len(corr) - 1:  # parabolic refinement between frames
        a, b, c = corr[best - 1], corr[best], corr[best + 1]
        denom = a - 2 * b + c
        if denom < 0:
            shift = float(np.clip(0.5 * (a - c) / denom, -0.5, 0.5))
    return float((lags[best] + shift) / rate * 1000.0)


def av_offset_ms(
    generated: np.ndarray,
    sr: int,
    *,
    reference: np.ndarray | None = None,
    reference_onsets: Sequence[float] | None = None,
    max_lag_ms: float = 500.0,
    hop: int = DEFAULT_HOP,
) -> float:
    """Audio-visual offset (ms) of a generated mono waveform (N,) against a reference waveform at the same
    rate or against ground-truth onset times (seconds); positive means the generated audio is late."""
    if (reference is None) == (reference_onsets is None):
        raise ValueError("av_offset_ms needs exactly one of `reference` (a waveform) or `reference_onsets`")
    g_env, rate = onset_envelope(generated, sr, hop=hop)
    if reference is not None:
        r_env, _ = onset_envelope(reference, sr, hop=hop)
    else:
        r_env = events_to_envelope(reference_onsets, len(_mono(generated)) / sr, rate)
    return envelope_offset_ms(g_env, r_env, rate, max_lag_ms=max_lag_ms)


def _mono(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave)
    if wave.ndim == 2:
        wave = wave.mean(axis=0)
    if wave.ndim != 1:
        raise ValueError(f"expected a waveform (N,) or (C, N), got shape {wave.shape}")
    return wave
