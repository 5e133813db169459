"""Evaluation of a trained model on a split of the prepared data, beside three baselines, in the papers' shapes.

    v2s evaluate MODEL [--split test] [--out DIR]          # any package folder, checkpoint or MLflow model URI
    python -m experiments.stages evaluate KEY              # the DVC stage: models/KEY -> evaluations/KEY

For every clip of the split the model generates 10 s of sound from the clip's prepared visual features (exactly
the inputs training used), and four other "systems" are built from the same clip:

- `real`: the clip's real audio (the reference every metric compares against; shown, not ranked);
- `revoiced`: the real mel voiced by the same vocoder the model uses (gan_mel models), or the real waveform
  through the same 8-bit quantiser (SampleRNN models): the upper bound VarietySound reports;
- `same_category`: the real audio of another clip of the same category: the right kind of sound at the wrong
  times (the wrong-timing baseline; with VarietySound its reference clip is that same clip);
- `silence`: zeros.

Per clip and system, `v2s_models.metrics.evaluate_clip` gives onset precision / recall / F1 against the clip's
visible events (ground truth on SynthFoley; the real audio's onsets elsewhere), the audio-visual offset in ms,
MCD against the real mel, off-screen energy and timbre-parameter errors (SynthFoley only); the Resemblyzer cosine
to the real audio (and, for VarietySound, to the reference clip) is added. Over the whole set, Frechet distance
and KL on SoundNet embeddings and class outputs compare each system with `real`.

Outputs in OUT: metrics.json (system -> metric -> mean; the DVC metrics file), per_clip.csv, table.{md,csv}
(systems x metrics), per_category.{md,csv} (system x category, the papers' per-category tables),
plots/*.csv (DVC plots) and plots/summary.png, and samples/<system>/<clip>.mp4 for the first few clips (the
clip's own video with each system's soundtrack, cut to the clip's length: the listening-test kit's input).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

SYSTEM = "model"  # the model's rows are written under its own name; this is only the internal key
BASELINES = ("revoiced", "same_category", "silence")
CONTROL = (
    "model_other_video"  # the model's output for another clip of the category (wrong timing, same model)
)
# Headline columns of the tables, in order (whatever the metrics package returns beyond these follows them).
HEADLINE = (
    "onset_f1",
    "onset_precision",
    "onset_recall",
    "av_offset_ms",
    "av_offset_abs_ms",
    "mcd_db",
    "timbre_sim_real",
    "timbre_sim_reference",
    "offscreen_energy_ratio",
    "pitch_error_cents",
    "decay_error_pct",
    "brightness_error",
    "fd_soundnet",
    "kl_soundnet",
)
LOWER_IS_BETTER = {
    "av_offset_abs_ms",
    "mcd_db",
    "mcd_mel_db",
    "offscreen_energy_ratio",
    "pitch_error_cents",
    "decay_error_pct",
    "brightness_error",
    "fd_soundnet",
    "kl_soundnet",
}
DEFAULTS: dict[str, Any] = {
    "split": "test",
    "vocoder": "griffin_lim",
    "max_clips": None,
    "samples": 8,
    "seed": 0,
}


@dataclass
class EvalClip:
    """One clip of the split: its model inputs, real audio and ground truth."""

    clip_id: str
    category: str
    visual: np.ndarray  # (T, D) float32, the prepared features
    real_wav: np.ndarray  # (N,) float32 at the preset's rate, looped to the window as in training
    real_mel: np.ndarray | None  # (n_mels, L) RegNet convention, when the preset has mels
    gt: dict[str, Any] | None  # SynthFoley ground truth (events in the clip's own time), else None
    source: Path  # the original video
    duration: float  # the original clip's length in seconds (one loop period)


@dataclass
class Evaluation:
    """What `evaluate` returns: model name, per-system means, per-clip rows, where the files went."""

    name: str
    systems: list[str]
    summary: dict[str, dict[str, float]]
    per_clip: list[dict[str, Any]]
    per_category: list[dict[str, Any]]
    out: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None  # the MLflow run that trained the model, when the package records it


# --------------------------------------------------------------------------------------------- inputs
def _preset_of(package: Any) -> str:
    preset = (package.config.get("data") or {}).get("preset")
    if preset:
        return str(preset)
    return str(package.data_settings.name)


def load_clips(
    package: Any, *, root: Path, split: str = "test", max_clips: int | None = None
) -> list[EvalClip]:
    """The split's clips with the inputs this model was trained on (read through the pipeline's manifest)."""
    import soundfile as sf

    from v2s_models.data import decoded_dir, feature_dir, read_manifest

    data = package.config.get("data") or {}
    manifest = data.get("manifest", "data/prepared/manifest.jsonl")
    preset = _preset_of(package)
    part = package.features.get("visual_part") or data.get("visual_part") or "all"
    rows = read_manifest(manifest, split=split, root=root, max_clips=max_clips)
    sr = package.data_settings.sample_rate
    clips = []
    for r in rows:
        fdir = feature_dir(r, preset, root)
        visual = np.load(fdir / "visual.npy").astype(np.float32)
        if part != "all":
            half = visual.shape[1] // 2
            visual = visual[:, :half] if part == "appearance" else visual[:, half:]
        wav, file_sr = sf.read(decoded_dir(r, preset, root) / "audio.wav", dtype="float32", always_2d=False)
        if wav.ndim > 1:
            wav = wav.mean(axis=1)
        if file_sr != sr:
            raise ValueError(
                f"clip {r['clip_id']}: decoded audio is {file_sr} Hz, the model's data settings say {sr} Hz "
                "(the data was prepared with other presets than the model was trained on)"
            )
        mel = np.load(fdir / "mel.npy").astype(np.float32) if (fdir / "mel.npy").is_file() else None
        gt = None
        if r.get("ground_truth"):
            gt_path = Path(r["ground_truth"])
            gt_path = gt_path if gt_path.is_absolute() else root / gt_path
            if gt_path.is_file():
                gt = json.loads(gt_path.read_text())
        src = Path(r["source_path"])
        clips.append(
            EvalClip(
                clip_id=r["clip_id"],
                category=r["category"],
                visual=visual,
                real_wav=wav.astype(np.float32),
                real_mel=mel,
                gt=gt,
                source=src if src.is_absolute() else root / src,
                duration=float(r.get("duration") or len(wav) / sr),
            )
        )
    return clips


def partners(clips: Sequence[EvalClip]) -> dict[str, str]:
    """Each clip's partner: the next clip of its category (sorted, cyclic); another category's if alone."""
    by_cat: dict[str, list[str]] = defaultdict(list)
    for c in sorted(clips, key=lambda c: c.clip_id):
        by_cat[c.category].append(c.clip_id)
    everyone = sorted(c.clip_id for c in clips)
    out = {}
    for ids in by_cat.values():
        for i, cid in enumerate(ids):
            if len(ids) > 1:
                out[cid] = ids[(i + 1) % len(ids)]
            elif len(everyone) > 1:
                out[cid] = everyone[(everyone.index(cid) + 1) % len(everyone)]
            else:
                out[cid] = cid
    return out


# ----------------------------------------------------------------------------------------- generation
def _fit(wav: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    out[: min(n, len(wav))] = wav[:n]
    return out


def synthesize(
    package: Any,
    clips: Sequence[EvalClip],
    *,
    vocoder: str = "griffin_lim",
    seed: int = 0,
    device: str = "cpu",
    seconds: float | None = None,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray], dict[str, str]]:
    """({system: {clip: wav}}, {clip: generated mel} (gan_mel), {clip: reference clip} (VarietySound)).

    seconds: keep only the first `seconds` of every system (SampleRNN models generate only that much)."""
    from v2s_models.audio import dequantize_linear, quantize_linear
    from v2s_models.generation import (
        build_vocoder,
        generate_autoregressive,
        generate_gan_mel,
        generator_module,
        needs_reference,
        vocode,
    )

    settings = package.data_settings
    generator = generator_module(package).to(device).eval()
    window = settings.num_frames
    n = (
        settings.num_samples
        if seconds is None
        else min(settings.num_samples, int(round(seconds * settings.sample_rate)))
    )
    mate = partners(clips)
    by_id = {c.clip_id: c for c in clips}
    systems: dict[str, dict[str, np.ndarray]] = {s: {} for s in (SYSTEM, *BASELINES)}
    mels: dict[str, np.ndarray] = {}
    references: dict[str, str] = {}
    voc = None
    if package.paradigm == "gan_mel":
        voc = build_vocoder(vocoder, settings=settings, device=device, seed=seed)
    elif package.paradigm != "autoregressive":
        raise ValueError(
            f"evaluation generates sound: it needs a gan_mel or autoregressive model, not {package.paradigm!r} "
            "(a correlation tower is evaluated by retrieval: v2s_models.evaluation.retrieval)"
        )
    wants_ref = needs_reference(generator)
    for c in clips:
        visual = torch.from_numpy(c.visual)
        if visual.shape[0] < window:
            raise ValueError(f"clip {c.clip_id}: {visual.shape[0]} feature frames, the model needs {window}")
        visual = visual[:window]
        partner = by_id[mate[c.clip_id]]
        if package.paradigm == "gan_mel":
            ref = None
            if wants_ref:
                if partner.real_mel is None:
                    raise ValueError(
                        f"clip {partner.clip_id} has no mel features to use as a timbre reference"
                    )
                ref = torch.from_numpy(partner.real_mel)
                references[c.clip_id] = partner.clip_id
            mel = generate_gan_mel(
                generator, visual, window=window, overlap=0, seed=seed, reference_mel=ref, num_frames=window
            )
            mels[c.clip_id] = mel.numpy()
            wav = vocode(voc, mel, hop=settings.mel.hop)
            if c.real_mel is None:
                raise ValueError(f"clip {c.clip_id} has no mel features: cannot re-voice its real audio")
            revoiced = vocode(voc, torch.from_numpy(c.real_mel), hop=settings.mel.hop)
        else:
            wav = generate_autoregressive(
                generator,
                visual,
                window=window,
                overlap=0,
                samples_per_frame=settings.sample_rate / settings.fps,
                num_samples=n,
                seed=seed,
                num_frames=window,
            ).numpy()
            revoiced = dequantize_linear(quantize_linear(c.real_wav), 256)
        systems[SYSTEM][c.clip_id] = _fit(wav, n)
        systems["revoiced"][c.clip_id] = _fit(np.asarray(revoiced, np.float32), n)
        systems["same_category"][c.clip_id] = _fit(partner.real_wav, n)
        systems["silence"][c.clip_id] = np.zeros(n, np.float32)
    # The control: the model's own sound for the partner clip's video (same model, same category, the wrong
    # picture). Beating `same_category` shows the sound has the right density of events; beating this shows
    # the model's timing follows the picture it was given.
    systems[CONTROL] = {c.clip_id: systems[SYSTEM][mate[c.clip_id]] for c in clips}
    return systems, mels, references


# -------------------------------------------------------------------------------------------- metrics
def _mean(values: Sequence[float]) -> float:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(finite)) if finite else float("nan")


# Timbre-parameter errors are estimated from the generated audio (pitch, decay, brightness at the event onsets);
# on clips where the estimate fails (noise, smeared onsets) one clip can be off by octaves or by 1000 %, so these
# are summarised by their median over clips; every other metric by its mean.
MEDIAN_METRICS = frozenset(
    f"{prefix}{k}"
    for prefix in ("", "reference_")
    for k in ("pitch_error_cents", "decay_error_pct", "brightness_error")
)


def _aggregate(key: str, values: Sequence[float]) -> float:
    if key not in MEDIAN_METRICS:
        return _mean(values)
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.median(finite)) if finite else float("nan")


def score(
    package: Any,
    clips: Sequence[EvalClip],
    systems: Mapping[str, Mapping[str, np.ndarray]],
    *,
    mels: Mapping[str, np.ndarray] | None = None,
    references: Mapping[str, str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """(per-clip rows, {system: {metric: value}} with set-level metrics) for the generated `systems`."""
    from v2s_models import metrics as M
    from v2s_models.metrics.distribution import soundnet_set
    from v2s_models.metrics.timbre import resemblyzer_embedding

    settings = package.data_settings
    sr, fps = settings.sample_rate, settings.fps
    by_id = {c.clip_id: c for c in clips}
    references = references or {}
    real_emb = {c.clip_id: resemblyzer_embedding(c.real_wav, sr) for c in clips}  # each real clip once
    rows: list[dict[str, Any]] = []
    for system, wavs in systems.items():
        for cid, wav in wavs.items():
            c = by_id[cid]
            m = M.evaluate_clip(wav, sr, reference_wave=c.real_wav, gt=c.gt, fps=fps)
            if math.isfinite(m.get("av_offset_ms", math.nan)):
                m["av_offset_abs_ms"] = abs(m["av_offset_ms"])
            emb = resemblyzer_embedding(wav, sr)
            m["timbre_sim_real"] = _cosine(emb, real_emb[cid])
            ref = references.get(cid)
            if ref is not None:
                m["timbre_sim_reference"] = _cosine(emb, real_emb[ref])
                if by_id[ref].gt is not None and c.gt is not None:  # the timbre asked for: the reference's
                    onsets = M.visible_onsets(M.tile_ground_truth(c.gt, len(wav) / sr))
                    est = M.timbre_params(wav, sr, onsets)
                    if all(math.isfinite(v) for v in est.values()):
                        err = M.timbre_error(est, by_id[ref].gt)
                        m.update({f"reference_{k}": v for k, v in err.items()})
            if system == SYSTEM and mels and cid in mels and c.real_mel is not None:
                m["mcd_mel_db"] = M.mel_cepstral_distortion(mels[cid], c.real_mel)
            rows.append({"system": system, "clip_id": cid, "category": c.category, **m})
    summary: dict[str, dict[str, float]] = {}
    real_set = soundnet_set([c.real_wav for c in clips], sr)  # (embeddings, class probabilities), once
    for system, wavs in systems.items():
        keys = sorted(
            {k for r in rows if r["system"] == system for k in r} - {"system", "clip_id", "category"}
        )
        summary[system] = {k: _aggregate(k, [r.get(k) for r in rows if r["system"] == system]) for k in keys}
        emb, probs = soundnet_set([wavs[c.clip_id] for c in clips], sr)
        summary[system]["kl_soundnet"] = M.kl_divergence(real_set[1], probs)
        if len(clips) >= 2:  # a Frechet distance needs a covariance: two clips at least
            summary[system]["fd_soundnet"] = M.frechet_distance(real_set[0], emb)
    return rows, summary


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.dot(a, b) / (na * nb)) if na > 0 and nb > 0 else float("nan")


def per_category(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Means of every metric per (system, category), the shape of the papers' per-category tables."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["system"], r["category"])].append(r)
    out = []
    for (system, category), rs in sorted(groups.items()):
        keys = sorted({k for r in rs for k in r} - {"system", "clip_id", "category"})
        out.append(
            {
                "system": system,
                "category": category,
                "clips": len(rs),
                **{k: _aggregate(k, [r.get(k) for r in rs]) for k in keys},
            }
        )
    return out


# ------------------------------------------------------------------------- likelihood and retrieval
def _solver_with_weights(package: Any, root: Path, manifest: str | None) -> Any:
    """The package's training solver (data pipeline, cropping) with the package's trained weights."""
    import copy

    from v2s_models.training.loop import build_solver

    cfg = copy.deepcopy(package.config)
    if manifest is not None:
        cfg["data"]["manifest"] = manifest
    cfg["data"].pop("max_clips", None)
    solver = build_solver(cfg, root=root)
    for name, module in package.modules.items():
        if name in solver.modules:
            solver.modules[name].load_state_dict(module.state_dict())
    solver.train(False)
    return solver


@torch.inference_mode()
def likelihood_retrieval(
    package: Any,
    *,
    root: str | Path = ".",
    split: str = "test",
    max_clips: int | None = 32,
    seconds: float = 1.0,
    manifest: str | None = "data/prepared/manifest.jsonl",
) -> dict[str, float]:
    """SampleRNN models: Zhou et al.'s Table 1 metric and the correlation project's retrieval experiment.

    NLL[i, j] = average negative log-likelihood per sample (nats) of clip j's real audio (its first `seconds`,
    teacher-forced exactly as in training) given clip i's video. Returns `nll_nats` / `nll_bits` (the matched
    pairs, the diagonal), `nll_mismatched_nats` (the off-diagonal mean: what the video is worth), and for each
    video as the query, the candidates ranked by likelihood: `recall@1/5/10`, `median_rank`, `mean_rank`
    (chance: recall@k = k / N, median rank (N + 1) / 2), plus `retrieval_clips` = N. `manifest`: the clips
    to score (default: the unfiltered prepared set, whatever subset the model was trained on).
    """
    from v2s_models import metrics as M
    from v2s_models.correlation import sequence_nll
    from v2s_models.data import collate_dicts

    if package.paradigm != "autoregressive":
        raise ValueError(
            f"likelihood retrieval needs a SampleRNN (autoregressive) model, not {package.paradigm!r}"
        )
    solver = _solver_with_weights(package, Path(root).resolve(), manifest)
    rows = solver._rows(split)[: max_clips or None]
    if len(rows) < 2:
        raise ValueError(f"retrieval needs at least 2 clips in split {split!r}, got {len(rows)}")
    ds = solver._dataset(rows)
    batch = collate_dicts([ds[i] for i in range(len(ds))])
    wav, visual = solver._inputs(batch)
    wav, visual, extra = solver.crop(wav, visual, seconds=seconds, random=False)
    model = solver.unwrapped("model")
    n = wav.shape[0]
    chunk = min(int(getattr(solver, "chunk_len", 1024)), wav.shape[1])
    nll = np.zeros((n, n), np.float64)
    for i in range(n):  # query video i against every candidate audio j
        rep = {k: v[i : i + 1].expand(n, *v.shape[1:]) for k, v in extra.items()}
        q = visual[i : i + 1].expand(n, *visual.shape[1:])
        nll[i] = sequence_nll(model, wav, q, chunk_len=chunk, **rep).double().cpu().numpy()
    diag = float(np.mean(np.diag(nll)))
    off = float((nll.sum() - np.trace(nll)) / (n * n - n))
    return {
        "nll_nats": diag,
        "nll_bits": float(M.nats_to_bits(diag)),
        "nll_mismatched_nats": off,
        **M.retrieval_metrics(nll, higher_is_better=False),
        "retrieval_clips": float(n),
    }


@torch.inference_mode()
def tower_retrieval(
    package: Any, *, root: str | Path = ".", split: str = "test", max_clips: int | None = None
) -> dict[str, float]:
    """The correlation tower as a retriever: score[i, j] = tower logit of (clip i's video, clip j's audio)
    over the split's per-second features; recall@1/5/10, median and mean rank of the true audio."""
    from v2s_models import metrics as M
    from v2s_models.data import PerSecondDataset, read_manifest

    if package.paradigm != "correlation":
        raise ValueError(f"tower retrieval needs a correlation model, not {package.paradigm!r}")
    tower = package.modules["tower"].eval()
    rows = read_manifest("data/prepared/manifest.jsonl", split=split, root=Path(root), max_clips=max_clips)
    if len(rows) < 2:
        raise ValueError(f"retrieval needs at least 2 clips in split {split!r}, got {len(rows)}")
    ds = PerSecondDataset(rows, root=Path(root))
    items = [ds[i] for i in range(len(ds))]
    s = min(min(it["appearance"].shape[0], it["audio"].shape[0]) for it in items)
    video = torch.stack([it["appearance"][:s] for it in items])
    audio = torch.stack([it["audio"][:s] for it in items])
    n = len(items)
    scores = np.stack(
        [tower(video[i : i + 1].expand(n, -1, -1), audio).float().reshape(n).numpy() for i in range(n)]
    )
    return {**M.retrieval_metrics(scores, higher_is_better=True), "retrieval_clips": float(n)}


