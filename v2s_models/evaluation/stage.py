"""The DVC stages `evaluate@KEY` and `report` (`experiments/stages.py` calls them), and their MLflow logging.

`params.yaml`'s `evaluate` section holds every protocol option (`dvc exp run -S evaluate.background=real`):
see DEFAULTS and docs/evaluation.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from v2s_models.evaluation.baselines import SYSTEM
from v2s_models.evaluation.driver import Evaluation, evaluate
from v2s_models.evaluation.paper_tables import paper_tables
from v2s_models.evaluation.reporting import (
    HEADLINE,
    compare_evaluations,
    comparison_markdown,
    markdown_table,
    ordered_columns,
    read_summary,
    write_csv,
)
from v2s_models.metrics.stats import Interval

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
}


def stage_params(root: Path) -> dict[str, Any]:
    """params.yaml's `evaluate` section over DEFAULTS; an unknown key is refused by name."""
    from v2s_models.params import load_params  # the params reader lives with the data stages

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
    from v2s_models.params import load_params  # the params reader lives with the data stages

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


def log_to_mlflow(evaluation: Evaluation, run_id: str, *, tracking_uri: str) -> None:
    """The evaluation's figures as metrics `eval/<system>/<metric>` with `.../ci95_low` and `.../ci95_high`,
    and its tables / plots as artifacts (`evaluation/`) of MLflow run `run_id` (the run that trained the model)."""
    from v2s_models.tracking import MLflowTracker  # MLflow: only the stages log

    tracker = MLflowTracker(tracking_uri=tracking_uri, run_id=run_id)
    flat: dict[str, float] = {}
    for system, metrics in evaluation.summary.items():
        flat.update(_flat_metrics(f"eval/{evaluation.name if system == SYSTEM else system}", metrics))
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


def evaluate_stage(key: str, *, root: Path) -> Evaluation:
    """DVC stage `evaluate@KEY`: models/KEY/package -> evaluations/KEY, logged to the model's MLflow run."""
    from v2s_models.tracking import default_tracking_uri

    cfg = stage_params(root)
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
        background=cfg["background"],
        retrieval_clips=cfg["retrieval_clips"],
        retrieval_seconds=cfg["retrieval_seconds"],
        retrieval_baseline=cfg["retrieval_baseline"],
        bootstrap=int(cfg["bootstrap"]),
        bootstrap_sets=int(cfg["bootstrap_sets"]),
        standard_settings=standard_settings(root),
    )
    if record.get("mlflow_run_id"):
        log_to_mlflow(result, record["mlflow_run_id"], tracking_uri=default_tracking_uri(root))
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
    (results / "results.md").write_text(
        "# Results of every default model beside the baselines\n\n"
        "Made by `dvc repro` (stage `report`); each model's own tables are in evaluations/<model>/. Each figure: "
        "value [95 % bootstrap interval]."
        + standard_note
        + "\n\n"
        + markdown_table(rows, short)
        + ("\n" + section if section else "")
    )
    (results / "papers.md").write_text(paper_tables(docs))
    log_results_to_mlflow(results, rows, root=root)
    print((results / "results.md").read_text(), flush=True)
    return results / "results.md"


def log_results_to_mlflow(results: Path, rows: Sequence[Mapping[str, Any]], *, root: Path) -> str:
    """The results table as a run `results` of MLflow experiment `evaluation`: metrics
    `<evaluation>/<system>/<metric>` (with `/ci95_low`, `/ci95_high`) and results.{md,csv}, papers.md as
    artifacts; returns the run id."""
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
    metrics: dict[str, float] = {}
    for r in rows:
        figures = {k: v for k, v in r.items() if isinstance(v, Interval)}
        metrics.update(_flat_metrics(f"{r['evaluation']}/{r['system']}", figures))
    tracker.log_metrics(metrics, step=0)
    for f in ("results.md", "results.csv", "papers.md"):
        tracker.log_artifact(results / f)
    tracker.end("FINISHED")
    return tracker.run_id
