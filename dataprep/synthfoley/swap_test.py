"""The timbre swap test (issue 13, item 1): does a model take its timbre from the reference?

For each tonal SynthFoley category (hammer and drum by default) and each timbre parameter (pitch, brightness,
decay): the category's test/val clips are the videos; the clips of lowest and highest ground-truth value of the
parameter are the two references; every video is generated with each reference and the output's parameter is
estimated (`v2s_models.metrics.timbre_estimate`: pitch searched in the category's range from `plan.py`,
brightness = spectral centroid of the attacks, decay = T60). Figures per system, category and parameter:

- `spearman`: rank correlation (average ranks for ties) between the reference's ground-truth parameter and the
  output's estimate over all (video, reference) pairs with a finite estimate. With two reference values per
  video it cannot reach 1: `spearman_max` is its value for outputs ordered exactly as the references.
- `fraction_right`: the share of videos whose output with the high reference minus the output with the low one
  has the sign of high minus low. A tie (the same estimate for both references) counts as not moving, so a
  system that ignores the reference scores 0 (`fraction_tied` says how many tied), and a video whose estimate is
  NaN for either reference counts as not moving too (`videos_nan`). `fraction_wrong`: moved the other way.
- `sim_reference` / `sim_real`: mean Resemblyzer similarity (`v2s_models.metrics.timbre`) of the output to the
  reference clip's audio and to the video's own real track, over the pairs where the reference is another clip;
  `sim_reference_wins`: the share of those pairs where the first beats the second.

Systems: each model given (VarietySound with `reference_mel` = the reference clip's audio, as
`v2s generate --reference` reads it; a model without a reference gives one output per video, used for both);
`revoiced`, the ceiling: the video's own SynthFoley plan re-rendered with the reference's timbre (the events'
sounds with the reference's pitch, decay and brightness, same schedule and background), so the estimator's own
accuracy is visible; `real`, the real clip as it is (no reference: scores 0, like a model that ignores it).
`estimator` rows validate the estimator on the real clips against their ground truth (rank correlation).

    python -m dataprep.synthfoley.swap_test --root . --model models/varietysound_demo/package \\
        --model models/regnet_demo/package --out evaluations/swap_test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from dataprep.synthfoley.plan import TIMBRE_RANGES, Timbre, plan_clip
from dataprep.synthfoley.sound import synthesize_audio
from v2s_models.data import feature_dir, read_manifest
from v2s_models.generation import generate_sound, load_model
from v2s_models.interface import sound_model
from v2s_models.media.audio_decoding import read_audio
from v2s_models.metrics.timbre import resemblyzer_embedding
from v2s_models.metrics.timbre_estimate import TimbreParams, estimate_timbre
from v2s_models.video_to_sound import reference_mel
from v2s_models.vocoding import build_vocoder, vocode

DEFAULT_CATEGORIES = ("hammer", "drum")
DEFAULT_SPLITS = ("test", "val")
# ground-truth parameter -> the estimate it is compared with
PARAMETERS: dict[str, str] = {"pitch_hz": "pitch_hz", "brightness": "centroid_hz", "decay_s": "decay_s"}
PITCH_MARGIN = 1.25  # the pitch search extends the category's range by this factor each way
TIE_RTOL = 1e-9


@dataclass
class SwapClip:
    """One test/val clip: its ground truth (the SynthFoley JSON), video features and real track."""

    clip_id: str
    category: str
    gt: dict[str, Any]
    source: Path
    visual: np.ndarray  # (T', D) the pipeline's features, looped to at least one window
    duration: float


Sound = tuple[np.ndarray, int]  # (waveform (N,) float32, sample rate)
System = Callable[[SwapClip, SwapClip], Sound]  # (video, reference) -> sound


# ---------------------------------------------------------------------------------------------------------
# Statistics


def rank_direction_stats(
    videos: Sequence[str],
    ref_values: Sequence[float],
    out_values: Sequence[float],
    *,
    high: float,
    low: float,
) -> dict[str, Any]:
    """Swap-test figures from (video, reference value, output value) triples, two references per video
    (`high` and `low` reference values): spearman, spearman_max, fraction_right/_wrong/_tied, videos_nan
    (module docstring for how ties and NaN count)."""
    if not len(videos) == len(ref_values) == len(out_values):
        raise ValueError("videos, ref_values and out_values must have the same length")
    x = np.asarray(ref_values, dtype=np.float64)
    y = np.asarray(out_values, dtype=np.float64)
    ok = np.isfinite(y)
    rho = math.nan
    rho_max = math.nan
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0:
        rho_max = float(stats.spearmanr(x[ok], stats.rankdata(x[ok], method="ordinal")).statistic)
        if np.ptp(y[ok]) > 0:
            rho = float(stats.spearmanr(x[ok], y[ok]).statistic)
    per_video: dict[str, dict[float, float]] = {}
    for v, r, o in zip(videos, x, y, strict=True):
        per_video.setdefault(v, {})[float(r)] = float(o)
    right = wrong = tied = nan = 0
    for outs in per_video.values():
        a, b = outs.get(float(high), math.nan), outs.get(float(low), math.nan)
        if not (math.isfinite(a) and math.isfinite(b)):
            nan += 1
        elif abs(a - b) <= TIE_RTOL * max(abs(a), abs(b), 1e-30):
            tied += 1
        elif (a - b) * (high - low) > 0:
            right += 1
        else:
            wrong += 1
    n = max(1, len(per_video))
    return {
        "spearman": rho,
        "spearman_max": rho_max,
        "videos": len(per_video),
        "pairs_finite": int(ok.sum()),
        "fraction_right": right / n,
        "fraction_wrong": wrong / n,
        "fraction_tied": tied / n,
        "videos_nan": nan,
    }


# ---------------------------------------------------------------------------------------------------------
# Clips, references, systems


def load_swap_clips(
    root: Path,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    splits: Sequence[str] = DEFAULT_SPLITS,
    manifest: str = "data/prepared/manifest.jsonl",
    preset: str = "regnet",
) -> dict[str, list[SwapClip]]:
    """The clips of each category in `splits`, with their ground truth, sorted by clip id."""
    out: dict[str, list[SwapClip]] = {c: [] for c in categories}
    for r in read_manifest(manifest, split=list(splits), root=root, categories=list(categories)):
        gt_path = Path(r["ground_truth"])
        gt = json.loads((gt_path if gt_path.is_absolute() else root / gt_path).read_text())
        src = Path(r["source_path"])
        out[r["category"]].append(
            SwapClip(
                clip_id=r["clip_id"],
                category=r["category"],
                gt=gt,
                source=src if src.is_absolute() else root / src,
                visual=np.load(feature_dir(r, preset, root) / "visual.npy").astype(np.float32),
                duration=float(r["duration"]),
            )
        )
    return {c: sorted(v, key=lambda c: c.clip_id) for c, v in out.items()}


def missing_ground_truth(
    root: Path,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    splits: Sequence[str] = DEFAULT_SPLITS,
    manifest: str = "data/prepared/manifest.jsonl",
) -> str | None:
    """Why the swap test cannot run on this data (None: it can): every category needs at least two clips in
    `splits` (a low and a high reference), each with its SynthFoley ground truth (the manifest's
    `ground_truth`, which a user's own videos do not have)."""
    path = Path(manifest) if Path(manifest).is_absolute() else root / manifest
    if not path.is_file():
        return f"{path} not found"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("status") == "ok" and r.get("split") in splits]
    for category in categories:
        clips = [r for r in rows if r.get("category") == category]
        if len(clips) < 2:
            return f"{len(clips)} {category} clip(s) in the {'/'.join(splits)} splits (needs 2)"
        if any(not r.get("ground_truth") for r in clips):
            return f"{category} clips without ground-truth timbre (not SynthFoley data)"
    return None


