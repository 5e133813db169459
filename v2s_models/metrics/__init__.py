"""Evaluation metrics: pure functions over waveforms, mels, logits and score matrices (docs/metrics.md).

One module per family: `mcd` (VarietySound's MCD), `likelihood` (Zhou et al.'s NLL per sample),
`retrieval` (recall@k, ranks), `timbre` (Resemblyzer cosine), `soundnet` + `distribution` (FD / KL on
SoundNet-8), `alignment` (onsets, onset F1, audio-visual offset), `synthetic` (SynthFoley ground truth).
`evaluate_clip` and `evaluate_set` combine them for the evaluation stage.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from v2s_models.metrics.alignment import (
    VIDEO_FRAME_S,
    av_offset_ms,
    detect_onsets,
    events_to_envelope,
    onset_envelope,
    onset_prf,
)
from v2s_models.metrics.distribution import evaluate_set, frechet_distance, kl_divergence
from v2s_models.metrics.likelihood import nats_to_bits, nll_per_sample
from v2s_models.metrics.mcd import mcd_waveforms, mel_cepstral_distortion
from v2s_models.metrics.retrieval import retrieval_metrics, retrieval_ranks
from v2s_models.metrics.synthetic import (
    offscreen_energy_ratio,
    tile_ground_truth,
    timbre_error,
    timbre_params,
    visible_onsets,
)
from v2s_models.metrics.timbre import timbre_similarity as _similarity

__all__ = [
    "VIDEO_FRAME_S",
    "av_offset_ms",
    "detect_onsets",
    "evaluate_clip",
    "evaluate_set",
    "events_to_envelope",
    "frechet_distance",
    "kl_divergence",
    "mcd_waveforms",
    "mel_cepstral_distortion",
    "nats_to_bits",
    "nll_per_sample",
    "offscreen_energy_ratio",
    "onset_envelope",
    "onset_prf",
    "retrieval_metrics",
    "retrieval_ranks",
    "tile_ground_truth",
    "timbre_error",
    "timbre_params",
    "timbre_similarity",
    "visible_onsets",
]


def timbre_similarity(
    generated: np.ndarray, reference: np.ndarray, sr: int, *, reference_sr: int | None = None
) -> float:
    """Resemblyzer cosine similarity (`v2s_models.metrics.timbre.timbre_similarity`, imported on use)."""

    return _similarity(generated, reference, sr, reference_sr=reference_sr)


def evaluate_clip(
    generated_wave: np.ndarray,
    sr: int,
    *,
    reference_wave: np.ndarray | None = None,
    gt: dict[str, Any] | None = None,
    fps: float = 21.5,
) -> dict[str, float]:
    """Every per-clip metric that applies to a generated mono waveform (N,) at `sr` Hz.

    - with `gt` (a SynthFoley ground-truth dict, tiled to the generated length): onset_precision /
      onset_recall / onset_f1 against the visible onsets, av_offset_ms against them, offscreen_energy_ratio,
      pitch_error_cents / decay_error_pct / brightness_error (timbre estimated at the ground-truth onsets);
    - with `reference_wave` (same rate): mcd_db (RegNet mels); and, when no `gt` is given, the onset scores
      and av_offset_ms against the reference's detected onsets / onset envelope.
    Onset tolerance: one video frame, 1 / fps. Values may be nan (e.g. no off-screen event in the clip).
    """
    wave = np.asarray(generated_wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.mean(axis=0)
    out: dict[str, float] = {}
    detected = detect_onsets(wave, sr)
    tolerance = 1.0 / fps
    if gt is not None:
        tiled = tile_ground_truth(gt, len(wave) / sr)
        truth = visible_onsets(tiled)
        out.update(onset_prf(truth, detected, tolerance))
        out["av_offset_ms"] = av_offset_ms(wave, sr, reference_onsets=truth)
        out["offscreen_energy_ratio"] = offscreen_energy_ratio(wave, sr, tiled)
        est = timbre_params(wave, sr, truth)
        if all(math.isfinite(v) for v in (est["pitch_hz"], est["decay_s"], est["brightness"])):
            out.update(timbre_error(est, tiled))
        else:
            out.update(pitch_error_cents=math.nan, decay_error_pct=math.nan, brightness_error=math.nan)
    if reference_wave is not None:
        ref = np.asarray(reference_wave, dtype=np.float32)
        if ref.ndim == 2:
            ref = ref.mean(axis=0)
        out["mcd_db"] = mcd_waveforms(wave, ref, sr)
        if gt is None:
            out.update(onset_prf(detect_onsets(ref, sr), detected, tolerance))
            out["av_offset_ms"] = av_offset_ms(wave, sr, reference=ref)
    return out