def chance_retrieval(n: int, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """What a random ranking of N candidates gives on average: recall@k = min(k, N) / N, ranks (N + 1) / 2."""
    return {
        **{f"recall@{k}": min(k, n) / n for k in ks},
        "median_rank": (n + 1) / 2,
        "mean_rank": (n + 1) / 2,
        "retrieval_clips": float(n),
    }


# -------------------------------------------------------------------------------------------- writing
def ordered_columns(keys: set[str] | Sequence[str]) -> list[str]:
    keys = set(keys)
    return [k for k in HEADLINE if k in keys] + sorted(keys - set(HEADLINE))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if i < 1 else "---:" for i, _ in enumerate(columns)) + "|"
    body = ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body]) + "\n"


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in columns})


def summary_rows(name: str, summary: Mapping[str, Mapping[str, float]]) -> list[dict[str, Any]]:
    order = [SYSTEM, *BASELINES, CONTROL] + sorted(set(summary) - {SYSTEM, *BASELINES, CONTROL})
    return [{"system": name if s == SYSTEM else s, **summary[s]} for s in order if s in summary]


def _plot(path: Path, rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in metrics if any(isinstance(r.get(m), float) and math.isfinite(r[m]) for r in rows)]
    if not metrics:
        return
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.0), squeeze=False)
    names = [str(r["system"]) for r in rows]
    for ax, m in zip(axes[0], metrics, strict=True):
        vals = [float(r.get(m, float("nan"))) for r in rows]
        ax.barh(names, vals, color=["tab:blue"] + ["tab:gray"] * (len(rows) - 1))
        ax.set_title(m + (" (lower better)" if m in LOWER_IS_BETTER else ""), fontsize=9)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_outputs(
    out: Path,
    name: str,
    summary: Mapping[str, Mapping[str, float]],
    rows: Sequence[Mapping[str, Any]],
    cats: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
) -> None:
    """metrics.json, per_clip.csv, table.{md,csv}, per_category.{md,csv}, plots/ into `out` (files replaced)."""
    out.mkdir(parents=True, exist_ok=True)
    table = summary_rows(name, summary)
    cols = ["system", *ordered_columns({k for r in table for k in r} - {"system"})]
    renamed = [{**r, "system": name if r["system"] == SYSTEM else r["system"]} for r in rows]
    cat_rows = [{**r, "system": name if r["system"] == SYSTEM else r["system"]} for r in cats]
    metrics = {r["system"]: {k: v for k, v in r.items() if k != "system"} for r in table}
    doc = {"model": name, **dict(meta), "systems": metrics}
    (out / "metrics.json").write_text(json.dumps(doc, indent=2, sort_keys=False, allow_nan=True) + "\n")
    _write_csv(out / "table.csv", table, cols)
    lines = [
        f"# Evaluation of {name}",
        "",
        f"Split `{meta.get('split')}`, {meta.get('clips')} clips, vocoder `{meta.get('vocoder')}`, data "
        f"`{meta.get('data_fingerprint', '')[:12]}`. Lower is better for: "
        + ", ".join(sorted(c for c in cols if c in LOWER_IS_BETTER))
        + ".",
        "",
        markdown_table(table, cols),
    ]
    (out / "table.md").write_text("\n".join(lines))
    clip_cols = [
        "system",
        "clip_id",
        "category",
        *ordered_columns({k for r in renamed for k in r} - {"system", "clip_id", "category"}),
    ]
    _write_csv(out / "per_clip.csv", renamed, clip_cols)
    cat_cols = [
        "system",
        "category",
        "clips",
        *ordered_columns({k for r in cat_rows for k in r} - {"system", "category", "clips"}),
    ]
    _write_csv(out / "per_category.csv", cat_rows, cat_cols)
    head = [
        c
        for c in ("onset_f1", "av_offset_abs_ms", "mcd_db", "timbre_sim_real", "timbre_sim_reference")
        if c in cat_cols
    ]
    pivot = []
    for category in sorted({r["category"] for r in cat_rows}):
        row: dict[str, Any] = {"category": category}
        for r in cat_rows:
            if r["category"] == category:
                for m in head:
                    row[f"{r['system']}:{m}"] = r.get(m, float("nan"))
        pivot.append(row)
    systems = [r["system"] for r in table]
    pcols = ["category", *[f"{s}:{m}" for m in head for s in systems]]
    (out / "per_category.md").write_text(
        f"# {name}: per category ({meta.get('split')} split)\n\n" + markdown_table(pivot, pcols)
    )
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for m in ("onset_f1", "mcd_db", "av_offset_abs_ms"):
        if m in cols:
            _write_csv(plots / f"{m}.csv", table, ["system", m])
    _plot(plots / "summary.png", table, ["onset_f1", "av_offset_abs_ms", "mcd_db", "fd_soundnet"])


