"""Fine-tune a trained model on a folder of the user's own videos: the data stages on the folder, then Ray Train.

    v2s finetune models:/regnet@champion --data ~/my_clips --freeze visual_encoder --lr-scale 0.1 --epochs 5

1. The source model (any reference `registry.resolve_model` reads) gives the experiment config, the data preset
   and the feature settings (extractor, image size, optical flow) its inputs were made with.
2. The folder (category sub-folders, the VAS layout; a flat folder of videos counts as one category named after
   it) is linked into `<work>/source`, and the decode, features and splits stages run on it into `<work>/data`,
   with the source model's feature settings, so its inputs look like those it was trained on. The folder's own
   `splits/{train,val}.txt` are used when present; otherwise every `1 / val_fraction`-th clip (at least one) is
   held out for validation, and the rest train.
3. The config becomes the fine-tuning config: `init_from: {model, freeze}`, every optimiser's learning rate
   times `lr_scale`, `epochs`, the manifest of step 2, the run name `<config name>-ft-<folder name>`.
4. Before training, the source model's validation metrics on the folder are measured (the baseline); then
   `ray_jobs.train.run_training` trains on Ray (tracked in the project's MLflow store, lineage tags included) and
   the baseline is logged into the new run as `source/val/...` beside its own `val/...` curves.

Registration stays explicit: `v2s promote <run id> --name NAME` registers the result, and its description says
where it came from.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataprep import decode, features, splits
from dataprep.sources import SPLIT_NAMES, VIDEO_SUFFIXES, scan_source
from ray_jobs.train import run_training
from v2s_models import finetune
from v2s_models.params import DEFAULT_PARAMS, load_params
from v2s_models.tracking import default_artifact_root, default_tracking_uri, ensure_experiment
from v2s_models.training import loop

FEATURE_KEYS = ("extractor", "extractor_weights", "image_size", "flow", "flow_bound")
NEEDED_OUTPUTS = {"gan_mel": ["mel", "visual"], "autoregressive": ["wav_q", "visual"]}


@dataclass
class FinetuneOutcome:
    """A fine-tuning run: the training outcome, the source's metrics on the folder, and the folders used."""

    training: Any  # ray_jobs.train.TrainingOutcome
    baseline: dict[str, float]
    manifest: Path
    work: Path


def link_folder(folder: Path, out: Path, *, val_fraction: float = 0.2) -> dict[str, int]:
    """Links the videos of `folder` into `out` as a category-folder source with split lists; returns counts."""
    folder = folder.expanduser().resolve()
    if not folder.is_dir():
        raise ValueError(f"--data {folder}: not a folder")
    flat = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
    if out.exists():
        for link in sorted(out.rglob("*"), reverse=True):  # a re-run relinks (the folder may have changed)
            if link.is_symlink() or link.is_file():
                link.unlink()
    if flat:
        (out / folder.name).mkdir(parents=True, exist_ok=True)
        for p in flat:
            (out / folder.name / p.name).symlink_to(p)
    for category in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "splits"):
        for p in sorted(category.iterdir()):
            if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
                (out / category.name).mkdir(parents=True, exist_ok=True)
                (out / category.name / p.name).symlink_to(p)
    clips = [c.clip_id for c in scan_source(out)]
    (out / "splits").mkdir(parents=True, exist_ok=True)
    own = folder / "splits"
    if own.is_dir() and any((own / f"{s}.txt").is_file() for s in SPLIT_NAMES):
        for s in SPLIT_NAMES:
            if (own / f"{s}.txt").is_file():
                (out / "splits" / f"{s}.txt").write_text((own / f"{s}.txt").read_text())
        return {"clips": len(clips), "from_folder_lists": 1}
    if len(clips) < 2:
        raise ValueError(
            f"--data {folder}: {len(clips)} video(s); fine-tuning needs at least 2 (train and val)"
        )
    every = max(2, round(1 / val_fraction)) if val_fraction > 0 else len(clips) + 1
    val = clips[every - 1 :: every] or clips[-1:]
    (out / "splits" / "val.txt").write_text("".join(c + "\n" for c in val))
    (out / "splits" / "train.txt").write_text("".join(c + "\n" for c in clips if c not in val))
    return {"clips": len(clips), "val": len(val), "train": len(clips) - len(val)}


def data_params(
    project_params: dict[str, Any],
    preset: str,
    paradigm: str,
    feature_settings: dict[str, Any],
    *,
    workers: int,
    cluster: str | None,
) -> dict[str, Any]:
    """The pipeline's parameters for the folder: the project's, restricted to the source's preset and outputs,
    with the source model's feature settings."""
    params = copy.deepcopy(project_params)
    params["decode"] = {
        **params.get("decode", {}),
        "presets": [preset],
        "workers": workers,
        "cluster": cluster,
    }
    feats = dict(params.get("features", {}))
    outputs = NEEDED_OUTPUTS.get(paradigm) or list(
        (feats.get("presets") or {}).get(preset) or ["mel", "visual"]
    )
    feats.update({k: feature_settings[k] for k in FEATURE_KEYS if k in feature_settings})
    feats.update(presets={preset: outputs}, per_second=False, workers=workers, cluster=cluster)
    params["features"] = feats
    return params


