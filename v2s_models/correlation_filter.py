"""Data-set filtering by audio-visual correlation (the correlation-filtered system, PAPERS.md section 3).

A trained correlation tower scores every usable clip of a manifest: the probability that the clip's own
per-second audio belongs to its per-second video (`score_manifest`). `write_subsets` then writes two manifests
in the pipeline's format, rows unchanged plus a `correlation` field:

    <out>/high.jsonl   clips scoring >= the `high_quantile` quantile of the scores (e.g. 0.5: the top half)
    <out>/low.jsonl    clips scoring <= the `low_quantile` quantile (e.g. 0.5: the bottom half)
    <out>/summary.json thresholds, counts, the tower's source

so a seq2seq config trains on the high-correlation subset (the page's choice), the low one (the page's
contrast study) or the unfiltered set by pointing `data.manifest` at `high.jsonl`, `low.jsonl` or the
prepared manifest. Paths inside the rows stay relative to the same project root. By default every split is
filtered (the page refines "the dataset"); `splits=["train"]` filters the training clips only and copies the
other splits' rows into both subsets, so models trained on either are evaluated on the same clips.
The tower is trained on the training split, so training clips tend to score higher than the others; the
quantiles are taken over the filtered rows together.

    python -m v2s_models.correlation_filter --checkpoint CKPT --manifest M --out DIR [--root .]
        [--config tower.yaml] [--high-quantile 0.5] [--low-quantile 0.5] [--splits train]

CKPT is a model package folder (`v2s_model.yaml` + `model.pt`, with the config inside) or a training
checkpoint (`checkpoint.pt`, or the folder holding it) with `--config` giving the tower's experiment config.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from v2s_models.config import instantiate, load_config
from v2s_models.correlation import CorrelationTower
from v2s_models.data import PerSecondDataset, read_manifest
from v2s_models.package import META_FILE, load_package
from v2s_models.training.checkpoint import load_checkpoint
from v2s_models.training.contrastive import collate_seconds

HIGH_FILE, LOW_FILE, SUMMARY_FILE = "high.jsonl", "low.jsonl", "summary.json"


def _manifest_path(manifest: str | Path, root: str | Path) -> Path:
    return Path(manifest) if Path(manifest).is_absolute() else Path(root) / manifest


def score_manifest(
    tower: CorrelationTower,
    manifest: str | Path,
    root: str | Path = ".",
    *,
    split: str | Sequence[str] | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """{clip_id: P(matched)} for every usable clip (status ok) of `manifest` (optionally of `split`).

    Each clip is scored as its own (video, audio) pair with the tower in eval mode.
    """
    if not isinstance(tower, CorrelationTower):
        raise ValueError(f"tower must be a CorrelationTower, got {type(tower).__name__}")
    rows = read_manifest(manifest, split=split, root=root)
    loader = DataLoader(PerSecondDataset(rows, root=root), batch_size=batch_size, collate_fn=collate_seconds)
    was_training = tower.training
    tower.eval()
    scores: dict[str, float] = {}
    try:
        for batch in loader:
            video, audio = batch["appearance"].to(device), batch["audio"].to(device)
            if video.shape[-1] != tower.video_dim or audio.shape[-1] != tower.audio_dim:
                raise ValueError(
                    f"the tower takes video {tower.video_dim}-d / audio {tower.audio_dim}-d features, the "
                    f"manifest's per-second features are {video.shape[-1]}-d / {audio.shape[-1]}-d"
                )
            probs = tower.score(video, audio).float().cpu().tolist()
            scores.update(zip(batch["clip_id"], probs, strict=True))
    finally:
        tower.train(was_training)
    return scores


def check_quantile(name: str, q: Any) -> float:
    """`q` as a float when it is a number in [0, 1]; else a ValueError naming `name`."""
    if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= q <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {q!r}")
    return float(q)


def write_subsets(
    manifest: str | Path,
    scores: Mapping[str, float],
    out_dir: str | Path,
    *,
    high_quantile: float,
    low_quantile: float,
    root: str | Path = ".",
    splits: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Writes `high.jsonl`, `low.jsonl` and `summary.json` under `out_dir`; returns the summary.

    Rows of `splits` (None: every split) with a score go to `high` when score >= quantile(high_quantile) and
    to `low` when score <= quantile(low_quantile) (numpy's linear quantile over those rows' scores); rows of
    the other splits go to both; rows without a score (unusable clips, or not scored) are left out. Each
    written row is the manifest's row with `correlation` (the score, or null) added, in manifest order.
    """
    for name, q in (("high_quantile", high_quantile), ("low_quantile", low_quantile)):
        check_quantile(name, q)
    path = _manifest_path(manifest, root)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    filtered = [r for r in rows if (splits is None or r.get("split") in splits) and r["clip_id"] in scores]
    if not filtered:
        raise ValueError(f"no scored clips of splits {splits!r} in {path}: nothing to filter")
    values = np.array([float(scores[r["clip_id"]]) for r in filtered], dtype=np.float64)
    high_thr = float(np.quantile(values, high_quantile))
    low_thr = float(np.quantile(values, low_quantile))
    high, low = [], []
    for r in rows:
        score = scores.get(r["clip_id"])
        out = {**r, "correlation": None if score is None else float(score)}
        if splits is not None and r.get("split") not in splits:
            if r.get("status") == "ok":
                high.append(out)
                low.append(out)
            continue
        if score is None:
            continue
        if score >= high_thr:
            high.append(out)
        if score <= low_thr:
            low.append(out)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, subset in ((HIGH_FILE, high), (LOW_FILE, low)):
        tmp = out_dir / (name + ".part")
        tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in subset), encoding="utf-8")
        tmp.replace(out_dir / name)
    summary = {
        "manifest": str(manifest),
        "splits": None if splits is None else list(splits),
        "scored": len(filtered),
        "high_quantile": float(high_quantile),
        "low_quantile": float(low_quantile),
        "high_threshold": high_thr,
        "low_threshold": low_thr,
        "high_clips": sum(1 for r in high if splits is None or r.get("split") in splits),
        "low_clips": sum(1 for r in low if splits is None or r.get("split") in splits),
        "high_rows": len(high),
        "low_rows": len(low),
    }
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def load_tower(checkpoint: str | Path, *, config: str | Path | None = None) -> CorrelationTower:
    """A trained tower from a model package folder, or from a training checkpoint plus its config."""

    checkpoint = Path(checkpoint)
    if (checkpoint / META_FILE).is_file():
        package = load_package(checkpoint)
        if "tower" not in package.modules:
            raise ValueError(
                f"model package {checkpoint} has no 'tower' module (has {sorted(package.modules)})"
            )
        tower = package.modules["tower"]
    else:
        if config is None:
            raise ValueError(
                f"{checkpoint} is not a model package folder: give --config, the tower's experiment config"
            )
        cfg = load_config(config)
        if "tower" not in cfg["model"]:
            raise ValueError(f"config {config}: model.tower missing (not a correlation-tower config)")
        state = load_checkpoint(checkpoint)
        try:
            weights = state["solver"]["modules"]["tower"]
        except KeyError:
            raise ValueError(f"checkpoint {checkpoint} holds no 'tower' weights") from None
        tower = instantiate(cfg["model"]["tower"])
        tower.load_state_dict(weights)
    if not isinstance(tower, CorrelationTower):
        raise ValueError(f"{checkpoint}: 'tower' is a {type(tower).__name__}, not a CorrelationTower")
    return tower.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m v2s_models.correlation_filter",
        description="Score clips with a trained correlation tower; write high/low-correlation manifests.",
    )
    parser.add_argument(
        "--checkpoint", required=True, help="model package folder or checkpoint.pt (+ --config)"
    )
    parser.add_argument("--manifest", required=True, help="prepared manifest (relative to --root)")
    parser.add_argument("--out", required=True, help="folder for high.jsonl, low.jsonl, summary.json")
    parser.add_argument("--root", default=".", help="project root the manifest's paths are relative to")
    parser.add_argument("--config", default=None, help="the tower's experiment config (for checkpoint.pt)")
    parser.add_argument("--high-quantile", type=float, default=0.5)
    parser.add_argument("--low-quantile", type=float, default=0.5)
    parser.add_argument("--splits", nargs="*", default=None, help="splits to filter (default: all)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    tower = load_tower(args.checkpoint, config=args.config)
    scores = score_manifest(tower, args.manifest, args.root, batch_size=args.batch_size)
    summary = write_subsets(
        args.manifest,
        scores,
        args.out,
        high_quantile=args.high_quantile,
        low_quantile=args.low_quantile,
        root=args.root,
        splits=args.splits,
    )
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