def write_samples(
    out: Path,
    name: str,
    clips: Sequence[EvalClip],
    systems: Mapping[str, Mapping[str, np.ndarray]],
    sample_rate: int,
    count: int,
) -> list[Path]:
    """samples/<system>/<clip>.mp4 for the first `count` clips: the clip's video with each system's sound,
    cut to the clip's own length (one loop period), plus `real`."""
    from dataprep.mux import mux_audio

    written = []
    for c in list(clips)[: max(0, count)]:
        n = int(round(c.duration * sample_rate))
        tracks = {
            "real": c.real_wav,
            **{(name if s == SYSTEM else s): w[c.clip_id] for s, w in systems.items() if s != CONTROL},
        }
        for system, wav in tracks.items():
            dest = out / "samples" / system / (c.clip_id.replace("/", "__") + ".mp4")
            dest.parent.mkdir(parents=True, exist_ok=True)
            mux_audio(c.source, np.clip(wav[:n], -1.0, 1.0), sample_rate, dest)
            written.append(dest)
    return written


# ------------------------------------------------------------------------------------------ the whole
def evaluate(
    model: str | Path,
    *,
    root: str | Path = ".",
    out: str | Path | None = None,
    name: str | None = None,
    split: str = "test",
    vocoder: str = "griffin_lim",
    max_clips: int | None = None,
    samples: int = 4,
    seed: int = 0,
    device: str = "cpu",
    generate_seconds: float | None = None,
    retrieval_clips: int | None = 32,
    retrieval_seconds: float = 1.0,
) -> Evaluation:
    """Evaluates `model` (package folder, checkpoint or MLflow URI) on `split`; writes `out` if given.

    gan_mel and autoregressive models: generation beside the baselines (module docstring); SampleRNN models
    also get `likelihood_retrieval` (NLL per sample, retrieval by likelihood over `retrieval_clips` clips and
    the first `retrieval_seconds`). SampleRNN generation is sample by sample, so `generate_seconds` (default
    2 s for them, the whole 10 s window for mel models) limits what is generated and scored. A correlation
    tower is evaluated by `tower_retrieval` beside the chance level.
    """
    from v2s_models.data import dataset_fingerprint, read_manifest
    from v2s_models.generation import load_model

    for what, value, low in (
        ("generate_seconds", generate_seconds, 0.0),
        ("retrieval_seconds", retrieval_seconds, 0.0),
    ):
        if value is not None and not value > low:
            raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
    for what, value, low in (
        ("max_clips", max_clips, 1),
        ("retrieval_clips", retrieval_clips, 2),
        ("samples", samples, 0),
    ):
        if value is not None and value < low:
            raise ValueError(f"{what} must be at least {low}, got {value!r}")
    t0 = time.perf_counter()
    root = Path(root).resolve()
    package = load_model(model, device=device)
    if package.paradigm not in ("gan_mel", "autoregressive", "correlation"):
        raise ValueError(
            f"{model}: evaluation needs a gan_mel, autoregressive or correlation model, not a "
            f"{package.paradigm!r} one (vocoders are scored by their own validation)"
        )
    name = name or str(package.config.get("name") or Path(str(model)).name)
    rows: list[dict[str, Any]] = []
    cats: list[dict[str, Any]] = []
    clips: list[EvalClip] = []
    systems: dict[str, dict[str, np.ndarray]] = {}
    refs: dict[str, str] = {}
    t1 = time.perf_counter()
    if package.paradigm == "correlation":
        found = tower_retrieval(package, root=root, split=split, max_clips=retrieval_clips)
        summary = {SYSTEM: found, "chance": chance_retrieval(int(found["retrieval_clips"]))}
        t2 = t3 = time.perf_counter()
    else:
        clips = load_clips(package, root=root, split=split, max_clips=max_clips)
        if generate_seconds is None and package.paradigm == "autoregressive":
            generate_seconds = 2.0
        systems, mels, refs = synthesize(
            package, clips, vocoder=vocoder, seed=seed, device=device, seconds=generate_seconds
        )
        if generate_seconds is not None:
            n = int(round(generate_seconds * package.data_settings.sample_rate))
            for c in clips:
                c.real_wav = _fit(c.real_wav, n)
        t2 = time.perf_counter()
        rows, summary = score(package, clips, systems, mels=mels, references=refs)
        cats = per_category(rows)
        if package.paradigm == "autoregressive":
            summary[SYSTEM].update(
                likelihood_retrieval(
                    package, root=root, split=split, max_clips=retrieval_clips, seconds=retrieval_seconds
                )
            )
        t3 = time.perf_counter()
    seconds = {"load_s": t1 - t0, "generate_s": t2 - t1, "score_s": t3 - t2}
    result = Evaluation(
        name=name,
        systems=[name, *(s for s in summary if s != SYSTEM)],
        summary=summary,
        per_clip=rows,
        per_category=cats,
        out=None,
        seconds=seconds,
        run_id=package.extra.get("mlflow_run_id"),
    )
    if out is not None:
        out = Path(out)
        data = package.config.get("data") or {}
        preset = "persecond" if package.paradigm == "correlation" else _preset_of(package)
        manifest_rows = read_manifest(
            data.get("manifest", "data/prepared/manifest.jsonl"), split=split, root=root
        )
        meta = {
            "split": split,
            "clips": len(clips) if clips else int(summary[SYSTEM]["retrieval_clips"]),
            "vocoder": {"gan_mel": vocoder, "autoregressive": "8-bit linear quantiser"}.get(package.paradigm),
            "paradigm": package.paradigm,
            "seed": seed,
            "generated_seconds": generate_seconds or package.data_settings.duration,
            "data_fingerprint": dataset_fingerprint(manifest_rows, [preset], root),
            "references": "another clip of the same category" if refs else None,
        }
        tmp = out.with_name(out.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        write_outputs(tmp, name, summary, rows, cats, meta)
        if clips:
            write_samples(tmp, name, clips, systems, package.data_settings.sample_rate, samples)
        seconds["write_s"] = time.perf_counter() - t3
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
        result.out = out
    return result


def log_to_mlflow(evaluation: Evaluation, run_id: str, *, tracking_uri: str) -> None:
    """The evaluation's means as metrics `eval/<system>/<metric>` and its tables / plots as artifacts
    (`evaluation/`) of MLflow run `run_id` (the run that trained the model)."""
    from v2s_models.tracking import MLflowTracker

    tracker = MLflowTracker(tracking_uri=tracking_uri, run_id=run_id)
    flat = {}
    for system, metrics in evaluation.summary.items():
        label = evaluation.name if system == SYSTEM else system
        for k, v in metrics.items():
            if isinstance(v, float) and math.isfinite(v):
                flat[f"eval/{label}/{k}"] = v
    tracker.log_metrics(flat, step=0)
    if evaluation.out is not None:
        for f in (
            "metrics.json",
            "table.md",
            "table.csv",
            "per_category.md",
            "per_category.csv",
            "per_clip.csv",
        ):
            tracker.log_artifact(evaluation.out / f, artifact_path="evaluation")
        for f in sorted((evaluation.out / "plots").glob("*")):
            tracker.log_artifact(f, artifact_path="evaluation/plots")


# ----------------------------------------------------------------------------------- the DVC stages
def _stage_params(root: Path) -> dict[str, Any]:
    from dataprep.params import load_params

    params = load_params(root / "params.yaml")
    cfg = {**DEFAULTS, **(params.get("evaluate") or {})}
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"params.yaml evaluate.{unknown[0]}: unknown key (known: {', '.join(sorted(DEFAULTS))})"
        )
    return cfg