def pick_references(clips: Sequence[SwapClip], parameter: str) -> tuple[SwapClip, SwapClip]:
    """(low, high): the clips of lowest and highest ground-truth `parameter` (ties: the first clip id)."""
    ordered = sorted(clips, key=lambda c: (c.gt["timbre"][parameter], c.clip_id))
    return ordered[0], ordered[-1]


def revoice(gt: dict[str, Any], timbre: dict[str, float]) -> Sound:
    """The clip of ground truth `gt` re-rendered by SynthFoley with another `timbre` (pitch_hz, decay_s,
    brightness): the same plan (events, background, off-screen sounds), each event sounding for the new decay.
    Returns its mono mix at the clip's sample rate."""
    plan = plan_clip(seed=int(gt["seed"]), category=gt["category"], index=int(gt["index"]), size=gt["size"])
    if plan.ground_truth()["timbre"] != gt["timbre"]:
        raise ValueError(
            f"{gt['clip_id']}: its plan does not reproduce the ground truth (another generator?)"
        )
    new = Timbre(
        pitch_hz=float(timbre["pitch_hz"]),
        decay_s=float(timbre["decay_s"]),
        brightness=float(timbre["brightness"]),
    )
    events = tuple(
        dataclasses.replace(e, offset_s=min(e.onset_s + new.decay_s, plan.duration))
        if e.offset_s == min(e.onset_s + plan.timbre.decay_s, plan.duration)
        else e
        for e in plan.events
    )
    audio = synthesize_audio(dataclasses.replace(plan, timbre=new, events=events))
    return audio.mean(axis=0), plan.sample_rate


