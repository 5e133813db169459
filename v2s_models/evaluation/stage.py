"""The DVC stages `evaluate@KEY` and `report` (`experiments/stages.py` calls them), and their MLflow logging.

`params.yaml`'s `evaluate` section holds every protocol option (`dvc exp run -S evaluate.background=real`):
see DEFAULTS and docs/evaluation.md.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from v2s_models import model_card
from v2s_models.evaluation.baselines import SYSTEM
from v2s_models.evaluation.driver import Evaluation, evaluate
from v2s_models.evaluation.paper_tables import paper_tables, read_listening
from v2s_models.evaluation.reporting import (
    HEADLINE,
    compare_evaluations,
    comparison_markdown,
    markdown_table,
    ordered_columns,
    read_excerpt,
    read_summary,
    swap_test_section,
    write_csv,
)
from v2s_models.metrics.stats import Interval
from v2s_models.params import load_params
from v2s_models.tracking import MLflowTracker, default_artifact_root, default_tracking_uri

DEFAULTS: dict[str, Any] = {
    "split": "test",
    "vocoder": "griffin_lim",
    "max_clips": None,
    "samples": 8,
    "seed": 0,
    "background": "silence",
    "retrieval_clips": 32,
    "retrieval_seconds": None,
    "retrieval_baseline": None,
    "bootstrap": 1000,
    "bootstrap_sets": 200,
    "cluster": None,  # where the clips run: None in the stage's process, "local" or a Ray address
    # every system also scored on the first S s of each clip (results.md's same-excerpt table); SampleRNN
    # models generate only those S s (None: 2 s for them, and no excerpt table)
    "excerpt_seconds": None,
}


def stage_params(root: Path) -> dict[str, Any]:
    """params.yaml's `evaluate` section over DEFAULTS; an unknown key is refused by name."""

    params = load_params(root / "params.yaml")
    cfg = {**DEFAULTS, **(params.get("evaluate") or {})}
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"params.yaml evaluate.{unknown[0]}: unknown key (known: {', '.join(sorted(DEFAULTS))})"
        )
    return cfg


def standard_settings(root: Path) -> dict[str, Any]:
    """params.yaml's `standard_metrics` section (where the standard networks' weights are), relative paths
    resolved against `root`; {} without a params.yaml."""

    if not (root / "params.yaml").is_file():
        return {}
    cfg = dict(load_params(root / "params.yaml").get("standard_metrics") or {})
    for key in ("weights_dir", "standin_dir", "panns", "vggish", "passt"):
        if isinstance(cfg.get(key), str) and not Path(cfg[key]).is_absolute():
            cfg[key] = str(root / cfg[key])
    return cfg


def _flat_metrics(prefix: str, metrics: Mapping[str, Interval]) -> dict[str, float]:
    out = {}
    for k, iv in metrics.items():
        if isinstance(iv, Interval) and math.isfinite(iv.value):
            out[f"{prefix}/{k}"] = float(iv.value)
            if math.isfinite(iv.low) and math.isfinite(iv.high):
                out[f"{prefix}/{k}/ci95_low"] = float(iv.low)
                out[f"{prefix}/{k}/ci95_high"] = float(iv.high)
    return out


EVALUATION_EXPERIMENT = "evaluation"  # every evaluation run of every model, and the report's `results` run
EVALUATION_DESCRIPTION = (
    "v2s evaluations: one run per evaluation of a model (tag v2s.system = the model's name; metrics onset_f1, "
    "mcd_db, ... with _ci95_low / _ci95_high, the same names for every model), with a child run per baseline "
    "system (real re-voiced, same category, silence). Select the models' runs and Compare to line them up; "
    "tags v2s.model, v2s.split, v2s.max_clips, v2s.seed, v2s.data_fingerprint, v2s.dvc_experiment say what "
    "was evaluated; v2s.selection = full | quick (a max_clips sample: never copied to the registry)."
)
TAG = "v2s."


def figures(metrics: Mapping[str, Interval]) -> dict[str, float]:
    """One system's figures under the same names for every model and system: `<metric>` with
    `<metric>_ci95_low` and `<metric>_ci95_high` (finite values only)."""
    out = {}
    for k, iv in metrics.items():
        if isinstance(iv, Interval) and math.isfinite(iv.value):
            out[k] = float(iv.value)
            if math.isfinite(iv.low) and math.isfinite(iv.high):
                out[f"{k}_ci95_low"] = float(iv.low)
                out[f"{k}_ci95_high"] = float(iv.high)
    return out


