"""The timbre swap test as part of the evaluate stage (experiments/stages.py `swap_test_stage`) and in the
report (`reporting.swap_test_section`): settings checks, when it cannot run, and the report's table. The swap
test itself is tested in tests/dataprep/test_swap_test.py; the stage runs for real in tests/test_pipeline_dvc.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dataprep.synthfoley import swap_test
from experiments import stages
from v2s_models.evaluation.reporting import swap_test_section

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_params_have_a_valid_swap_test_section() -> None:
    cfg = stages.swap_test_settings(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert cfg["categories"] == ["hammer", "drum"]
    assert set(cfg["parameters"]) == set(swap_test.PARAMETERS)


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"paramters": ["pitch_hz"]}, "swap_test.paramters"),
        ({"parameters": ["pitch"]}, "'pitch'"),
        ({"similarity": "yes"}, "similarity"),
    ],
)
def test_bad_swap_test_settings_are_named(section: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace(".", r"\.")):
        stages.swap_test_settings({"swap_test": section})


def _manifest(root: Path, rows: list[dict]) -> None:
    path = root / "data/prepared/manifest.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _row(category: str, i: int, split: str = "test", gt: bool = True) -> dict:
    row = {"clip_id": f"{category}/{category}_{i:04d}", "category": category, "split": split, "status": "ok"}
    return {**row, "ground_truth": f"gt/{i}.json"} if gt else row


def test_missing_ground_truth_says_why(tmp_path: Path) -> None:
    assert "not found" in swap_test.missing_ground_truth(tmp_path)
    _manifest(
        tmp_path,
        [_row("hammer", 0), _row("hammer", 1, "val"), _row("drum", 2), _row("drum", 3, "train")],
    )
    assert swap_test.missing_ground_truth(tmp_path) == "1 drum clip(s) in the test/val splits (needs 2)"
    assert swap_test.missing_ground_truth(tmp_path, categories=["hammer"]) is None


def test_user_videos_without_ground_truth_are_refused(tmp_path: Path) -> None:
    _manifest(tmp_path, [_row("hammer", 0, gt=False), _row("hammer", 1, gt=False)])
    why = swap_test.missing_ground_truth(tmp_path, categories=["hammer"])
    assert why is not None and "without ground-truth timbre" in why


def test_the_stage_writes_why_it_did_not_run(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"swap_test": {"categories": []}}))
    doc = stages.swap_test_stage("some_model", root=tmp_path)
    assert doc == {"applicable": False, "why": "params.yaml swap_test names no categories or no parameters"}
    out = tmp_path / "evaluations/some_model"
    assert json.loads((out / "swap_test.json").read_text()) == doc
    assert "Not run for some_model" in (out / "swap_test.md").read_text()


def _doc(system: str, spearman: float | None) -> dict:
    def row(name: str, rho: float | None, tied: float) -> dict:
        return {"system": name, "category": "hammer", "parameter": "pitch_hz", "spearman": rho,
                "spearman_max": 0.87, "fraction_right": 0.5, "fraction_tied": tied, "videos": 8,
                "videos_nan": 0}  # fmt: skip

    return {"rows": [row(system, spearman, 0.0), row("revoiced", 0.87, 0.0), row("real", 0.0, 1.0)]}


def test_the_report_lists_every_model_once_and_the_ceiling_once(tmp_path: Path) -> None:
    for key, doc in [
        ("regnet_demo", _doc("regnet_demo", 0.0)),
        ("varietysound_demo", _doc("varietysound_demo", None)),
        ("zhou_flow_demo", {"applicable": False, "why": "a waveform model"}),
    ]:
        (tmp_path / key).mkdir()
        (tmp_path / key / "swap_test.json").write_text(json.dumps(doc))
    (tmp_path / "no_swap_test").mkdir()
    text = swap_test_section(sorted(p for p in tmp_path.iterdir()))
    lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [line.split(" | ")[1] for line in lines] == [
        "regnet_demo",
        "varietysound_demo",
        "revoiced",
        "real",
    ]
    cells = lines[1].split(" | ")
    assert cells[4] == ""  # no estimate: an empty cell, not "None" or "nan"
    assert "Not run: zhou_flow_demo (a waveform model)." in text
    assert swap_test_section([tmp_path / "no_swap_test"]) == ""
