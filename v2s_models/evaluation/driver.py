"""`evaluate`: one model on a split, beside the baselines, every figure with its interval (package docstring)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from v2s_models.data import dataset_fingerprint, read_manifest
from v2s_models.evaluation.baselines import (
    PER_SECOND_FEATURES,
    RETRIEVAL_BASELINE,
    SYSTEM,
    Background,
    EvalClip,
    Synthesis,
    fit_length,
    load_clips,
    preset_of,
    retrieval_oracle,
    synthesize,
)
from v2s_models.evaluation.cluster import ClipRunner, check_cluster
from v2s_models.evaluation.reporting import write_outputs, write_samples
from v2s_models.evaluation.retrieval import chance_retrieval, likelihood_retrieval, tower_retrieval
from v2s_models.evaluation.scoring import per_category, score_clips, summarize
from v2s_models.generation import load_model
from v2s_models.interface import sound_model
from v2s_models.metrics.standard import standard_metrics, weights_status
from v2s_models.metrics.stats import Interval


@dataclass
class Evaluation:
    """What `evaluate` returns: model name, per-system figures with intervals, per-clip rows, the files."""

    name: str
    systems: list[str]
    summary: dict[str, dict[str, Interval]]
    per_clip: list[dict[str, Any]]
    per_category: list[dict[str, Any]]
    out: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None  # the MLflow run that trained the model, when the package records it
    meta: dict[str, Any] = field(default_factory=dict)
    # every system scored on the first `seconds` of each clip (`excerpt_seconds`): {"seconds", "summary"}
    excerpt: dict[str, Any] | None = None


def _check_settings(**values: Any) -> None:
    for what in ("generate_seconds", "retrieval_seconds", "excerpt_seconds"):
        value = values[what]
        if value is not None and not value > 0.0:
            raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
    for what, low in (("max_clips", 1), ("retrieval_clips", 2), ("samples", 0), ("bootstrap", 1)):
        value = values[what]
        if value is not None and value < low:
            raise ValueError(f"{what} must be at least {low}, got {value!r}")
    if values["background"] not in ("silence", "real"):
        raise ValueError(f"background must be 'silence' or 'real', got {values['background']!r}")


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
    retrieval_seconds: float | None = None,
    background: Background = "silence",
    retrieval_baseline: bool | None = None,
    bootstrap: int = 1000,
    bootstrap_sets: int = 200,
    standard_settings: Mapping[str, Any] | None = None,
    cluster: str | None = None,
    excerpt_seconds: float | None = None,
) -> Evaluation:
    """Evaluates `model` (package folder, checkpoint or MLflow URI) on `split`; writes `out` if given.

    gan_mel and autoregressive models: generation beside the baselines; SampleRNN models also get
    `likelihood_retrieval` over `retrieval_clips` clips drawn evenly from every category, on whole clips or
    their first `retrieval_seconds`. SampleRNN generation is sample by sample, so `generate_seconds` (default
    2 s for them, the whole 10 s window for mel models) limits what is generated and scored. A correlation
    tower is evaluated by `tower_retrieval` beside the chance level. max_clips: a category-stratified seeded
    sample. background: what VarietySound's background encoder hears (`silence`, the paper's inference, or
    the clip's `real` mel, Table 8's "w Bi"). retrieval_baseline: add Zhou et al.'s retrieval baseline as
    system `retrieval_oracle` (default: for SampleRNN models). bootstrap / bootstrap_sets: resamples of the
    intervals over clips / over sets (FD). standard_settings: `params.yaml`'s `standard_metrics` section; the
    field's standard figures (`fd_panns`, `kl_panns`, ...) of every system against the real clips, for each
    network whose weights it finds (none: no such figures); `meta["standard_weights"]` says which are official.
    cluster: where each clip is generated and scored (`evaluation.cluster`): None in this process, "local" a
    Ray instance started for it, or a Ray address; the figures are the same on every path (the set-level
    figures, the retrieval baseline and the likelihood scoring run here). excerpt_seconds: every system
    (model, baselines, control) is also scored on the first `excerpt_seconds` of each clip
    (`Evaluation.excerpt`), so that models that generate only that much (SampleRNN: its default
    `generate_seconds`) can be compared with the others on the same excerpts.
    """

    _check_settings(
        generate_seconds=generate_seconds,
        retrieval_seconds=retrieval_seconds,
        excerpt_seconds=excerpt_seconds,
        max_clips=max_clips,
        retrieval_clips=retrieval_clips,
        samples=samples,
        bootstrap=bootstrap,
        background=background,
    )
    cluster = check_cluster(cluster)
    if cluster is not None and device != "cpu":
        raise ValueError(f"evaluation on a Ray cluster runs its clips on CPUs; got device={device!r}")
    t0 = time.perf_counter()
    root = Path(root).resolve()
    package = load_model(model, device=device)
    if package.paradigm not in ("gan_mel", "autoregressive", "correlation"):
        raise ValueError(
            f"{model}: evaluation needs a gan_mel, autoregressive or correlation model, not a "
            f"{package.paradigm!r} one (vocoders are scored by their own validation)"
        )
    # what the generating module writes decides vocoder and default lengths (a tower generates nothing)
    inputs = None if package.paradigm == "correlation" else sound_model(package).model_inputs()
    output = None if inputs is None else inputs.output
    name = name or str(package.config.get("name") or Path(str(model)).name)
    rows: list[dict[str, Any]] = []
    cats: list[dict[str, Any]] = []
    clips: list[EvalClip] = []
    systems: dict[str, dict[str, np.ndarray]] = {}
    protocol: dict[str, Any] = {}
    has_references = False
    excerpt: dict[str, Any] | None = None
    t1 = time.perf_counter()
    if package.paradigm == "correlation":
        found, info = tower_retrieval(
            package, root=root, split=split, max_clips=retrieval_clips, n_boot=bootstrap, seed=seed
        )
        summary = {SYSTEM: found, "chance": chance_retrieval(info["clips"])}
        protocol["retrieval"] = info
        t2 = t3 = time.perf_counter()
    else:
        clips = load_clips(package, root=root, split=split, max_clips=max_clips, seed=seed)
        if generate_seconds is None and output == "waveform":
            generate_seconds = excerpt_seconds or 2.0
        with ClipRunner(cluster) as runner:  # Ray, when asked for, runs from here until the clips are scored
            synthesis = synthesize(
                package,
                clips,
                vocoder=vocoder,
                seed=seed,
                device=device,
                seconds=generate_seconds,
                background=background,
                runner=runner,
            )
            has_references = bool(synthesis.references)
            settings = package.data_settings
            n = settings.num_samples
            if generate_seconds is not None:
                n = min(n, int(round(generate_seconds * settings.sample_rate)))
                for c in clips:
                    c.real_wav = fit_length(c.real_wav, n)
            if retrieval_baseline is None:
                retrieval_baseline = output == "waveform"
            if retrieval_baseline:
                pool = load_clips(package, root=root, split="train", max_clips=None, seed=seed)
                synthesis.systems[RETRIEVAL_BASELINE] = retrieval_oracle(
                    clips, pool, sample_rate=settings.sample_rate, num_samples=n
                )
                protocol["retrieval_baseline"] = f"{len(pool)} training clips, 2 s segments"
            systems = synthesis.systems
            t2 = time.perf_counter()
            rows, embeddings, real_embeddings = score_clips(package, clips, synthesis, runner=runner)
        summary = summarize(
            rows, embeddings, real_embeddings, n_boot=bootstrap, n_boot_sets=bootstrap_sets, seed=seed
        )
        if excerpt_seconds is not None:
            excerpt = score_excerpt(
                package,
                clips,
                synthesis,
                summary,
                excerpt_seconds,
                n_boot=bootstrap,
                n_boot_sets=bootstrap_sets,
                seed=seed,
            )
        cats = per_category(rows, n_boot=bootstrap, seed=seed)
        categories = [c.category for c in clips]
        real = [c.real_wav for c in clips]
        for system, wavs in synthesis.systems.items():
            summary[system].update(
                standard_metrics(
                    real,
                    [wavs[c.clip_id] for c in clips],
                    sample_rate=settings.sample_rate,
                    categories=categories,
                    settings=standard_settings,
                    seed=seed,
                )
            )
        standard_weights = {
            net: info.kind
            for net, info in weights_status(standard_settings).items()
            if info.kind != "missing"
        }
        if standard_weights:
            protocol["standard_weights"] = standard_weights
        if package.paradigm == "autoregressive":
            found, info = likelihood_retrieval(
                package,
                root=root,
                split=split,
                max_clips=retrieval_clips,
                seconds=retrieval_seconds,
                n_boot=bootstrap,
                seed=seed,
            )
            summary[SYSTEM].update(found)
            protocol["retrieval"] = info
        if "mcd_own_reference_db" in summary.get(SYSTEM, {}):
            protocol["background"] = background
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
        excerpt=excerpt,
    )
    data = package.config.get("data") or {}
    result.meta = {
        "split": split,
        "clips": len(clips) if clips else int(protocol["retrieval"]["clips"]),
        "vocoder": {"mel": vocoder, "waveform": "8-bit linear quantiser"}.get(output or ""),
        "paradigm": package.paradigm,
        "seed": seed,
        "generated_seconds": generate_seconds or package.data_settings.duration,
        "references": "another clip of the same category" if has_references else None,
        "intervals": {
            "level": 0.95,
            "bootstrap": bootstrap,
            "bootstrap_sets": bootstrap_sets,
            "strata": "category",
        },
        "protocol": protocol,
    }
    if out is not None:
        out = Path(out)
        presets = [PER_SECOND_FEATURES] if inputs is None else [preset_of(package)]
        if inputs is not None and inputs.per_second:  # its visual input: the per-second features
            presets.append(PER_SECOND_FEATURES)
        manifest_rows = read_manifest(
            data.get("manifest", "data/prepared/manifest.jsonl"), split=split, root=root
        )
        result.meta["data_fingerprint"] = dataset_fingerprint(manifest_rows, presets, root)
        tmp = out.with_name(out.name + ".part")
        shutil.rmtree(tmp, ignore_errors=True)
        write_outputs(tmp, name, summary, rows, cats, result.meta, excerpt=excerpt)
        if clips:
            write_samples(tmp, name, clips, systems, package.data_settings.sample_rate, samples)
        seconds["write_s"] = time.perf_counter() - t3
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
        result.out = out
    return result


def score_excerpt(
    package: Any,
    clips: list[EvalClip],
    synthesis: Synthesis,
    summary: Mapping[str, Mapping[str, Interval]],
    seconds: float,
    *,
    n_boot: int,
    n_boot_sets: int,
    seed: int,
) -> dict[str, Any]:
    """{"seconds", "summary"}: every system's figures on the first `seconds` of each clip (the real audio and
    every system's sound cut to them, scored as the whole evaluation is). When the evaluation already scored
    no more than that (a SampleRNN model generating `seconds`), its own summary is the excerpt's."""
    sr = package.data_settings.sample_rate
    n = min(len(clips[0].real_wav), int(round(seconds * sr))) if clips else 0
    if not clips or all(len(c.real_wav) <= n for c in clips):
        seconds_scored = len(clips[0].real_wav) / sr if clips else seconds
        return {"seconds": seconds_scored, "summary": {s: dict(m) for s, m in summary.items()}}
    cut = [dataclasses.replace(c, real_wav=fit_length(c.real_wav, n)) for c in clips]
    trimmed = Synthesis(
        systems={s: {k: fit_length(w, n) for k, w in wavs.items()} for s, wavs in synthesis.systems.items()},
        references=synthesis.references,  # the mels (whole-window MCD) are not cut: no mel figures here
    )
    rows, embeddings, real_embeddings = score_clips(package, cut, trimmed)
    excerpt = summarize(rows, embeddings, real_embeddings, n_boot=n_boot, n_boot_sets=n_boot_sets, seed=seed)
    return {"seconds": n / sr, "summary": excerpt}
