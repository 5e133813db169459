"""Model cards: what a model was trained on, and how it scored, carried with the model.

A card is a small JSON-able dict:

    {"model": "regnet_demo", "paradigm": "gan_mel", "config": "regnet_demo",
     "training_data": {"manifest": "data/prepared/manifest.jsonl", "manifest_digest": "<sha256>",
                       "sources": ["data/raw/synthfoley"], "categories": [...], "clips": {"train": 176, ...},
                       "synthetic": "all" | "none" | "mixed"},
     "evaluation": {"onset_f1": 0.59, ...} | None}

It is written into the model package's metadata (`extra.model_card` of `v2s_model.yaml`), onto the training
run (tags `v2s.card.*` and the description), and from there onto every registered version of that run's model
(`annotate_version`: description and tags). `v2s generate` prints `summary(card)` and `real_video_warning`.

A clip counts as synthetic when its source video lies under a `synthfoley` folder (the built-in generator,
`dataprep/synthfoley`); everything else counts as real video.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CARD_KEY = "model_card"  # key in a package's `extra`
TAG_PREFIX = "v2s.card."
SYNTHETIC_SOURCES = ("synthfoley",)  # folder names of generated (not filmed) video
HEADLINE_METRICS = ("onset_f1", "onset_acc", "mcd_db", "fad", "kl_passt", "imagebind_score")


def _is_synthetic(row: Mapping[str, Any]) -> bool:
    parts = Path(str(row.get("source_path") or "")).parts
    return any(p.lower() in SYNTHETIC_SOURCES for p in parts)


def _source_of(row: Mapping[str, Any]) -> str:
    """The data source folder of a clip: its source path minus `<category>/<file>`."""
    path = Path(str(row.get("source_path") or ""))
    return str(path.parent.parent) if len(path.parts) > 2 else str(path.parent)


def training_data(manifest: str | Path, *, root: str | Path = ".") -> dict[str, Any]:
    """The card's `training_data` for a prepared manifest (usable clips only).

    Raises FileNotFoundError naming the manifest when it is missing.
    """
    path = Path(manifest) if Path(manifest).is_absolute() else Path(root) / manifest
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} not found: cannot describe the training data")
    raw = path.read_bytes()
    rows = [json.loads(line) for line in raw.decode("utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("status") == "ok"]
    synthetic = sum(_is_synthetic(r) for r in rows)
    return {
        "manifest": str(manifest),
        "manifest_digest": hashlib.sha256(raw).hexdigest(),
        "sources": sorted({_source_of(r) for r in rows}),
        "categories": sorted({str(r.get("category")) for r in rows}),
        "clips": dict(sorted(Counter(str(r.get("split")) for r in rows).items())),
        "synthetic": "none" if synthetic == 0 else "all" if synthetic == len(rows) else "mixed",
    }


def make_card(
    *,
    model: str,
    paradigm: str,
    config: str,
    data: Mapping[str, Any],
    evaluation: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """A card from its parts (`data`: `training_data(...)`; `evaluation`: headline figures or None)."""
    return {
        "model": model,
        "paradigm": paradigm,
        "config": config,
        "training_data": dict(data),
        "evaluation": None if evaluation is None else {k: float(v) for k, v in evaluation.items()},
    }


def _kind(data: Mapping[str, Any]) -> str:
    return {"all": "synthetic video only", "none": "real video", "mixed": "synthetic and real video"}.get(
        str(data.get("synthetic")), "unknown data"
    )


def summary(card: Mapping[str, Any]) -> str:
    """One line: model, paradigm, training data (kind, clips, categories, sources), headline evaluation."""
    data = card.get("training_data") or {}
    clips = data.get("clips") or {}
    cats = data.get("categories") or []
    line = (
        f"{card.get('model')} ({card.get('paradigm')}): trained on {_kind(data)}, "
        f"{clips.get('train', '?')} training clips of {len(cats)} categor{'y' if len(cats) == 1 else 'ies'} "
        f"from {', '.join(data.get('sources') or ['?'])}"
    )
    ev = card.get("evaluation") or {}
    shown = [f"{k}={ev[k]:.3g}" for k in HEADLINE_METRICS if k in ev]
    return line + ("; evaluation: " + ", ".join(shown) if shown else "; no evaluation recorded")


def real_video_warning(card: Mapping[str, Any] | None, video: str | Path) -> str | None:
    """A warning when a model trained only on synthetic video is applied to `video` that is not synthetic."""
    if not card or (card.get("training_data") or {}).get("synthetic") != "all":
        return None
    if any(p.lower() in SYNTHETIC_SOURCES for p in Path(video).resolve().parts):
        return None
    return (
        f"warning: {card.get('model')} was trained only on synthetic SynthFoley video; on real video such "
        "models produce steady buzz or hiss rather than the events' sounds (README, 'What the demo models "
        "can and cannot do')"
    )


def to_markdown(card: Mapping[str, Any]) -> str:
    """The card as Markdown (a registered version's description, the training run's description)."""
    data = card.get("training_data") or {}
    lines = [
        f"**{card.get('model')}** ({card.get('paradigm')}, config `{card.get('config')}`)",
        "",
        f"- Training data: {_kind(data)} from {', '.join(data.get('sources') or ['?'])}",
        f"- Clips: {', '.join(f'{k} {v}' for k, v in (data.get('clips') or {}).items())}",
        f"- Categories: {', '.join(data.get('categories') or [])}",
        f"- Manifest: `{data.get('manifest')}` (sha256 {str(data.get('manifest_digest'))[:12]})",
    ]
    ev = card.get("evaluation")
    if ev:
        lines.append("- Evaluation: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(ev.items())))
    else:
        lines.append("- Evaluation: none recorded yet")
    if data.get("synthetic") == "all":
        lines.append("- Trained on synthetic video only: expect buzz or hiss on real video.")
    return "\n".join(lines)


def to_tags(card: Mapping[str, Any]) -> dict[str, str]:
    """Flat `v2s.card.*` tags (MLflow run and model-version tags)."""
    data = card.get("training_data") or {}
    tags = {
        f"{TAG_PREFIX}summary": summary(card)[:4900],
        f"{TAG_PREFIX}synthetic": str(data.get("synthetic")),
        f"{TAG_PREFIX}sources": ",".join(data.get("sources") or []),
        f"{TAG_PREFIX}categories": ",".join(data.get("categories") or []),
        f"{TAG_PREFIX}train_clips": str((data.get("clips") or {}).get("train", 0)),
        f"{TAG_PREFIX}manifest_digest": str(data.get("manifest_digest")),
        f"{TAG_PREFIX}json": json.dumps(card, sort_keys=True)[:4900],
    }
    for k, v in (card.get("evaluation") or {}).items():
        tags[f"{TAG_PREFIX}eval.{k}"] = f"{v:.6g}"
    return tags


def card_of_package(extra: Mapping[str, Any]) -> dict[str, Any] | None:
    """The card in a package's `extra` (None for packages written before cards existed)."""
    card = extra.get(CARD_KEY)
    return dict(card) if isinstance(card, Mapping) else None


def card_of_run(client: Any, run_id: str) -> dict[str, Any] | None:
    """The card a training run recorded (its `v2s.card.json` tag), or None (no card, or one cut at the tag's
    length limit)."""
    text = client.get_run(run_id).data.tags.get(f"{TAG_PREFIX}json")
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def annotate_version(client: Any, name: str, version: str) -> dict[str, Any] | None:
    """Copies the card of version `version`'s training run (its `v2s.card.json` tag) onto the registered
    version: `v2s.card.*` tags, and the description (Markdown) when the version has none. Returns the card, or
    None when the run has none."""
    mv = client.get_model_version(name, version)
    card = card_of_run(client, mv.run_id) if mv.run_id else None
    if card is None:
        return None
    if not mv.description:  # a description someone (or the evaluation) wrote stays
        client.update_model_version(name, version, description=to_markdown(card))
    for k, v in to_tags(card).items():
        client.set_model_version_tag(name, version, k, v)
    return card