class ModelSystem:
    """A trained model as a swap-test system: the video's features, the reference clip's audio as
    `reference_mel` where the model takes one, its mel voiced by `vocoder`, cut to the video's duration."""

    def __init__(self, path: str | Path, *, vocoder: str = "griffin_lim", seed: int = 0) -> None:
        self.package = load_model(path)
        self.generator = sound_model(self.package).eval()
        self.inputs = self.generator.model_inputs()
        if self.inputs.output != "mel" or self.inputs.per_second:
            raise ValueError(f"{path}: the swap test runs models that write a mel per video frame")
        self.settings = self.package.data_settings
        self.vocoder = build_vocoder(vocoder, settings=self.settings, seed=seed)
        self.seed = seed
        self.takes_reference = self.inputs.takes_reference
        self._refs: dict[str, torch.Tensor] = {}

    def __call__(self, video: SwapClip, reference: SwapClip) -> Sound:
        s = self.settings
        window = s.num_frames
        frames = min(window, max(1, math.ceil(video.duration * s.fps - 1e-6)))
        ref = None
        if self.takes_reference:
            if reference.clip_id not in self._refs:
                self._refs[reference.clip_id] = reference_mel(reference.source, s)
            ref = self._refs[reference.clip_id]
        mel = generate_sound(
            self.generator,
            torch.from_numpy(video.visual[:window]),
            window=window,
            overlap=0,
            seed=self.seed,
            pad_mode=s.pad_mode,
            reference_mel=ref,
            num_frames=frames,
        )
        wav = vocode(self.vocoder, mel, hop=s.mel.hop)
        n = int(round(min(video.duration, s.duration) * s.sample_rate))
        out = np.zeros(n, np.float32)
        out[: min(n, wav.shape[0])] = wav[:n]
        return out, s.sample_rate


def real_track(clip: SwapClip, sample_rate: int) -> np.ndarray:
    return read_audio(clip.source, sample_rate=sample_rate)


# ---------------------------------------------------------------------------------------------------------
# The test


def _estimate(sound: Sound, category: str) -> TimbreParams:
    lo, hi = TIMBRE_RANGES[category]["pitch_hz"]
    return estimate_timbre(sound[0], sound[1], pitch_range=(lo / PITCH_MARGIN, hi * PITCH_MARGIN))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def estimator_validation(clips: dict[str, list[SwapClip]], sample_rate: int) -> list[dict[str, Any]]:
    """The estimator on the real clips against their ground truth: rank correlation per category and
    parameter (also centroid / pitch against brightness)."""
    rows = []
    for category, items in clips.items():
        est = [_estimate((real_track(c, sample_rate), sample_rate), category) for c in items]
        pairs = [*PARAMETERS.items(), ("brightness", "centroid_ratio")]
        for gt_key, est_key in pairs:
            x = [c.gt["timbre"][gt_key] for c in items]
            y = [getattr(e, est_key) for e in est]
            ok = [i for i, v in enumerate(y) if math.isfinite(v)]
            rho = (
                float(stats.spearmanr([x[i] for i in ok], [y[i] for i in ok]).statistic)
                if len(ok) > 2
                else None
            )
            rows.append(
                {"category": category, "parameter": gt_key, "estimate": est_key, "clips": len(items),
                 "finite": len(ok), "spearman": rho}
            )  # fmt: skip
    return rows


