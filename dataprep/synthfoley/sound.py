"""SynthFoley audio: per-category event sounds, off-screen sounds and stationary background noise.

Every event sound starts at sample round(onset_s * sample_rate) with an attack of at most 2 ms (10 ms for
a cry), so its energy onset is sharp and sits on the frame where its visual cause appears. Percussive
sounds decay exponentially to -60 dB at `decay_s` after the onset (their `offset_s`). Voices end exactly
when the mouth closes (their `offset_s`): barks and coughs with a 5 ms fade, cries with a `decay_s` release.

SNR convention: `snr_db` is the power of the on-screen event sounds, measured over the samples where an
event is active (between its onset and offset, all channels), over the power of the background noise.
Stereo clips pan each sound by its source's horizontal position (constant-power law).
"""

from __future__ import annotations

import math

import numpy as np

from dataprep.synthfoley.plan import ClipPlan, Event, Offscreen, Timbre


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / sr


def _decay(n: int, sr: int, t60: float) -> np.ndarray:
    """Exponential envelope reaching -60 dB at t60 seconds."""
    return 10.0 ** (-3.0 * _t(n, sr) / t60)


def _attack(env: np.ndarray, sr: int, seconds: float) -> np.ndarray:
    n = min(len(env), max(1, int(seconds * sr)))
    env[:n] *= np.linspace(0.0, 1.0, n, endpoint=False) + 1.0 / n
    return env


def _fade_out(x: np.ndarray, sr: int, seconds: float = 0.005) -> np.ndarray:
    n = min(len(x), max(1, int(seconds * sr)))
    x[-n:] *= np.linspace(1.0, 0.0, n)
    return x


def _causal_fir(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """y[n] = sum_k h[k] x[n - k], truncated to len(x): causal, so no energy leaks before an onset."""
    size = 1 << (len(x) + len(h) - 2).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: len(x)]


def _one_pole(x: np.ndarray, sr: int, fc: float) -> np.ndarray:
    """One-pole low-pass at `fc` Hz, as its impulse response (1 - a) a^n truncated at -100 dB."""
    a = math.exp(-2.0 * math.pi * min(fc, 0.45 * sr) / sr)
    taps = min(len(x), int(math.ceil(math.log(1e-5) / math.log(a))) + 1)
    return _causal_fir(x, (1.0 - a) * a ** np.arange(taps))


def _lowpass(x: np.ndarray, sr: int, brightness: float) -> np.ndarray:
    """Low-pass whose cut-off rises with brightness (300 Hz at 0, ~19 kHz at 1)."""
    return _one_pole(x, sr, 300.0 * 2.0 ** (6.0 * brightness))


def _bandpass(x: np.ndarray, sr: int, lo: float, hi: float) -> np.ndarray:
    """A gentle causal band-pass: the difference of two one-pole low-passes (twice, for steeper skirts)."""
    for _ in range(2):
        x = _one_pole(x, sr, hi) - _one_pole(x, sr, lo)
    return x


def _harmonics(f0: np.ndarray, sr: int, brightness: float, max_harmonics: int = 16) -> np.ndarray:
    """A harmonic tone following the f0 contour (Hz per sample); spectral tilt set by brightness."""
    phase = 2.0 * math.pi * np.cumsum(f0) / sr
    top = float(f0.max())
    count = max(1, min(max_harmonics, int(0.45 * sr / top)))
    out = np.zeros_like(f0)
    tilt = 2.5 - 2.0 * brightness
    for k in range(1, count + 1):
        out += k ** (-tilt) * np.sin(k * phase)
    return out / np.abs(out).max()


def _norm(x: np.ndarray) -> np.ndarray:
    peak = np.abs(x).max()
    return x / peak if peak > 0 else x


