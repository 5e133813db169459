"""Per-second features for the correlation-filtered seq2seq system (../shared/PAPERS.md section 3): the one
computation the data stage (`dataprep.features`, `OUT/persecond/<clip>/{appearance,audio}.npy`) and generation
(`v2s generate` on a per-second model) share.

The system's source used YouTube-8M-style features: one frame per second, 1024-d RGB (Inception, PCA'd) and
128-d audio (a VGGish embedding, PCA'd), up to 300 seconds. Neither network can be had offline, so:
    - appearance: the chosen image extractor (v2s_models.media.visual, e.g. EfficientNet-Lite0 1280-d) on one
      frame a second (`frames_per_second`: frame k is the one shown at k seconds, resized to the extractor's
      square image size);
    - audio: a 128-band log-mel spectrum averaged over each second, a hand-made stand-in for VGGish's 128-d
      embedding with the same width. Recipe, after VGGish's front end: 10 ms hop, a Hann window of
      n_fft = the next power of two >= 50 ms of samples, magnitude STFT, 128 Slaney mel bands from 125 Hz to
      min(7500 Hz, Nyquist) (VGGish's range), log(mel + 0.01) (VGGish's offset), then the mean over the STFT
      frames whose centres fall in each second.
A clip of a data preset covers `window_seconds(duration)` seconds: its frames are looped to that many
(`clip_frames_per_second`), as the preset's clips are looped. S is the number of whole seconds of audio (at
least 1: shorter audio is zero-padded to one second); one frame a second is expected for each; a mismatch of
one (rounding at the clip's end) is tolerated by keeping the shorter.
"""

from __future__ import annotations

import os

import numpy as np

from v2s_models.audio import mel_basis
from v2s_models.media import lengths, video_decoding
from v2s_models.media.visual import VisualExtractor

AUDIO_BANDS = 128
AUDIO_FMIN = 125.0
AUDIO_FMAX = 7500.0
LOG_OFFSET = 0.01


def window_seconds(duration: float) -> int:
    """The per-second steps of a clip of `duration` seconds (a data preset's window): its whole seconds, >= 1."""
    return max(1, int(duration))


def frames_per_second(
    video: str | os.PathLike[str], *, image_size: int, max_duration: float | None = None
) -> np.ndarray:
    """One frame a second of `video` (its first `max_duration` seconds, else all of it):
    (ceil(D), image_size, image_size, 3) uint8 RGB, frame k the one shown at k seconds."""
    return video_decoding.read_frames(
        video, fps=1.0, size=(int(image_size), int(image_size)), max_duration=max_duration
    )


def clip_frames_per_second(video: str | os.PathLike[str], *, image_size: int, duration: float) -> np.ndarray:
    """The frames of a data preset's clip of `duration` seconds, one a second: the video's first `duration`
    seconds looped (or cut) to `window_seconds(duration)` frames, (S, image_size, image_size, 3) uint8 RGB."""
    frames = frames_per_second(video, image_size=image_size, max_duration=duration)
    index = lengths.fit_length(np.arange(frames.shape[0]), window_seconds(duration), mode="loop")
    return frames[index]


def appearance_per_second(frames_1fps: np.ndarray, extractor: VisualExtractor) -> np.ndarray:
    """(S, H, W, 3) uint8 RGB, one frame a second -> (S, extractor.dim) float32 appearance features."""
    if not isinstance(frames_1fps, np.ndarray) or frames_1fps.ndim != 4 or frames_1fps.shape[-1] != 3:
        shape = getattr(frames_1fps, "shape", None)
        raise ValueError(f"frames_1fps must be a (S, H, W, 3) RGB array, got shape {shape}")
    if frames_1fps.shape[0] == 0:
        raise ValueError("frames_1fps is empty; need at least one frame (one per second)")
    appearance = extractor(frames_1fps)
    assert appearance.shape == (frames_1fps.shape[0], extractor.dim), f"{appearance.shape=}"
    return appearance.astype(np.float32, copy=False)


