"""The same-excerpt table (issue 13 item 5): an evaluation's `excerpt` section in metrics.json (every system on
the first S s of each clip) and the report's table of every model and baseline on those excerpts. The scoring
itself runs for real in tests/test_pipeline_dvc.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

from v2s_models.evaluation.baselines import SYSTEM
from v2s_models.evaluation.reporting import metrics_document, read_excerpt, read_summary, write_outputs
from v2s_models.evaluation.stage import EXCERPT_COLUMNS, excerpt_section
from v2s_models.metrics.stats import Interval


def _summary(model_f1: float) -> dict[str, dict[str, Interval]]:
    return {
        SYSTEM: {
            "onset_f1": Interval(model_f1, model_f1 - 0.1, model_f1 + 0.1),
            "mcd_db": Interval(30.0, 29.0, 31.0),
        },
        "same_category": {"onset_f1": Interval(0.08, 0.06, 0.10)},
        "silence": {"onset_f1": Interval(0.0, 0.0, 0.0)},
    }


def test_metrics_document_keeps_the_whole_clip_figures_and_adds_the_excerpt() -> None:
    whole, short = _summary(0.45), _summary(0.30)
    plain = metrics_document("m", whole, {"split": "test"})
    doc = metrics_document("m", whole, {"split": "test"}, {"seconds": 2.0, "summary": short})
    assert {k: v for k, v in doc.items() if k != "excerpt"} == plain  # the whole-clip figures are untouched
    assert read_excerpt(plain) is None
    seconds, systems = read_excerpt(doc)
    assert seconds == 2.0 and set(systems) == {"m", "same_category", "silence"}
    assert systems["m"]["onset_f1"] == short[SYSTEM]["onset_f1"]
    assert read_summary(doc)["m"]["onset_f1"] == whole[SYSTEM]["onset_f1"]


def test_write_outputs_writes_the_excerpt_into_metrics_and_table(tmp_path: Path) -> None:
    write_outputs(
        tmp_path,
        "m",
        _summary(0.45),
        [],
        [],
        {"split": "test", "clips": 2},
        excerpt={"seconds": 2.0, "summary": _summary(0.30)},
    )
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["excerpt"]["seconds"] == 2.0
    assert doc["excerpt"]["systems"]["m"]["onset_f1"]["value"] == 0.30
    assert doc["systems"]["m"]["onset_f1"]["value"] == 0.45
    table = (tmp_path / "table.md").read_text()
    assert "## Every system on the first 2 s of each clip" in table and "0.300 [0.200, 0.400]" in table


def test_excerpt_section_lists_every_model_and_its_baselines_per_length() -> None:
    docs = [
        metrics_document("regnet_demo", _summary(0.45), {}, {"seconds": 2.0, "summary": _summary(0.25)}),
        metrics_document("zhou_demo", _summary(0.20), {}, {"seconds": 2.0, "summary": _summary(0.20)}),
        metrics_document("old", _summary(0.10), {}),  # an evaluation without an excerpt: not in the table
    ]
    text, rows = excerpt_section(docs)
    assert text.startswith("## Every default model on the same excerpts: the first 2 s of each test clip")
    assert "regnet_demo, zhou_demo and their baselines" in text
    assert [(r["evaluation"], r["system"]) for r in rows] == [
        ("regnet_demo", "regnet_demo"),
        ("regnet_demo", "same_category"),
        ("regnet_demo", "silence"),
        ("zhou_demo", "zhou_demo"),
        ("zhou_demo", "same_category"),
        ("zhou_demo", "silence"),
    ]
    assert rows[0]["onset_f1"].value == 0.25 and math.isclose(rows[0]["seconds"], 2.0)
    header = [line for line in text.splitlines() if line.startswith("| evaluation")][0]
    assert header.split(" | ")[:3] == ["| evaluation", "system", "onset_f1"]
    assert set(EXCERPT_COLUMNS) >= {"onset_f1", "mcd_db", "av_offset_abs_ms"}
    assert excerpt_section(docs[2:]) == ("", [])
