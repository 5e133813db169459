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
        shown = []
        for k, v in sorted(ev.items()):
            if k.endswith(("_ci95_low", "_ci95_high")):
                continue  # shown beside their figure
            low, high = ev.get(f"{k}_ci95_low"), ev.get(f"{k}_ci95_high")
            shown.append(
                f"{k} {v:.4g}" + (f" [{low:.4g}, {high:.4g}]" if low is not None and high is not None else "")
            )
        lines.append("- Evaluation: " + ", ".join(shown))
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


EVALUATION_EXPERIMENT = "evaluation"  # v2s_models.evaluation.stage logs every evaluation run there
EVALUATION_MARK = "<!-- v2s evaluation -->"  # the description's evaluation section starts here


def latest_evaluation(client: Any, training_run_id: str) -> Any | None:
    """The latest finished full evaluation run (tag `v2s.selection=full`, the model's own run, not a baseline's)
    of the model trained by `training_run_id`, or None. Quick (max_clips) evaluations never count."""
    exp = client.get_experiment_by_name(EVALUATION_EXPERIMENT)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.`v2s.training_run_id` = '{training_run_id}' and tags.`v2s.selection` = 'full' "
            "and tags.`v2s.system_role` = 'model' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def evaluation_figures(metrics: Mapping[str, float]) -> dict[str, float]:
    """HEADLINE_METRICS (with their `_ci95_low` / `_ci95_high`) among an evaluation run's metrics."""
    keys = [f"{k}{s}" for k in HEADLINE_METRICS for s in ("", "_ci95_low", "_ci95_high")]
    return {k: float(metrics[k]) for k in keys if k in metrics}


def evaluation_section(run: Any) -> str:
    """Markdown: which evaluation, on what, and its headline figures with their 95 % intervals."""
    tags, m = run.data.tags, run.data.metrics
    shown = []
    for k in HEADLINE_METRICS:
        if k in m:
            ci = (
                f" [{m[k + '_ci95_low']:.4g}, {m[k + '_ci95_high']:.4g}]"
                if k + "_ci95_low" in m and k + "_ci95_high" in m
                else ""
            )
            shown.append(f"{k} {m[k]:.4g}{ci}")
    return (
        f"{EVALUATION_MARK}\n**Evaluation** (run `{run.info.run_id}`, experiment `{EVALUATION_EXPERIMENT}`): "
        f"{tags.get('v2s.split', '?')} split, {tags.get('v2s.clips', '?')} clips (every clip), seed "
        f"{tags.get('v2s.seed', '?')}, data {tags.get('v2s.data_fingerprint', '?')}: "
        + (", ".join(shown) or "no headline figure")
        + " (value [95 % interval])"
    )


def annotate_version(client: Any, name: str, version: str) -> dict[str, Any] | None:
    """Copies the card of version `version`'s training run (its `v2s.card.json` tag) onto the registered
    version: `v2s.card.*` tags, and the description (Markdown) when the version has none. The latest full
    evaluation of that run (`latest_evaluation`) adds its headline figures to the card's `evaluation` (tags
    `v2s.card.eval.*`, `v2s.evaluation_run_id`) and its own section to the description, replacing an earlier
    evaluation's section only. Returns the card, or None when the run has none."""
    mv = client.get_model_version(name, version)
    card = card_of_run(client, mv.run_id) if mv.run_id else None
    if card is None:
        return None
    written = to_markdown(card)  # the card as the run recorded it (no evaluation yet)
    evaluation = latest_evaluation(client, mv.run_id)
    if evaluation is not None:
        card["evaluation"] = evaluation_figures(evaluation.data.metrics)
    base = (mv.description or "").split(EVALUATION_MARK)[0].rstrip()
    if not base or base == written:  # the card v2s wrote is brought up to date; anyone else's text stays
        base = to_markdown(card)
    description = base + ("\n\n" + evaluation_section(evaluation) if evaluation is not None else "")
    if description != (mv.description or ""):
        client.update_model_version(name, version, description=description)
    for k, v in to_tags(card).items():
        client.set_model_version_tag(name, version, k, v)
    if evaluation is not None:
        client.set_model_version_tag(name, version, "v2s.evaluation_run_id", evaluation.info.run_id)
    return card
