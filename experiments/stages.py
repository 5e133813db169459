"""The pipeline's model stages, as DVC runs them (`dvc.yaml`): train and evaluate the default experiments.

    python -m experiments.stages train KEY       # params.yaml train.experiments.KEY -> models/KEY/
    python -m experiments.stages evaluate KEY    # models/KEY/ -> evaluations/KEY/ (metrics.json, tables, plots,
                                                 # the timbre swap test: swap_test.{json,md})
    python -m experiments.stages report          # evaluations/*/metrics.json -> results/{results.md,results.csv,papers.md}
    python -m experiments.stages filter          # params.yaml filter: a correlation tower -> models/correlation_tower/,
                                                 # then data/filtered/{high,low}.jsonl (correlation-filtered system)

Each entry of `train.experiments` in params.yaml names an experiment config, the manifest it trains on and
optional dotted overrides:

    train:
      experiments:
        regnet_demo: {config: experiments/configs/regnet/demo.yaml, manifest: data/prepared/manifest.jsonl, set: {}}
        seq2seq_demo: {config: ..., manifest: data/filtered/high.jsonl, set: {}}   # the filter stage's output

The manifest is the train and evaluate stages' DVC dependency (dvc.yaml `${item.manifest}`) and is passed to the
config as `data.manifest`, so what DVC tracks is what trains: an experiment on the filter stage's subset runs
after it, and the others stay cached when the filter changes.

`train` runs `ray_jobs.train.run_training` (Ray Train, MLflow-tracked, checkpointed every epoch) under the run
name KEY in `ray_results/`, so a `dvc repro` that was interrupted resumes the run from its last checkpoint
instead of starting again. DVC re-runs the stage only when an input changed, so a run left FINISHED by an earlier
`dvc repro` is started afresh (its MLflow run stays in the store; a new one is made). The trained model is
exported as a package folder (`models/KEY/package/`, what `v2s generate --model` takes) and `models/KEY/train.json`
(the MLflow run and model URI, the final metrics, the config hash and the data fingerprint).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dataprep.synthfoley import swap_test
from ray_jobs.train import RUN_STATE_FILE, run_training
from v2s_models import correlation_filter
from v2s_models.config import ConfigError, config_hash, load_config
from v2s_models.evaluation import evaluate_stage, report_stage
from v2s_models.evaluation.stage import stage_params
from v2s_models.interface import sound_model
from v2s_models.io import write_json
from v2s_models.package import load_package
from v2s_models.params import load_params
from v2s_models.tracking import default_tracking_uri, metric_curves

MODELS_DIR = Path("models")
EVALUATIONS_DIR = Path("evaluations")
FILTERED_DIR = Path("data/filtered")
TOWER_KEY = "correlation_tower"  # run name and models/ folder of the filter stage's tower
CURVES_FILE = "curves.csv"  # models/KEY/curves.csv: per-epoch training curves (dvc.yaml plots)
METRICS_FILE = "metrics.json"  # models/KEY/metrics.json: flat final figures (dvc.yaml metrics)


def experiment_entry(params: Mapping[str, Any], key: str) -> dict[str, Any]:
    """params.yaml train.experiments.KEY, checked: {config: path, manifest: path (optional), set: {...}}."""
    experiments = (params.get("train") or {}).get("experiments") or {}
    if key not in experiments:
        raise ValueError(
            f"params.yaml train.experiments has no {key!r} (have: {', '.join(sorted(experiments)) or 'none'})"
        )
    return check_entry(experiments[key], f"train.experiments.{key}")


ENTRY_KEYS = ("config", "manifest", "set")


def check_entry(entry: Any, where: str) -> dict[str, Any]:
    """An experiment entry {config: path, manifest: path (optional), set: {dotted: value}} found at params.yaml
    `where`, checked (no `manifest` key when it names none). `manifest`, the training manifest and the stage's
    DVC dependency, becomes the override `data.manifest` (`config_overrides`) and may not be given twice."""
    if not isinstance(entry, Mapping) or not isinstance(entry.get("config"), str):
        raise ValueError(f"params.yaml {where}: expected a mapping with a 'config' path")
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise ValueError(f"params.yaml {where}.{unknown[0]}: unknown key (known: {', '.join(ENTRY_KEYS)})")
    overrides = entry.get("set") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"params.yaml {where}.set: expected a mapping of dotted keys to values")
    manifest = entry.get("manifest")
    if manifest is not None:
        if not isinstance(manifest, str) or not manifest.endswith(".jsonl"):
            raise ValueError(
                f"params.yaml {where}.manifest: expected a manifest path (*.jsonl), got {manifest!r}"
            )
        if "data.manifest" in overrides:
            raise ValueError(
                f"params.yaml {where}: give the training manifest once, as {where}.manifest (the stage's DVC "
                "dependency), not also as set.data.manifest"
            )
    return {"config": entry["config"], **({"manifest": manifest} if manifest else {}), "set": dict(overrides)}


def config_overrides(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A checked entry's dotted overrides, its manifest (when it names one) as `data.manifest`."""
    manifest = entry.get("manifest")
    return {**({"data.manifest": manifest} if manifest else {}), **entry["set"]}