def headline(evaluation: Evaluation) -> dict[str, float]:
    """The model's own headline figures, flat (`evaluations/KEY/headline.json`, the DVC metric): `clips`, then
    each HEADLINE metric the evaluation has, with its interval's bounds for onset_f1 and mcd_db."""
    own = evaluation.summary.get(SYSTEM, {})
    out: dict[str, float] = {"clips": float(evaluation.meta.get("clips", len(evaluation.per_clip)))}
    for k in HEADLINE:
        iv = own.get(k)
        if isinstance(iv, Interval) and math.isfinite(iv.value):
            out[k] = float(iv.value)
            if k in ("onset_f1", "mcd_db") and math.isfinite(iv.low) and math.isfinite(iv.high):
                out[f"{k}_ci95_low"], out[f"{k}_ci95_high"] = float(iv.low), float(iv.high)
    return out


def selection(max_clips: int | None | str) -> str:
    """`full` (every clip of the split), `quick` (a max_clips sample) or `unknown` (the caller did not say)."""
    if max_clips == "unknown":
        return "unknown"
    return "full" if max_clips is None else "quick"


def evaluation_tags(
    evaluation: Evaluation,
    training_run_id: str | None,
    *,
    max_clips: int | None | str,
    model_uri: str | None,
    versions: Sequence[str] = (),
) -> dict[str, str]:
    """The tags every run of one evaluation carries (the system's own tag is added per run)."""
    meta = evaluation.meta
    tags = {
        f"{TAG}kind": "evaluation",
        f"{TAG}model": evaluation.name,
        f"{TAG}model_uri": model_uri or "",
        f"{TAG}model_versions": ",".join(versions),
        f"{TAG}training_run_id": training_run_id or "",
        f"{TAG}split": str(meta.get("split", "")),
        f"{TAG}clips": str(meta.get("clips", len(evaluation.per_clip))),
        f"{TAG}max_clips": "all" if max_clips is None else str(max_clips),
        f"{TAG}selection": selection(max_clips),
        f"{TAG}sample": "every clip" if max_clips is None else "category-stratified, seeded",
        f"{TAG}seed": str(meta.get("seed", "")),
        f"{TAG}vocoder": str(meta.get("vocoder", "")),
        f"{TAG}data_fingerprint": str(meta.get("data_fingerprint", "")),
        f"{TAG}dvc_experiment": os.environ.get("DVC_EXP_NAME", ""),
        f"{TAG}dvc_baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
    }
    return {k: v for k, v in tags.items() if v != ""}


def _versions_of_run(client: Any, run_id: str | None) -> list[Any]:
    if not run_id:
        return []
    try:
        return list(client.search_model_versions(f"run_id = '{run_id}'"))
    except Exception:  # noqa: BLE001 (a store without a registry: nothing to annotate)
        return []