def evaluate_stage(key: str, *, root: Path) -> Evaluation:
    """DVC stage `evaluate@KEY`: models/KEY/package -> evaluations/KEY, logged to the model's MLflow run."""
    from v2s_models.tracking import default_tracking_uri

    cfg = _stage_params(root)
    model_dir = root / "models" / key
    record_path = model_dir / "train.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run `dvc repro train@{key}` first")
    record = json.loads(record_path.read_text())
    result = evaluate(
        model_dir / "package",
        root=root,
        out=root / "evaluations" / key,
        name=key,
        split=str(cfg["split"]),
        vocoder=str(cfg["vocoder"]),
        max_clips=cfg["max_clips"],
        samples=int(cfg["samples"]),
        seed=int(cfg["seed"]),
    )
    if record.get("mlflow_run_id"):
        log_to_mlflow(result, record["mlflow_run_id"], tracking_uri=default_tracking_uri(root))
    print((result.out / "table.md").read_text() if result.out else "", flush=True)
    return result


def report_stage(*, root: Path) -> Path:
    """DVC stage `report`: every evaluations/*/metrics.json in one table (results/results.{md,csv})."""
    evaluations = root / "evaluations"
    results = root / "results"
    results.mkdir(exist_ok=True)
    docs = sorted(evaluations.glob("*/metrics.json"))
    if not docs:
        raise FileNotFoundError(f"no {evaluations}/*/metrics.json: run the evaluate stages first")
    rows: list[dict[str, Any]] = []
    for p in docs:
        doc = json.loads(p.read_text())
        for system, metrics in doc["systems"].items():
            rows.append({"evaluation": doc["model"], "system": system, **metrics})
    cols = ["evaluation", "system", *ordered_columns({k for r in rows for k in r} - {"evaluation", "system"})]
    _write_csv(results / "results.csv", rows, cols)
    short = [c for c in cols if c in ("evaluation", "system") or c in HEADLINE]
    (results / "results.md").write_text(
        "# Results of every default model beside the baselines\n\n"
        "Made by `dvc repro` (stage `report`); each model's own tables are in evaluations/<model>/.\n\n"
        + markdown_table(rows, short)
    )
    log_results_to_mlflow(results, rows, root=root)
    print((results / "results.md").read_text(), flush=True)
    return results / "results.md"


def log_results_to_mlflow(results: Path, rows: Sequence[Mapping[str, Any]], *, root: Path) -> str:
    """The results table as a run `results` of MLflow experiment `evaluation`: metrics
    `<evaluation>/<system>/<metric>` and results.{md,csv} as artifacts; returns the run id."""
    from v2s_models.tracking import MLflowTracker, default_artifact_root, default_tracking_uri

    tracker = MLflowTracker.create(
        tracking_uri=default_tracking_uri(root),
        experiment="evaluation",
        run_name="results",
        artifact_root=default_artifact_root(root),
        tags={
            "v2s.kind": "results",
            "v2s.evaluations": ",".join(sorted({str(r["evaluation"]) for r in rows})),
        },
    )
    metrics = {
        f"{r['evaluation']}/{r['system']}/{k}": float(v)
        for r in rows
        for k, v in r.items()
        if k not in ("evaluation", "system") and isinstance(v, int | float) and math.isfinite(float(v))
    }
    tracker.log_metrics(metrics, step=0)
    for f in ("results.md", "results.csv"):
        tracker.log_artifact(results / f)
    tracker.end("FINISHED")
    return tracker.run_id