def run_swap_test(
    root: Path,
    systems: dict[str, System],
    *,
    takes_reference: dict[str, bool],
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    splits: Sequence[str] = DEFAULT_SPLITS,
    parameters: Sequence[str] = tuple(PARAMETERS),
    similarity: bool = True,
    sample_rate: int = 22050,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Every system on every (video, reference) pair of every category and parameter; returns the JSON
    document (`rows`: one per system, category and parameter; `pairs`: every estimate; `estimator`: the
    validation on the real clips). A system with `takes_reference` False is generated once per video.
    `parameters`: a subset of PARAMETERS' keys; `similarity=False` skips Resemblyzer (sim_* become NaN)."""
    unknown = set(parameters) - set(PARAMETERS)
    if unknown:
        raise ValueError(f"unknown swap-test parameter(s) {sorted(unknown)}; known: {sorted(PARAMETERS)}")
    t0 = time.perf_counter()
    clips = load_swap_clips(root, categories=categories, splits=splits)
    real = {c.clip_id: real_track(c, sample_rate) for items in clips.values() for c in items}
    embed_cache: dict[str, np.ndarray] = {}

    def real_embedding(clip_id: str) -> np.ndarray:
        if clip_id not in embed_cache:
            embed_cache[clip_id] = resemblyzer_embedding(real[clip_id], sample_rate)
        return embed_cache[clip_id]

    def similarities(wav: np.ndarray, sr: int, video: str, reference: str) -> tuple[float, float]:
        if not similarity:
            return math.nan, math.nan
        emb = resemblyzer_embedding(wav, sr)
        return _cosine(emb, real_embedding(reference)), _cosine(emb, real_embedding(video))

    all_systems: dict[str, System] = {
        **systems,
        "revoiced": lambda v, r: revoice(v.gt, r.gt["timbre"]),
        "real": lambda v, r: (real[v.clip_id], sample_rate),
    }
    uses_reference = {**takes_reference, "revoiced": True, "real": False}
    cache: dict[tuple[str, str, str], dict[str, float]] = {}
    rows, pairs = [], []
    for category, items in clips.items():
        for parameter in parameters:
            est_key = PARAMETERS[parameter]
            low, high = pick_references(items, parameter)
            for name, system in all_systems.items():
                videos, xs, ys, sims = [], [], [], []
                for video in items:
                    for ref in (low, high):
                        key = (name, video.clip_id, ref.clip_id if uses_reference[name] else "-")
                        if key not in cache:
                            wav, sr = system(video, ref)
                            est = _estimate((wav, sr), category).as_dict()
                            est["sim_reference"], est["sim_real"] = similarities(
                                wav, sr, video.clip_id, ref.clip_id
                            )
                            cache[key] = est
                            log(
                                f"swap test: {name} {video.clip_id} ref {key[2]} ({time.perf_counter() - t0:.0f} s)"
                            )
                        est = cache[key]
                        videos.append(video.clip_id)
                        xs.append(float(ref.gt["timbre"][parameter]))
                        ys.append(est[est_key])
                        if ref.clip_id != video.clip_id and similarity:
                            sims.append((est["sim_reference"], est["sim_real"]))
                        pairs.append(
                            {"system": name, "category": category, "parameter": parameter, "video": video.clip_id,
                             "reference": ref.clip_id, "reference_value": xs[-1], "output_value": ys[-1],
                             "sim_reference": est["sim_reference"], "sim_real": est["sim_real"]}
                        )  # fmt: skip
                row = {
                    "system": name,
                    "category": category,
                    "parameter": parameter,
                    "estimate": est_key,
                    "low_reference": low.clip_id,
                    "low_value": low.gt["timbre"][parameter],
                    "high_reference": high.clip_id,
                    "high_value": high.gt["timbre"][parameter],
                    **rank_direction_stats(
                        videos, xs, ys, high=high.gt["timbre"][parameter], low=low.gt["timbre"][parameter]
                    ),
                    "sim_reference": float(np.mean([a for a, _ in sims])) if sims else None,
                    "sim_real": float(np.mean([b for _, b in sims])) if sims else None,
                    "sim_reference_wins": float(np.mean([a > b for a, b in sims])) if sims else None,
                }
                rows.append(row)
    estimator = estimator_validation(clips, sample_rate)
    return {
        "categories": list(categories),
        "splits": list(splits),
        "parameters": {p: PARAMETERS[p] for p in parameters},
        "rows": rows,
        "estimator": estimator,
        "pairs": pairs,
        "seconds": time.perf_counter() - t0,
    }


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) >= 10 else f"{v:.2f}"
    return str(v)