def _copy_atomic(src: Path, dest: Path) -> None:
    """Replaces folder `dest` by a copy of `src`, never leaving a half-written `dest`."""
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    old = dest.with_name(dest.name + ".old")
    if dest.exists():
        dest.replace(old)
    tmp.replace(dest)
    shutil.rmtree(old, ignore_errors=True)


def train(
    key: str, *, root: Path, storage: Path | None = None, entry: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Trains params.yaml train.experiments.KEY (or `entry`, {config, set}, under the name KEY) and exports
    models/KEY/{package/, train.json}."""

    params = load_params(root / "params.yaml")
    entry = dict(entry) if entry is not None else experiment_entry(params, key)
    config_path = root / entry["config"]
    cfg = load_config(config_path, config_overrides(entry))
    storage = (storage or root / "ray_results").resolve()
    run_dir = storage / key
    state_file = run_dir / RUN_STATE_FILE
    if state_file.is_file():
        state = json.loads(state_file.read_text())
        if state.get("status") == "FINISHED" or state.get("config_hash") != config_hash(cfg):
            why = (
                "finished earlier" if state.get("status") == "FINISHED" else "was started with another config"
            )
            print(f"[stage] run {key!r} {why}: DVC asked for a new one; starting afresh", flush=True)
            shutil.rmtree(run_dir)
        else:
            print(f"[stage] run {key!r} was interrupted: resuming it", flush=True)
    num_cpus = (params.get("train") or {}).get("num_cpus")
    t0 = time.perf_counter()
    outcome = run_training(
        cfg,
        root=root,
        run_name=key,
        storage=storage,
        config_path=config_path,
        num_cpus=int(num_cpus) if num_cpus else None,
        extra_tags={"v2s.dvc_stage": "filter" if key == TOWER_KEY else f"train@{key}"},
    )
    if outcome.package is None:
        raise RuntimeError(f"run {key!r} left no model package in {outcome.run_dir}")
    out = root / MODELS_DIR / key
    out.mkdir(parents=True, exist_ok=True)
    _copy_atomic(outcome.package, out / "package")
    record = {
        "key": key,
        "config": entry["config"],
        "manifest": entry.get("manifest"),
        "overrides": entry["set"],
        "config_hash": config_hash(cfg),
        "run_name": outcome.run_name,
        "run_dir": str(outcome.run_dir),
        "mlflow_run_id": outcome.mlflow_run_id,
        "model_uri": outcome.model_uri,
        "epochs": outcome.epochs,
        "resumed_from_epoch": outcome.resumed_from_epoch,
        "metrics": outcome.metrics,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    write_json(out / "train.json", record)
    write_curves(out / CURVES_FILE, outcome.mlflow_run_id, root=root)
    write_json(out / METRICS_FILE, headline_metrics(record))
    return record


def headline_metrics(record: Mapping[str, Any]) -> dict[str, float]:
    """models/KEY/metrics.json: the training's last train/ and val/ figures and its epochs, flat and numeric
    (what `dvc exp show` and `dvc metrics diff` compare; run ids, paths and timings stay in train.json)."""
    metrics = record.get("metrics") or {}
    flat = {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(("train/", "val/"))}
    return {**flat, "epochs": float(record.get("epochs") or 0)}


def write_curves(path: Path, run_id: str | None, *, root: Path) -> Path:
    """models/KEY/curves.csv: the run's per-epoch train/ and val/ metrics as rows `epoch,metric,value` (the
    `dvc plots` training curves, one panel per metric; header only for an untracked run)."""

    rows = metric_curves(default_tracking_uri(root), run_id) if run_id else []
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "metric", "value"])
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return path


def filter_entry(params: Mapping[str, Any]) -> dict[str, Any]:
    """params.yaml `filter`, checked: {tower: {config, set}, high_quantile, low_quantile, splits}."""

    section = params.get("filter")
    if not isinstance(section, Mapping):
        raise ValueError("params.yaml: no `filter` section (tower, high_quantile, low_quantile, splits)")
    tower = check_entry(section.get("tower"), "filter.tower")
    splits = section.get("splits")
    if splits is not None and (not isinstance(splits, list) or not all(isinstance(x, str) for x in splits)):
        raise ValueError(f"params.yaml filter.splits: expected a list of split names or null, got {splits!r}")
    quantiles = {
        name: correlation_filter.check_quantile(f"params.yaml filter.{name}", section.get(name, 0.5))
        for name in ("high_quantile", "low_quantile")
    }
    return {"tower": tower, "splits": splits, **quantiles}


def filter_stage(*, root: Path, storage: Path | None = None) -> dict[str, Any]:
    """The correlation-filtered system's data step: trains params.yaml `filter.tower` (a correlation tower) into
    models/correlation_tower/, scores every usable clip of the prepared manifest with it and writes
    data/filtered/{high,low}.jsonl + summary.json (`v2s_models.correlation_filter`), the training sets of the
    `correlation_subsets` ablation grid. The subsets are written to a temporary folder and swapped in whole, so
    a failure leaves the previous ones as they were."""

    entry = filter_entry(load_params(root / "params.yaml"))
    record = train(TOWER_KEY, root=root, storage=storage, entry=entry["tower"])
    tower = correlation_filter.load_tower(root / MODELS_DIR / TOWER_KEY / "package")
    manifest = "data/prepared/manifest.jsonl"
    scores = correlation_filter.score_manifest(tower, manifest, root)
    with tempfile.TemporaryDirectory(prefix="v2s-filter-") as tmp:
        summary = correlation_filter.write_subsets(
            manifest,
            scores,
            tmp,
            high_quantile=entry["high_quantile"],
            low_quantile=entry["low_quantile"],
            root=root,
            splits=entry["splits"],
        )
        summary["tower"] = {"model_uri": record["model_uri"], "mlflow_run_id": record["mlflow_run_id"]}
        (Path(tmp) / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        (root / FILTERED_DIR).parent.mkdir(parents=True, exist_ok=True)
        _copy_atomic(Path(tmp), root / FILTERED_DIR)
    return summary


SWAP_TEST_DEFAULTS: dict[str, Any] = {
    "categories": list(swap_test.DEFAULT_CATEGORIES),
    "parameters": list(swap_test.PARAMETERS),
    "similarity": False,
}


def swap_test_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """params.yaml `swap_test` over SWAP_TEST_DEFAULTS, checked: unknown keys and parameters are refused by name."""
    cfg = {**SWAP_TEST_DEFAULTS, **(params.get("swap_test") or {})}
    unknown = sorted(set(cfg) - set(SWAP_TEST_DEFAULTS))
    if unknown:
        raise ValueError(
            f"params.yaml swap_test.{unknown[0]}: unknown key (known: {', '.join(sorted(SWAP_TEST_DEFAULTS))})"
        )
    bad = sorted(set(cfg["parameters"]) - set(swap_test.PARAMETERS))
    if bad:
        raise ValueError(
            f"params.yaml swap_test.parameters: unknown {bad[0]!r} (known: {', '.join(swap_test.PARAMETERS)})"
        )
    if not isinstance(cfg["similarity"], bool):
        raise ValueError(f"params.yaml swap_test.similarity must be true or false, got {cfg['similarity']!r}")
    return cfg


def swap_test_stage(key: str, *, root: Path) -> dict[str, Any]:
    """The timbre swap test of models/KEY (`dataprep.synthfoley.swap_test`, issue 13) -> evaluations/KEY/
    swap_test.{json,md}: every test/val video of `swap_test.categories` generated with the references of
    lowest and highest ground-truth `swap_test.parameters`, with the evaluate stage's vocoder and seed. Where
    it cannot run (a waveform model, data without SynthFoley's ground truth, no categories) both files say why,
    so the stage's outputs always exist; the report lists the models it ran on."""
    cfg = swap_test_settings(load_params(root / "params.yaml"))
    out = root / EVALUATIONS_DIR / key
    package_dir = root / MODELS_DIR / key / "package"
    why = None
    if not cfg["categories"] or not cfg["parameters"]:
        why = "params.yaml swap_test names no categories or no parameters"
    elif sound_model(load_package(package_dir)).model_inputs().output != "mel":
        why = "a waveform model (the swap test generates mel models' whole clips with each reference)"
    else:
        why = swap_test.missing_ground_truth(root, categories=cfg["categories"])
    if why is not None:
        doc = {"applicable": False, "why": why}
        write_json(out / "swap_test.json", doc)
        (out / "swap_test.md").write_text(f"# Timbre swap test\n\nNot run for {key}: {why}.\n")
        print(f"swap test of {key}: not run ({why})", flush=True)
        return doc
    evaluate = stage_params(root)
    print(f"swap test of {key}: {', '.join(cfg['categories'])} x {', '.join(cfg['parameters'])}", flush=True)
    return swap_test.evaluate_models(
        root,
        [package_dir],
        out,
        categories=cfg["categories"],
        parameters=cfg["parameters"],
        similarity=cfg["similarity"],
        vocoder=str(evaluate["vocoder"]),
        seed=int(evaluate["seed"]),
        log=lambda line: print(line, flush=True),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m experiments.stages", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    p = sub.add_parser("train", help="train params.yaml train.experiments.KEY into models/KEY")
    p.add_argument("key")
    p.add_argument("--root", type=Path, default=Path("."))
    p = sub.add_parser("evaluate", help="evaluate models/KEY into evaluations/KEY")
    p.add_argument("key")
    p.add_argument("--root", type=Path, default=Path("."))
    p = sub.add_parser("report", help="one table of every evaluation: results/results.{md,csv}")
    p.add_argument("--root", type=Path, default=Path("."))
    p = sub.add_parser("filter", help="train params.yaml filter.tower, write data/filtered/{high,low}.jsonl")
    p.add_argument("--root", type=Path, default=Path("."))
    args = ap.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.stage == "train":
            record = train(args.key, root=root)
            print(json.dumps({k: record[k] for k in ("key", "mlflow_run_id", "model_uri", "metrics")}))
        elif args.stage == "evaluate":
            evaluate_stage(args.key, root=root)
            swap_test_stage(args.key, root=root)
        elif args.stage == "filter":
            summary = filter_stage(root=root)
            print(json.dumps({k: summary[k] for k in ("scored", "high_clips", "low_clips", "tower")}))
        else:
            report_stage(root=root)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