def event_sound(category: str, timbre: Timbre, event: Event, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One event's mono sound, (L,) float64 peak-normalised, L = (offset_s - onset_s) * sr."""
    n = max(1, int(round((event.offset_s - event.onset_s) * sr)))
    t = _t(n, sr)
    f, d, b = timbre.pitch_hz, timbre.decay_s, timbre.brightness
    noise = rng.standard_normal(n)
    if category == "drum":
        f0 = f * (1.0 + 0.6 * np.exp(-t / 0.02))  # the membrane's pitch drops just after the hit
        body = np.sin(2 * math.pi * np.cumsum(f0) / sr) + 0.4 * b * np.sin(
            2 * math.pi * 1.59 * np.cumsum(f0) / sr
        )
        x = body * _decay(n, sr, d) + (0.3 + 0.7 * b) * _lowpass(noise, sr, b) * _decay(n, sr, 0.05)
        x = _attack(x, sr, 0.001)
    elif category == "hammer":
        x = np.zeros(n)
        for i, ratio in enumerate((1.0, 2.76, 5.40, 8.93)):  # free-bar mode ratios: a metallic clang
            if ratio * f < 0.45 * sr:
                x += b**i * np.sin(2 * math.pi * ratio * f * t) * _decay(n, sr, d / (1 + 0.5 * i))
        x += 0.8 * _norm(_lowpass(noise, sr, b)) * _decay(n, sr, 0.012)
        x = _attack(x, sr, 0.0005)
    elif category == "bouncing_ball":
        f0 = f * (1.0 + 0.15 * np.exp(-t / 0.01))
        x = np.sin(2 * math.pi * np.cumsum(f0) / sr) * _decay(n, sr, d)
        x += 0.5 * np.sin(2 * math.pi * 90.0 * t) * _decay(n, sr, 0.5 * d)
        x += 0.3 * _lowpass(noise, sr, b) * _decay(n, sr, 0.01)
        x = _attack(x, sr, 0.001)
    elif category == "gun":
        crack = _norm(_lowpass(noise, sr, b)) * _decay(n, sr, d)
        boom = np.sin(2 * math.pi * f * t) * _decay(n, sr, 1.5 * d)
        x = crack + 0.6 * boom + noise * _decay(n, sr, 0.004)
        x = _attack(x, sr, 0.0005)
    elif category == "fireworks":
        boom = np.sin(2 * math.pi * f * t) + 0.8 * _norm(_lowpass(noise, sr, 0.2 * b))
        crack = _norm(_lowpass(noise, sr, b)) * _decay(n, sr, 0.04)  # the burst's sharp report
        x = boom * _decay(n, sr, d) + crack
        crackle = np.zeros(n)  # the stars crackling as they burn, after the burst
        pops = rng.integers(int(0.08 * n), n, size=int(rng.integers(15, 50)))
        crackle[pops] = rng.uniform(0.2, 0.6, size=len(pops)) * rng.choice([-1.0, 1.0], size=len(pops))
        # Quieter than the burst itself (-15 dB or more), so the burst stays the event's onset.
        x = x + 0.35 * _norm(_lowpass(crackle, sr, b)) * _decay(n, sr, 0.8 * d)
        x = _attack(x, sr, 0.001)
    elif category == "dog_bark":
        f0 = f * (1.1 - 0.3 * t / max(t[-1], 1e-9))  # the pitch falls through the bark
        voice = _harmonics(f0, sr, b)
        x = _bandpass(voice + 0.25 * noise, sr, 400.0, 4000.0)
        x = _attack(_norm(x) * _decay(n, sr, d), sr, 0.002)
    elif category == "cough":
        burst = _bandpass(noise, sr, 300.0 + 500.0 * b, 1500.0 + 4000.0 * b)
        voiced = _harmonics(f * (1.0 - 0.2 * t / max(t[-1], 1e-9)), sr, b) * (t < 0.4 * t[-1])
        x = _attack((_norm(burst) + 0.4 * voiced) * _decay(n, sr, d), sr, 0.002)
    elif category == "cry":
        dur = max(t[-1], 1e-9)
        vibrato = 1.0 + 0.02 * np.sin(2 * math.pi * rng.uniform(5.0, 7.0) * t)
        f0 = f * (1.0 + 0.15 * np.sin(math.pi * t / dur)) * vibrato  # a wail rising then falling
        x = _harmonics(f0, sr, b) * (1.0 + 0.15 * np.sin(2 * math.pi * 3.0 * t))
        x += 0.05 * _bandpass(noise, sr, 2000.0, 6000.0)
        env = _attack(np.ones(n), sr, 0.01)
        release = min(n, int(d * sr))
        env[n - release :] *= np.linspace(1.0, 0.0, release)
        x = x * env
    else:
        raise ValueError(f"no sound for category {category!r}")
    if category in ("dog_bark", "cough"):
        x = _fade_out(x, sr)
    return _norm(x) * event.gain


def offscreen_sound(o: Offscreen, sr: int, rng: np.random.Generator) -> np.ndarray:
    """An off-screen sound (no visual cause), (L,) float64 peak-normalised times its gain."""
    n = max(1, int(round((o.offset_s - o.onset_s) * sr)))
    t = _t(n, sr)
    x = np.zeros(n)

    def thud(at: float, pitch: float, t60: float, bright: float) -> None:
        i = int(at * sr)
        m = n - i
        if m <= 0:
            return
        tt = _t(m, sr)
        x[i:] += (
            np.sin(2 * math.pi * pitch * tt) + 0.5 * _lowpass(rng.standard_normal(m), sr, bright)
        ) * _decay(m, sr, t60)

    if o.kind == "knock":
        pitch = rng.uniform(200.0, 500.0)
        for at in (0.0, rng.uniform(0.1, 0.15)):
            thud(at, pitch, 0.05, 0.5)
    elif o.kind == "footsteps":
        step = rng.uniform(0.3, 0.5)
        for at in np.arange(0.0, t[-1] - 0.1, step):
            thud(float(at), rng.uniform(60.0, 110.0), 0.08, 0.25)
    elif o.kind == "chirp":
        for at in np.arange(0.0, t[-1] - 0.06, rng.uniform(0.09, 0.15)):
            i, m = int(at * sr), int(0.06 * sr)
            tt = _t(min(m, n - int(at * sr)), sr)
            sweep = rng.uniform(2000.0, 3500.0) + 1500.0 * tt / 0.06
            x[i : i + len(tt)] += np.sin(2 * math.pi * np.cumsum(sweep) / sr) * np.hanning(len(tt))
    elif o.kind == "beep":
        x = np.sin(2 * math.pi * rng.uniform(600.0, 1500.0) * t)
        x = _fade_out(_attack(x, sr, 0.005), sr)
    elif o.kind == "whoosh":
        x = _bandpass(rng.standard_normal(n), sr, 300.0, 3000.0) * np.hanning(n)
    else:
        raise ValueError(f"no sound for off-screen kind {o.kind!r}")
    return _norm(x) * o.gain


def background_noise(kind: str, n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Stationary noise of unit RMS, (n,) float64."""
    if kind == "hum":
        mains = 50 if rng.uniform() < 0.5 else 60
        period = sr // math.gcd(sr, mains)  # a whole number of hum cycles: compute once, then tile
        t = _t(period, sr)
        cycle = sum(
            a * np.sin(2 * math.pi * mains * k * t + rng.uniform(0, 2 * math.pi))
            for k, a in ((1, 1.0), (2, 0.5), (3, 0.3), (5, 0.15))
        )
        x = np.tile(cycle, n // period + 1)[:n] + 0.1 * rng.standard_normal(n)
    else:
        if kind == "white":
            x = rng.standard_normal(n)
        else:
            size = 1 << (n - 1).bit_length()  # shape a power-of-two length (fast FFTs), keep the first n
            spec = np.fft.rfft(rng.standard_normal(size))
            freqs = np.fft.rfftfreq(size, 1.0 / sr)
            power = {"pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f^-1/2 (pink) or f^-1 (brown)
            # Nothing below 20 Hz: inaudible rumble would otherwise carry most of a brown noise's power.
            x = np.fft.irfft(np.where(freqs >= 20.0, spec / np.maximum(freqs, 20.0) ** power, 0.0), size)[:n]
    return x / np.sqrt(np.mean(x**2))


def _pan(x: np.ndarray, position: float, channels: int) -> np.ndarray:
    """(L,) -> (channels, L) with a constant-power pan (position 0 left, 1 right)."""
    if channels == 1:
        return x[None, :]
    theta = 0.5 * math.pi * float(np.clip(position, 0.0, 1.0))
    return np.stack([math.cos(theta) * x, math.sin(theta) * x]) * math.sqrt(2.0)


def synthesize_audio(plan: ClipPlan) -> np.ndarray:
    """The clip's soundtrack, (channels, num_samples) float32 in [-1, 1]."""
    sr, n, ch = plan.sample_rate, plan.num_samples, plan.channels
    rng = plan.rng(2)
    events = np.zeros((ch, n))
    active = np.zeros(n, dtype=bool)
    for e in plan.events:
        start = int(round(e.onset_s * sr))
        x = event_sound(plan.category, plan.timbre, e, sr, rng)[: n - start]
        events[:, start : start + len(x)] += _pan(x, e.x_frac, ch)
        active[start : start + len(x)] = True
    off = np.zeros((ch, n))
    for o in plan.offscreen:
        start = int(round(o.onset_s * sr))
        x = offscreen_sound(o, sr, rng)[: n - start]
        off[:, start : start + len(x)] += _pan(x, o.pan, ch)
    signal_power = float(np.mean(events[:, active] ** 2))
    noise_rms = math.sqrt(signal_power / 10.0 ** (plan.snr_db / 10.0))
    common = background_noise(plan.background_kind, n, sr, rng)
    if ch > 1:  # partly correlated channels, like a room recorded in stereo
        noise = np.stack(
            [0.6 * common + 0.8 * background_noise(plan.background_kind, n, sr, rng) for _ in range(ch)]
        )
    else:
        noise = common[None]
    noise *= noise_rms / np.sqrt(np.mean(noise**2))
    # Event and off-screen sounds are both peak-normalised times their gains, so they are equally loud.
    mix = events + off + noise
    mix *= rng.uniform(0.5, 0.9) / np.abs(mix).max()
    assert mix.shape == (ch, n), f"{mix.shape=}"
    return mix.astype(np.float32)