def log_to_mlflow(
    evaluation: Evaluation,
    run_id: str | None,
    *,
    tracking_uri: str,
    max_clips: int | None | str = "unknown",
    model_uri: str | None = None,
    artifact_root: str | None = None,
) -> str:
    """The evaluation as runs of its own in MLflow experiment `evaluation`; returns the model's run id.

    One run for the model (tag `v2s.system` = its name) and a child run per baseline system, every figure
    under the same name for every model and system (`onset_f1`, `onset_f1_ci95_low`, `onset_f1_ci95_high`,
    `mcd_db`, ...), tagged with what was evaluated (`evaluation_tags`), the tables and plots as the model run's
    artifacts (`evaluation/`), the evaluated clips as its dataset input. `run_id`: the MLflow run that trained
    the model (tag `v2s.training_run_id`; that run is never written to). `max_clips`: None for every clip of
    the split (`v2s.selection=full`), N for a quick sample; only a full evaluation reaches the registry
    (`record_on_registry`).
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    versions = [f"{mv.name}/{mv.version}" for mv in _versions_of_run(client, run_id)]
    tags = evaluation_tags(evaluation, run_id, max_clips=max_clips, model_uri=model_uri, versions=versions)
    meta = evaluation.meta
    what = f"{meta.get('split', '?')} split, {tags[f'{TAG}clips']} clips ({tags[f'{TAG}selection']})"
    parent = MLflowTracker.create(
        tracking_uri=tracking_uri,
        experiment=EVALUATION_EXPERIMENT,
        run_name=f"{evaluation.name} {meta.get('split', '?')} {tags[f'{TAG}clips']} clips {tags[f'{TAG}selection']}",
        artifact_root=artifact_root,
        tags={
            **tags,
            f"{TAG}system": evaluation.name,
            f"{TAG}system_role": "model",
            "mlflow.note.content": (
                f"Evaluation of {evaluation.name} on the {what}; model {model_uri or '?'}, training run "
                f"{run_id or '?'}; baselines in the child runs."
            ),
        },
        description=EVALUATION_DESCRIPTION,
    )
    try:
        parent.log_metrics(figures(evaluation.summary.get(SYSTEM, {})), step=0)
        if meta.get("data_fingerprint"):
            parent.log_dataset(
                name=f"{meta.get('split', 'test')} split",
                digest=str(meta["data_fingerprint"]),
                source=str(evaluation.out or ""),
                profile={"clips": tags[f"{TAG}clips"], "max_clips": tags[f"{TAG}max_clips"]},
                context="evaluation",
            )
        for system, metrics in evaluation.summary.items():
            if system == SYSTEM:
                continue
            child = MLflowTracker.create(
                tracking_uri=tracking_uri,
                experiment=EVALUATION_EXPERIMENT,
                run_name=f"{system} (baseline of {evaluation.name})",
                artifact_root=artifact_root,
                tags={
                    **tags,
                    f"{TAG}system": system,
                    f"{TAG}system_role": "baseline",
                    "mlflow.parentRunId": str(parent.run_id),
                },
            )
            child.log_metrics(figures(metrics), step=0)
            child.end("FINISHED")
        if evaluation.out is not None:
            for f in (
                "metrics.json",
                "table.md",
                "table.csv",
                "per_category.md",
                "per_category.csv",
                "per_clip.csv",
            ):
                if (evaluation.out / f).is_file():
                    parent.log_artifact(evaluation.out / f, artifact_path="evaluation")
            for f in sorted((evaluation.out / "plots").glob("*")):
                parent.log_artifact(f, artifact_path="evaluation/plots")
    except BaseException:
        parent.end("FAILED")
        raise
    parent.end("FINISHED")
    return str(parent.run_id)


def record_on_registry(training_run_id: str | None, *, tracking_uri: str) -> list[str]:
    """Every registered version of the training run's model gets its latest full evaluation (headline figures
    as `v2s.card.eval.*` tags, a section of its description): `model_card.annotate_version`. Returns the
    versions annotated (`name/version`). Call only after a full evaluation."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    done = []
    for mv in _versions_of_run(client, training_run_id):
        model_card.annotate_version(client, mv.name, str(mv.version))
        done.append(f"{mv.name}/{mv.version}")
    return done


HEADLINE_FILE = "headline.json"  # evaluations/KEY/headline.json: the evaluate stage's DVC metric


def evaluate_with_settings(
    package: Path, cfg: Mapping[str, Any], *, root: Path, out: Path, name: str
) -> Evaluation:
    """`evaluate` of `package` into `out` with the settings of params.yaml `evaluate` (`stage_params`: split,
    vocoder, clips, seed, bootstrap, excerpt, ...) and `standard_metrics`: what the evaluate stage runs, and what
    tests/bench/stability.py runs on every package it trains."""
    return evaluate(
        package,
        root=root,
        out=out,
        name=name,
        split=str(cfg["split"]),
        vocoder=str(cfg["vocoder"]),
        max_clips=cfg["max_clips"],
        samples=int(cfg["samples"]),
        seed=int(cfg["seed"]),
        background=cfg["background"],
        retrieval_clips=cfg["retrieval_clips"],
        retrieval_seconds=cfg["retrieval_seconds"],
        retrieval_baseline=cfg["retrieval_baseline"],
        bootstrap=int(cfg["bootstrap"]),
        bootstrap_sets=int(cfg["bootstrap_sets"]),
        standard_settings=standard_settings(root),
        cluster=cfg["cluster"],
        excerpt_seconds=cfg["excerpt_seconds"],
    )