def markdown(doc: dict[str, Any]) -> str:
    """The swap test's tables (figures, then the estimator's validation) as markdown."""
    cols = ["system", "category", "parameter", "spearman", "spearman_max", "fraction_right", "fraction_wrong",
            "fraction_tied", "videos", "videos_nan", "pairs_finite", "sim_reference", "sim_real", "sim_reference_wins",
            "low_reference", "low_value", "high_reference", "high_value"]  # fmt: skip
    lines = [
        "# Timbre swap test",
        "",
        f"Categories {', '.join(doc['categories'])}; videos: the {'/'.join(doc['splits'])} clips; references: "
        "the clips of lowest and highest ground-truth value. spearman over all (video, reference) pairs "
        "(spearman_max: its value for outputs ordered exactly as the references); fraction_right: videos whose "
        "output moves the reference's way (a tie counts as not moving, fraction_tied); sim_*: Resemblyzer "
        "similarity of the output to the reference / to the video's real track (pairs with another clip as "
        f"reference). Run time {doc['seconds']:.0f} s.",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in doc["rows"]]
    lines += ["", "## The estimator on the real clips (rank correlation with the ground truth)", ""]
    ecols = ["category", "parameter", "estimate", "clips", "finite", "spearman"]
    lines += ["| " + " | ".join(ecols) + " |", "|" + "---|" * len(ecols)]
    lines += ["| " + " | ".join(_fmt(r.get(c)) for c in ecols) + " |" for r in doc["estimator"]]
    return "\n".join(lines) + "\n"


def write_outputs(doc: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "swap_test.json").write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n")
    (out / "swap_test.md").write_text(markdown(doc))


def evaluate_models(
    root: Path,
    models: Sequence[str | Path],
    out: Path,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    parameters: Sequence[str] = tuple(PARAMETERS),
    similarity: bool = True,
    vocoder: str = "griffin_lim",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The swap test of model packages / URIs (e.g. the evaluated VarietySound and REGNET as the no-reference
    baseline), each named by its config's `name`: writes out/swap_test.json and out/swap_test.md and returns
    the document. The evaluate stage calls it with the model's evaluation folder as `out`."""
    systems: dict[str, System] = {}
    takes: dict[str, bool] = {}
    sample_rate = 22050
    for path in models:
        system = ModelSystem(path, vocoder=vocoder, seed=seed)
        name = str(system.package.config.get("name") or Path(path).name)
        if name in systems:  # two packages of one config (e.g. an A/B): tell them apart by their path
            name = f"{name} ({path})"
        systems[name], takes[name] = system, system.takes_reference
        sample_rate = system.settings.sample_rate
    doc = run_swap_test(
        root,
        systems,
        takes_reference=takes,
        categories=categories,
        parameters=parameters,
        similarity=similarity,
        sample_rate=sample_rate,
        log=log,
    )
    doc["models"] = [str(m) for m in models]
    write_outputs(doc, out)
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dataprep.synthfoley.swap_test", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--root", type=Path, default=Path("."), help="project root holding data/ (the manifest)"
    )
    parser.add_argument("--model", action="append", default=[], help="model package / URI (repeatable)")
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (swap_test.json, swap_test.md)"
    )
    parser.add_argument("--categories", nargs="+", default=list(DEFAULT_CATEGORIES))
    parser.add_argument("--vocoder", default="griffin_lim")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--parameters", nargs="+", default=list(PARAMETERS), help="a subset of: " + " ".join(PARAMETERS)
    )
    parser.add_argument("--no-similarity", action="store_true", help="skip Resemblyzer (faster)")
    args = parser.parse_args(argv)
    doc = evaluate_models(
        args.root,
        args.model,
        args.out,
        categories=args.categories,
        parameters=args.parameters,
        similarity=not args.no_similarity,
        vocoder=args.vocoder,
        seed=args.seed,
    )
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
