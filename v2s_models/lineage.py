"""Where a fine-tuned model came from: the MLflow tags `v2s.init_from.*` a fine-tuning run carries
(`finetune.lineage` writes them) and the sentence `v2s promote` opens the new version's description with.
"""

from __future__ import annotations

from collections.abc import Mapping

TAG_PREFIX = "v2s.init_from"


def describe_lineage(tags: Mapping[str, str]) -> str | None:
    """One sentence saying where a fine-tuned model came from (None when `tags` hold no `v2s.init_from`)."""
    ref = tags.get(TAG_PREFIX)
    if not ref:
        return None
    name, version = tags.get(f"{TAG_PREFIX}.model_name"), tags.get(f"{TAG_PREFIX}.model_version")
    source = f"{name} version {version} ({ref})" if name and version else ref
    parts = [f"Fine-tuned from {source}"]
    if tags.get(f"{TAG_PREFIX}.run_id"):
        parts.append(f"source training run {tags[f'{TAG_PREFIX}.run_id']}")
    if tags.get(f"{TAG_PREFIX}.data"):
        parts.append(f"on the videos in {tags[f'{TAG_PREFIX}.data']}")
    frozen = tags.get(f"{TAG_PREFIX}.freeze")
    parts.append(f"frozen: {frozen}" if frozen else "nothing frozen")
    return "; ".join(parts) + "."