def evaluate_stage(key: str, *, root: Path) -> Evaluation:
    """DVC stage `evaluate@KEY`: models/KEY/package -> evaluations/KEY (with the flat `headline.json`), logged
    as runs of their own in MLflow experiment `evaluation`; a full evaluation (max_clips null) also annotates
    the registered versions of the model's training run."""

    cfg = stage_params(root)
    model_dir = root / "models" / key
    record_path = model_dir / "train.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: run `dvc repro train@{key}` first")
    record = json.loads(record_path.read_text())
    result = evaluate_with_settings(
        model_dir / "package", cfg, root=root, out=root / "evaluations" / key, name=key
    )
    if result.out is not None:
        (result.out / HEADLINE_FILE).write_text(json.dumps(headline(result), indent=2) + "\n")
    if record.get("mlflow_run_id"):
        uri = default_tracking_uri(root)
        eval_run = log_to_mlflow(
            result,
            record["mlflow_run_id"],
            tracking_uri=uri,
            max_clips=cfg["max_clips"],
            model_uri=record.get("model_uri"),
            artifact_root=default_artifact_root(root),
        )
        note = f"MLflow: evaluation run {eval_run} (experiment {EVALUATION_EXPERIMENT})"
        if cfg["max_clips"] is None:
            versions = record_on_registry(record["mlflow_run_id"], tracking_uri=uri)
            note += f"; registered versions annotated: {', '.join(versions) or 'none'}"
        else:
            note += f"; a quick evaluation (max_clips={cfg['max_clips']}): the registry is left as it was"
        print(note, flush=True)
    print((result.out / "table.md").read_text() if result.out else "", flush=True)
    return result


def _clip_ids(folder: Path, model: str) -> frozenset[str]:
    path = folder / "per_clip.csv"
    if not path.is_file():
        return frozenset()
    with open(path, encoding="utf-8") as f:
        next(f, None)
        return frozenset(line.split(",")[1] for line in f if line.startswith(model + ","))


def comparisons_section(folders: Sequence[Path], models: Sequence[str]) -> str:
    """Paired comparisons of every pair of models evaluated on the same clips ('' when no pair is)."""
    parts = []
    ids = [_clip_ids(f, m) for f, m in zip(folders, models, strict=True)]
    for i in range(len(folders)):
        for j in range(i + 1, len(folders)):
            if len(ids[i]) >= 2 and ids[i] == ids[j]:
                rows = compare_evaluations(folders[i], folders[j])
                parts.append(
                    f"### {models[i]} vs {models[j]} ({len(ids[i])} clips)\n\n" + comparison_markdown(rows)
                )
    if not parts:
        return ""
    return "## Paired comparisons (models evaluated on the same clips)\n\n" + "\n".join(parts)


def report_stage(*, root: Path) -> Path:
    """DVC stage `report`: every evaluations/*/metrics.json in one table (results/results.{md,csv}), paired
    comparisons of models scored on the same clips, and the papers' tables beside ours (results/papers.md)."""
    evaluations = root / "evaluations"
    results = root / "results"
    results.mkdir(exist_ok=True)
    paths = sorted(evaluations.glob("*/metrics.json"))
    if not paths:
        raise FileNotFoundError(f"no {evaluations}/*/metrics.json: run the evaluate stages first")
    rows: list[dict[str, Any]] = []
    docs = []
    for p in paths:
        doc = json.loads(p.read_text())
        docs.append(doc)
        for system, metrics in read_summary(doc).items():
            rows.append({"evaluation": doc["model"], "system": system, **metrics})
    cols = ["evaluation", "system", *ordered_columns({k for r in rows for k in r} - {"evaluation", "system"})]
    write_csv(results / "results.csv", rows, cols)
    short = [c for c in cols if c in ("evaluation", "system") or c in HEADLINE]
    section = comparisons_section([p.parent for p in paths], [str(d["model"]) for d in docs])
    weights = sorted(
        {
            f"{net}: {state}"
            for d in docs
            for net, state in (d.get("protocol", {}).get("standard_weights") or {}).items()
        }
    )
    standard_note = (
        f" Standard figures (fd_panns, kl_panns, is_panns, fd_vggish, fd_passt, kl_passt) with weights {', '.join(weights)}; "
        "stand-in weights are NOT comparable with published tables."
        if weights
        else ""
    )
    excerpts, excerpt_rows = excerpt_section(docs)
    swaps = swap_test_section([p.parent for p in paths])
    write_csv(results / EXCERPT_CSV, excerpt_rows, EXCERPT_COLUMNS)
    (results / "results.md").write_text(
        "# Results of every default model beside the baselines\n\n"
        "Made by `dvc repro` (stage `report`); each model's own tables are in evaluations/<model>/. Each figure: "
        "value [95 % bootstrap interval]."
        + standard_note
        + "\n\n"
        + markdown_table(rows, short)
        + ("\n" + excerpts if excerpts else "")
        + ("\n" + swaps if swaps else "")
        + ("\n" + section if section else "")
    )
    (results / "papers.md").write_text(paper_tables(docs, read_listening(root)))
    log_results_to_mlflow(results, rows, root=root)
    print((results / "results.md").read_text(), flush=True)
    return results / "results.md"


