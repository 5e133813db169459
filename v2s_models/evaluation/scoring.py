"""Scores per clip and per system, each figure with its seeded, category-stratified 95 % bootstrap interval.

Per clip and system, `v2s_models.metrics.evaluate_clip` gives onset precision / recall / F1, the audio-visual
offset, MCD against the real audio, off-screen energy and timbre-parameter errors (SynthFoley only); the
Resemblyzer cosine to the real audio (and, for VarietySound, to the reference clip), the paired SoundNet KL
and, for VarietySound, the MCD of the mel generated with the clip as its own reference are added. A system's
figure is the mean over clips (the median for the timbre-parameter errors, see MEDIAN_METRICS) with a
percentile-bootstrap interval resampled within categories; the Frechet distance is a set statistic and is
bootstrapped over the set (`metrics.stats.bootstrap_statistic`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from v2s_models import metrics as M
from v2s_models.evaluation.baselines import SYSTEM, EvalClip, Synthesis
from v2s_models.evaluation.cluster import ClipRunner
from v2s_models.metrics.distribution import soundnet_set
from v2s_models.metrics.standard.figures import frechet_distance as gram_frechet_distance
from v2s_models.metrics.stats import Interval, bootstrap_mean, bootstrap_statistic
from v2s_models.metrics.timbre import resemblyzer_embedding

ROW_KEYS = ("system", "clip_id", "category")
# Timbre-parameter errors are estimated from the generated audio (pitch, decay, brightness at the event onsets);
# on clips where the estimate fails (noise, smeared onsets) one clip can be off by octaves or by 1000 %, so these
# are summarised by their median over clips; every other metric by its mean.
MEDIAN_METRICS = frozenset(
    f"{prefix}{k}"
    for prefix in ("", "reference_")
    for k in ("pitch_error_cents", "decay_error_pct", "brightness_error")
)


# `metrics.frechet_distance` through the sets' N x N Gram matrix (exact; what makes 200 bootstrap resamples
# affordable): the standard metrics' implementation serves SoundNet's FD too.
frechet_distance_lowrank = gram_frechet_distance


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else float("nan")


def _kl_rows(p_real: np.ndarray, p_gen: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """Per-clip KL(p_real[i] || p_gen[i]) (N,): `metrics.kl_divergence` is their mean."""
    p, q = np.clip(p_real, eps, None), np.clip(p_gen, eps, None)
    return np.sum(p * (np.log(p) - np.log(q)), axis=1)


def score_clips(
    package: Any, clips: Sequence[EvalClip], synthesis: Synthesis, *, runner: ClipRunner | None = None
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], np.ndarray]:
    """(per-clip rows, {system: SoundNet embeddings (N, 1024)}, real embeddings (N, 1024)) of every system.

    runner: where the clips are scored (`evaluation.cluster`); every scorer is deterministic per clip, so the
    rows do not depend on it. Rows come system by system, in the order of `clips`."""
    settings = package.data_settings
    sr, fps = settings.sample_rate, settings.fps
    runner = runner or ClipRunner()
    by_id = {c.clip_id: c for c in clips}
    refs = synthesis.references
    # Each real clip once: its Resemblyzer embedding (a reference of another clip's row too) and SoundNet's.
    real = runner.map(_score_real, [(c.real_wav, sr) for c in clips], shared=dict, desc="score real")
    real_emb = {c.clip_id: r[0] for c, r in zip(clips, real, strict=True)}
    items = []
    for i, c in enumerate(clips):
        ref = refs.get(c.clip_id)
        items.append(
            _ClipToScore(
                clip=c,
                wavs={system: wavs[c.clip_id] for system, wavs in synthesis.systems.items()},
                real_embedding=real_emb[c.clip_id],
                real_probs=real[i][2],
                reference=ref,
                reference_embedding=None if ref is None else real_emb[ref],
                reference_gt=None if ref is None else by_id[ref].gt,
                mel=synthesis.mels.get(c.clip_id),
                own_reference_mel=synthesis.own_reference_mels.get(c.clip_id),
            )
        )
    scored = runner.map(_score_clip, items, shared=partial(_ScoreSettings, sr, fps), desc="score")
    rows = [r for system in synthesis.systems for s in scored for r in s.rows if r["system"] == system]
    embeddings = {system: np.stack([s.embeddings[system] for s in scored]) for system in synthesis.systems}
    return rows, embeddings, np.stack([r[1] for r in real])


def _score_real(_: Any, item: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Resemblyzer embedding, SoundNet embedding, SoundNet object probabilities) of one real clip."""
    wav, sr = item
    sn, probs = soundnet_set([wav], sr)
    return resemblyzer_embedding(wav, sr), sn[0], probs[0]


@dataclass
class _ScoreSettings:
    sample_rate: int
    fps: float


@dataclass
class _ClipToScore:
    """One clip's sound from every system and what its rows compare it with."""

    clip: EvalClip
    wavs: dict[str, np.ndarray]
    real_embedding: np.ndarray
    real_probs: np.ndarray
    reference: str | None
    reference_embedding: np.ndarray | None
    reference_gt: dict[str, Any] | None
    mel: np.ndarray | None
    own_reference_mel: np.ndarray | None