def _audio_stft_sizes(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) for a sample rate: n_fft the next power of two >= 50 ms, hop 10 ms."""
    n_fft = 1 << int(np.ceil(np.log2(0.05 * sample_rate)))
    hop = max(1, int(round(sample_rate / 100)))
    return n_fft, hop


def log_mel_per_second(audio: np.ndarray, *, sample_rate: int, num_seconds: int) -> np.ndarray:
    """(N,) mono waveform -> (num_seconds, 128) float32: 128-band log-mel averaged over each second."""
    import librosa

    n_fft, hop = _audio_stft_sizes(sample_rate)
    needed = num_seconds * sample_rate
    wav = np.zeros(needed, dtype=np.float32)
    wav[: min(needed, audio.shape[0])] = audio[:needed]
    magnitude = np.abs(librosa.stft(wav, n_fft=n_fft, hop_length=hop, window="hann", center=True))
    fmax = min(AUDIO_FMAX, sample_rate / 2.0)
    mel = mel_basis(sample_rate, n_fft, AUDIO_BANDS, AUDIO_FMIN, fmax) @ magnitude  # (128, frames)
    log_mel = np.log(mel + LOG_OFFSET)
    second_of_frame = (np.arange(log_mel.shape[1]) * hop) // sample_rate  # frame centre time, whole seconds
    keep = second_of_frame < num_seconds
    sums = np.zeros((num_seconds, AUDIO_BANDS), dtype=np.float64)
    np.add.at(sums, second_of_frame[keep], log_mel[:, keep].T)
    counts = np.bincount(second_of_frame[keep], minlength=num_seconds)[:, None]
    assert (counts > 0).all(), f"a second without STFT frames: {counts.ravel()=}"
    return (sums / counts).astype(np.float32)


def per_second_features(
    frames_1fps: np.ndarray,
    audio: np.ndarray,
    *,
    sample_rate: int,
    extractor: VisualExtractor,
) -> dict[str, np.ndarray]:
    """Per-second appearance and audio features.

    Args:
        frames_1fps: (S', H, W, 3) uint8 RGB, one frame per second.
        audio: (N,) mono float waveform in [-1, 1].
        sample_rate: audio sample rate in Hz.
        extractor: image network for the appearance part.

    Returns:
        {"appearance": (S, extractor.dim) float32, "audio": (S, 128) float32}, S = max(1, N // sample_rate),
        reduced to S' when the frames are one fewer.
    """
    if not isinstance(frames_1fps, np.ndarray) or frames_1fps.ndim != 4 or frames_1fps.shape[-1] != 3:
        shape = getattr(frames_1fps, "shape", None)
        raise ValueError(f"frames_1fps must be a (S, H, W, 3) RGB array, got shape {shape}")
    if frames_1fps.shape[0] == 0:
        raise ValueError("frames_1fps is empty; need at least one frame (one per second)")
    if not isinstance(audio, np.ndarray) or audio.ndim != 1:
        raise ValueError(f"audio must be a mono (N,) waveform, got shape {getattr(audio, 'shape', None)}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be a float waveform in [-1, 1], got dtype {audio.dtype}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    audio_seconds = max(1, audio.shape[0] // sample_rate)
    num_frames = frames_1fps.shape[0]
    if abs(num_frames - audio_seconds) > 1:
        raise ValueError(
            f"frames_1fps has {num_frames} frames but the audio has {audio_seconds} whole seconds "
            f"({audio.shape[0]} samples at {sample_rate} Hz); expected one frame per second"
        )
    num_seconds = min(num_frames, audio_seconds)
    appearance = appearance_per_second(frames_1fps[:num_seconds], extractor)
    audio_features = log_mel_per_second(audio, sample_rate=sample_rate, num_seconds=num_seconds)
    assert audio_features.shape == (num_seconds, AUDIO_BANDS), f"{audio_features.shape=}"
    return {"appearance": appearance, "audio": audio_features}