def finetune_config(
    source_cfg: dict[str, Any],
    *,
    ref: str,
    manifest: str,
    name: str,
    epochs: int,
    lr_scale: float,
    freeze: list[str],
) -> dict[str, Any]:
    """The source's experiment config turned into the fine-tuning config (see the module docstring)."""
    if not lr_scale > 0:
        raise ValueError(f"--lr-scale must be > 0, got {lr_scale}")
    cfg = copy.deepcopy(source_cfg)
    cfg["name"] = name
    cfg["description"] = f"fine-tuned from {ref}"
    cfg["epochs"] = int(epochs)
    cfg["init_from"] = {"model": ref, "freeze": list(freeze)}
    cfg["data"] = {**cfg["data"], "manifest": manifest, "train_split": "train", "val_split": "val"}
    cfg["data"].pop("max_clips", None)
    for spec in cfg["optim"].values():
        spec["lr"] = float(spec["lr"]) * lr_scale
    return cfg


def baseline_metrics(cfg: dict[str, Any], weights: dict[str, Any], root: Path) -> dict[str, float]:
    """The source model's validation metrics on the folder's validation clips (before any training)."""
    import torch

    solver = loop.build_solver(cfg, root=root, init_weights=weights)
    _, val_set = solver.datasets()
    if val_set is None or len(val_set) == 0:
        return {}
    seed, batch = int(cfg.get("seed", 0)), int(cfg["batch_size"])
    loader = loop.make_loader(
        val_set, batch_size=batch, shuffle=False, seed=seed, epoch=0, collate_fn=solver.collate_fn()
    )
    solver.train(False)
    with torch.no_grad():
        return {f"val/{k}": float(v) for k, v in solver.validate(loader).items()}


def run_finetune(
    ref: str,
    data: Path,
    *,
    root: Path,
    work: Path | None = None,
    name: str | None = None,
    epochs: int = 5,
    lr_scale: float = 0.1,
    freeze: list[str] | None = None,
    val_fraction: float = 0.2,
    tracking_uri: str | None = None,
    storage: Path | None = None,
    workers: int = 2,
    cluster: str | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
) -> FinetuneOutcome:
    """Prepares `data` and fine-tunes model `ref` on it (see the module docstring)."""

    root = root.resolve()
    data = data.expanduser().resolve()
    tracking_uri = tracking_uri or default_tracking_uri(root)
    source = finetune.source_weights(ref, tracking_uri=tracking_uri)
    cfg0 = source.config
    preset = str(cfg0["data"].get("preset", "regnet"))
    name = name or f"{cfg0['name']}-ft-{data.name}"
    work = (work or root / "finetune" / name).resolve()
    counts = link_folder(data, work / "source", val_fraction=val_fraction)
    print(f"[finetune] {data}: {json.dumps(counts)}", file=sys.stderr)
    project = root / "params.yaml"
    params = data_params(
        load_params(project) if project.is_file() else DEFAULT_PARAMS,
        preset,
        str(cfg0["paradigm"]),
        source.features,
        workers=workers,
        cluster=cluster,
    )
    d = work / "data"
    decode.run(work / "source", d / "decoded", params, progress=False)
    features.run(d / "decoded", d / "features", params, progress=False)
    splits.run(work / "source", d / "decoded", d / "features", d / "prepared", params)
    manifest = d / "prepared" / "manifest.jsonl"
    cfg = finetune_config(
        cfg0,
        ref=ref,
        manifest=str(manifest),
        name=name,
        epochs=epochs,
        lr_scale=lr_scale,
        freeze=list(freeze or []),
    )
    (work / "params.yaml").write_text(json.dumps(params, indent=1))  # data_metadata reads the work's settings
    baseline = baseline_metrics(cfg, source.state, work)
    # The experiment's artifacts go to the project's folder, not to this work folder (run_training's root).
    ensure_experiment("finetune", tracking_uri=tracking_uri, artifact_root=default_artifact_root(root))
    print(
        f"[finetune] the source model on {data.name}'s validation clips: {_shown(baseline)}", file=sys.stderr
    )
    outcome = run_training(
        cfg,
        root=work,
        run_name=name,
        storage=storage or root / "ray_results",
        tracking_uri=tracking_uri,
        experiment="finetune",
        address=address,
        num_cpus=num_cpus,
        extra_tags={f"{finetune.TAG_PREFIX}.data": str(data)},
    )
    if outcome.mlflow_run_id and baseline and not outcome.already_finished:
        _log_baseline(baseline, run_id=outcome.mlflow_run_id, tracking_uri=tracking_uri)
    return FinetuneOutcome(training=outcome, baseline=baseline, manifest=manifest, work=work)


def _log_baseline(baseline: dict[str, float], *, run_id: str, tracking_uri: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    for key, value in baseline.items():
        if math.isfinite(value):
            client.log_metric(run_id, f"source/{key}", value, step=0)


def _shown(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())) or "(no validation clips)"