@dataclass
class _ScoredClip:
    """One clip's rows (one per system) and its SoundNet embedding per system."""

    rows: list[dict[str, Any]]
    embeddings: dict[str, np.ndarray]


def _score_clip(settings: _ScoreSettings, item: _ClipToScore) -> _ScoredClip:
    sr, fps = settings.sample_rate, settings.fps
    c = item.clip
    out = _ScoredClip(rows=[], embeddings={})
    for system, wav in item.wavs.items():
        sn, probs = soundnet_set([wav], sr)
        out.embeddings[system] = sn[0]
        m = M.evaluate_clip(wav, sr, reference_wave=c.real_wav, gt=c.gt, fps=fps)
        if math.isfinite(m.get("av_offset_ms", math.nan)):
            m["av_offset_abs_ms"] = abs(m["av_offset_ms"])
        emb = resemblyzer_embedding(wav, sr)
        m["timbre_sim_real"] = _cosine(emb, item.real_embedding)
        m["kl_soundnet"] = float(_kl_rows(item.real_probs[None], probs)[0])
        if item.reference is not None:
            assert item.reference_embedding is not None
            m["timbre_sim_reference"] = _cosine(emb, item.reference_embedding)
            if item.reference_gt is not None and c.gt is not None:  # the timbre asked for: the reference's
                onsets = M.visible_onsets(M.tile_ground_truth(c.gt, len(wav) / sr))
                est = M.timbre_params(wav, sr, onsets)
                if all(math.isfinite(v) for v in est.values()):
                    err = M.timbre_error(est, item.reference_gt)
                    m.update({f"reference_{k}": v for k, v in err.items()})
        if system == SYSTEM and c.real_mel is not None:
            if item.mel is not None:
                m["mcd_mel_db"] = M.mel_cepstral_distortion(item.mel, c.real_mel)
            if item.own_reference_mel is not None:
                m["mcd_own_reference_db"] = M.mel_cepstral_distortion(item.own_reference_mel, c.real_mel)
        out.rows.append({"system": system, "clip_id": c.clip_id, "category": c.category, **m})
    return out


def aggregate(
    key: str, values: Sequence[float], strata: Sequence[str] | None, *, n_boot: int, seed: int
) -> Interval:
    """One system's figure for `key` over its clips: the mean (median for MEDIAN_METRICS) with a bootstrap
    interval resampled within `strata`; non-finite values are left out."""
    if key not in MEDIAN_METRICS:
        return bootstrap_mean(values, strata=strata, n_boot=n_boot, seed=seed)
    arr = np.asarray([v if v is not None else math.nan for v in values], dtype=np.float64)
    keep = np.isfinite(arr)
    if not keep.any():
        return Interval(math.nan, math.nan, math.nan)
    vals = arr[keep]
    kept = None if strata is None else [s for s, k in zip(strata, keep, strict=True) if k]
    return bootstrap_statistic(
        lambda idx: float(np.median(vals[idx])), len(vals), strata=kept, n_boot=n_boot, seed=seed
    )


def _metric_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted({k for r in rows for k in r} - set(ROW_KEYS))


def summarize(
    rows: Sequence[Mapping[str, Any]],
    embeddings: Mapping[str, np.ndarray],
    real_embeddings: np.ndarray,
    *,
    n_boot: int = 1000,
    n_boot_sets: int = 200,
    seed: int = 0,
) -> dict[str, dict[str, Interval]]:
    """{system: {metric: Interval}} from the per-clip rows (in clip order per system) and, for `fd_soundnet`,
    the SoundNet embeddings: a bootstrap over the set, real and generated resampled with the same clips."""
    by_system: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_system[r["system"]].append(r)
    summary: dict[str, dict[str, Interval]] = {}
    for system, rs in by_system.items():
        strata = [str(r["category"]) for r in rs]
        summary[system] = {
            k: aggregate(k, [r.get(k) for r in rs], strata, n_boot=n_boot, seed=seed)
            for k in _metric_keys(rs)
        }
        emb = embeddings.get(system)
        if emb is not None and len(emb) >= 2:  # a Frechet distance needs a covariance: two clips at least
            summary[system]["fd_soundnet"] = bootstrap_statistic(
                lambda idx, e=emb: frechet_distance_lowrank(real_embeddings[idx], e[idx]),
                len(emb),
                strata=strata,
                n_boot=n_boot_sets,
                seed=seed,
            )
    return summary


def per_category(
    rows: Sequence[Mapping[str, Any]], *, n_boot: int = 1000, seed: int = 0
) -> list[dict[str, Any]]:
    """Every metric per (system, category) with its interval: the shape of the papers' per-category tables."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["system"], r["category"])].append(r)
    out = []
    for (system, category), rs in sorted(groups.items()):
        out.append(
            {
                "system": system,
                "category": category,
                "clips": len(rs),
                **{
                    k: aggregate(k, [r.get(k) for r in rs], None, n_boot=n_boot, seed=seed)
                    for k in _metric_keys(rs)
                },
            }
        )
    return out