EXCERPT_CSV = "results_excerpt.csv"  # results/results_excerpt.csv: the same-excerpt table (columns below)
# the excerpt table's figures: those a 2-s excerpt supports, shown in HEADLINE's order
EXCERPT_FIGURES = frozenset(
    "onset_f1 onset_precision onset_recall av_offset_ms av_offset_abs_ms mcd_db timbre_sim_real fd_soundnet "
    "kl_soundnet".split()
)
EXCERPT_COLUMNS = ["seconds", "evaluation", "system", *(m for m in HEADLINE if m in EXCERPT_FIGURES)]


def excerpt_section(docs: Sequence[Mapping[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The report's same-excerpt table(s): every evaluation that scored its systems on the first S s of each
    clip (`evaluate.excerpt_seconds`), model rows and baselines, one table per S; ('', []) when none did."""
    by_seconds: dict[float, list[dict[str, Any]]] = {}
    for doc in docs:
        found = read_excerpt(doc)
        if found is None:
            continue
        seconds, systems = found
        for system, metrics in systems.items():
            by_seconds.setdefault(round(seconds, 3), []).append(
                {"seconds": round(seconds, 3), "evaluation": doc["model"], "system": system, **metrics}
            )
    parts, all_rows = [], []
    for seconds, rows in sorted(by_seconds.items()):
        models = sorted({str(r["evaluation"]) for r in rows})
        parts.append(
            f"## Every default model on the same excerpts: the first {seconds:g} s of each test clip\n\n"
            f"{', '.join(models)} and their baselines, scored on the first {seconds:g} s of the same test "
            "clips (the real track, every model's sound and every baseline cut to them). SampleRNN models "
            "generate sample by sample and only these seconds; the mel models' whole-clip figures are in the "
            "table above. Onset tolerance: one video frame of the model's data preset (1/21.5 s for `regnet`, "
            "1/15.6 s for `zhou`); each evaluation's baselines are scored at its model's preset (rate, "
            "tolerance), so compare a model with the baselines of its own rows.\n\n"
            + markdown_table(rows, [c for c in EXCERPT_COLUMNS if c != "seconds"])
        )
        all_rows += rows
    return "\n".join(parts), all_rows


def log_results_to_mlflow(results: Path, rows: Sequence[Mapping[str, Any]], *, root: Path) -> str:
    """The results table as a run `results` of MLflow experiment `results`: metrics
    `<evaluation>/<system>/<metric>` (with `/ci95_low`, `/ci95_high`) and results.{md,csv}, papers.md as
    artifacts; returns the run id. Its own experiment, so that the `evaluation` experiment's runs table and
    compare view hold only evaluation runs, whose metrics share names across models."""

    tracker = MLflowTracker.create(
        tracking_uri=default_tracking_uri(root),
        experiment="results",
        run_name="results",
        artifact_root=default_artifact_root(root),
        tags={
            "v2s.kind": "results",
            "v2s.evaluations": ",".join(sorted({str(r["evaluation"]) for r in rows})),
        },
    )
    metrics: dict[str, float] = {}
    for r in rows:
        figures = {k: v for k, v in r.items() if isinstance(v, Interval)}
        metrics.update(_flat_metrics(f"{r['evaluation']}/{r['system']}", figures))
    tracker.log_metrics(metrics, step=0)
    for f in ("results.md", "results.csv", EXCERPT_CSV, "papers.md"):
        tracker.log_artifact(results / f)
    tracker.end("FINISHED")
    return tracker.run_id
