"""Timbre similarity: cosine of Resemblyzer embeddings (VarietySound Table 2: 0.90 for VarietySound vs 0.84
for a cascade baseline, generated audio against the reference audio that gave the timbre).

    sim(x, y) = <e(x), e(y)> / (|e(x)| |e(y)|),   e = Resemblyzer VoiceEncoder.embed_utterance (256-d)

Preprocessing differs from `resemblyzer.preprocess_wav` on purpose: we resample to 16 kHz (librosa) and
normalise the volume to -30 dBFS (increase only), as it does, but skip its webrtcvad silence trimming. That
trimming is a speech detector: on Foley sounds (impacts, noise) it can drop most or all of a clip. The encoder
is the package's own `pretrained.pt` (no download), checked to load with every tensor matched.
"""

from __future__ import annotations

import functools

import numpy as np

RESEMBLYZER_SR = 16000
_TARGET_DBFS = -30.0


@functools.lru_cache(maxsize=1)
def voice_encoder():  # -> resemblyzer.VoiceEncoder (kept untyped: resemblyzer is imported lazily)
    """The Resemblyzer encoder on the CPU with the package's shipped weights, built once per process.

    Raises RuntimeError unless every network tensor is in the checkpoint and every checkpoint tensor but the
    GE2E loss's two is used (resemblyzer itself loads with strict=False).
    """
    from pathlib import Path

    import resemblyzer
    import torch

    weights = Path(resemblyzer.__file__).resolve().parent / "pretrained.pt"
    encoder = resemblyzer.VoiceEncoder(device="cpu", verbose=False, weights_fpath=weights)
    state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
    # The checkpoint also holds the GE2E training loss's scale and bias, which the encoder does not use.
    state = {k: v for k, v in state.items() if k not in ("similarity_weight", "similarity_bias")}
    result = encoder.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise RuntimeError(
            f"{weights} does not match the Resemblyzer encoder: missing {result.missing_keys}, "
            f"unexpected {result.unexpected_keys}"
        )
    return encoder.eval()


def preprocess(wave: np.ndarray, sr: int) -> np.ndarray:
    """Mono waveform (N,) or (C, N) at `sr` -> float32 (M,) at 16 kHz, volume raised to -30 dBFS RMS if
    quieter (resemblyzer's normalisation), no VAD trimming (module doc)."""
    import librosa

    x = np.asarray(wave, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty waveform (N,) or (C, N), got shape {np.shape(wave)}")
    if sr != RESEMBLYZER_SR:
        x = librosa.resample(x, orig_sr=sr, target_sr=RESEMBLYZER_SR)
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
    if rms > 0:
        gain_db = _TARGET_DBFS - 20.0 * np.log10(rms)
        if gain_db > 0:
            x = x * 10.0 ** (gain_db / 20.0)
    return x.astype(np.float32)


def resemblyzer_embedding(wave: np.ndarray, sr: int) -> np.ndarray:
    """Resemblyzer utterance embedding of a waveform at `sr` -> (256,) float32, unit L2 norm."""
    import torch

    with torch.inference_mode():
        return voice_encoder().embed_utterance(preprocess(wave, sr)).astype(np.float32)


def timbre_similarity(
    generated: np.ndarray, reference: np.ndarray, sr: int, *, reference_sr: int | None = None
) -> float:
    """Cosine similarity of the Resemblyzer embeddings of `generated` (at `sr`) and `reference` (at
    `reference_sr`, default `sr`); 1 for identical clips. Resemblyzer embeddings are non-negative, so the
    value lies in [0, 1]."""
    a = resemblyzer_embedding(generated, sr).astype(np.float64)
    b = resemblyzer_embedding(reference, reference_sr or sr).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
