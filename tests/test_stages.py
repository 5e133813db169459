"""Unit tests of the DVC stage driver (experiments/stages.py): params checks and the filter stage's file handling.
The stages themselves run for real in tests/test_pipeline_dvc.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from experiments import stages


def test_experiment_entry_names_the_bad_key() -> None:
    params = {"train": {"experiments": {"a": {"config": "x.yaml", "set": {"epochs": 1}}, "b": {"set": {}}}}}
    assert stages.experiment_entry(params, "a") == {"config": "x.yaml", "set": {"epochs": 1}}
    with pytest.raises(ValueError, match=r"has no 'c' \(have: a, b\)"):
        stages.experiment_entry(params, "c")
    with pytest.raises(ValueError, match=r"train\.experiments\.b: expected a mapping with a 'config'"):
        stages.experiment_entry(params, "b")


def test_experiment_entry_manifest_is_checked_and_becomes_data_manifest() -> None:
    ok = {"config": "x.yaml", "manifest": "data/filtered/high.jsonl", "set": {"epochs": 1}}
    entry = stages.experiment_entry({"train": {"experiments": {"s": ok}}}, "s")
    assert entry == ok
    assert stages.config_overrides(entry) == {"data.manifest": "data/filtered/high.jsonl", "epochs": 1}
    assert stages.config_overrides({"config": "x.yaml", "set": {}}) == {}  # no manifest: the config's own
    bad = {
        "twice": {**ok, "set": {"data.manifest": "data/filtered/low.jsonl"}},
        "folder": {**ok, "manifest": "data/filtered"},
        "typo": {"config": "x.yaml", "manifests": "data/filtered/high.jsonl"},
    }
    params = {"train": {"experiments": bad}}
    with pytest.raises(ValueError, match=r"train\.experiments\.twice: give the training manifest once"):
        stages.experiment_entry(params, "twice")
    with pytest.raises(ValueError, match=r"train\.experiments\.folder\.manifest: expected a manifest path"):
        stages.experiment_entry(params, "folder")
    with pytest.raises(ValueError, match=r"train\.experiments\.typo\.manifests: unknown key"):
        stages.experiment_entry(params, "typo")


def test_shipped_experiments_name_their_manifest_and_only_seq2seq_reads_the_filter() -> None:
    """dvc.yaml's train / evaluate stages depend on `${item.manifest}`: every default experiment names one; the
    filtered system trains on the filter stage's output, the others on the prepared manifest (so they stay
    cached when the filter changes), and each config trains with the manifest its entry names."""
    from v2s_models.config import load_config

    repo = Path(stages.__file__).resolve().parents[1]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    keys = list(params["train"]["experiments"])
    assert {"regnet_demo", "varietysound_demo", "zhou_flow_demo", "seq2seq_demo"} <= set(keys), keys
    filtered = {"data/filtered/high.jsonl", "data/filtered/low.jsonl"}
    for key in keys:
        entry = stages.experiment_entry(params, key)
        assert entry.get("manifest"), f"train.experiments.{key} names no manifest"
        cfg = load_config(repo / entry["config"], stages.config_overrides(entry))
        assert cfg["data"]["manifest"] == entry["manifest"], key
        assert (entry["manifest"] in filtered) == (key == "seq2seq_demo"), (key, entry["manifest"])
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    assert "${item.manifest}" in dvc["train"]["do"]["deps"]
    assert "data/prepared/manifest.jsonl" not in dvc["train"]["do"]["deps"]
    assert "${item.manifest}" in dvc["evaluate"]["do"]["deps"]
    assert "data/filtered/high.jsonl" in dvc["filter"]["outs"]


def test_filter_entry_checks_params() -> None:
    tower = {"config": "experiments/configs/correlation/tower_demo.yaml", "set": {}}
    ok = stages.filter_entry({"filter": {"tower": tower, "high_quantile": 0.75, "splits": ["train"]}})
    assert ok == {"tower": tower, "splits": ["train"], "high_quantile": 0.75, "low_quantile": 0.5}
    with pytest.raises(ValueError, match="no `filter` section"):
        stages.filter_entry({})
    with pytest.raises(ValueError, match=r"params\.yaml filter\.low_quantile must be a number in \[0, 1\]"):
        stages.filter_entry({"filter": {"tower": tower, "low_quantile": 1.5}})
    with pytest.raises(ValueError, match=r"filter\.splits"):
        stages.filter_entry({"filter": {"tower": tower, "splits": "train"}})
    with pytest.raises(ValueError, match=r"filter\.tower"):
        stages.filter_entry({"filter": {"tower": "tower_demo.yaml"}})


def test_shipped_params_have_a_valid_filter_section() -> None:
    params = yaml.safe_load((Path(stages.__file__).resolve().parents[1] / "params.yaml").read_text())
    entry = stages.filter_entry(params)
    assert (Path(stages.__file__).resolve().parents[1] / entry["tower"]["config"]).is_file()


def test_a_failed_filter_leaves_the_previous_subsets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Training works, scoring yields nothing usable: the error names the problem, the old subsets stay."""
    from v2s_models import correlation_filter

    (tmp_path / "params.yaml").write_text(
        yaml.safe_dump({"filter": {"tower": {"config": "tower.yaml", "set": {}}, "splits": ["train"]}})
    )
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/manifest.jsonl").write_text(
        '{"clip_id": "a/1", "split": "train", "status": "ok"}\n'
    )
    old = tmp_path / "data/filtered"
    old.mkdir(parents=True)
    (old / "high.jsonl").write_text("previous\n")
    record = {"model_uri": "models:/m-1", "mlflow_run_id": "r1"}
    monkeypatch.setattr(stages, "train", lambda *a, **k: record)
    monkeypatch.setattr(correlation_filter, "load_tower", lambda *a, **k: object())
    monkeypatch.setattr(correlation_filter, "score_manifest", lambda *a, **k: {})  # no clip could be scored
    with pytest.raises(ValueError, match="no scored clips"):
        stages.filter_stage(root=tmp_path)
    assert (old / "high.jsonl").read_text() == "previous\n"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["filtered", "prepared"]

    monkeypatch.setattr(correlation_filter, "score_manifest", lambda *a, **k: {"a/1": 0.9})
    summary = stages.filter_stage(root=tmp_path)
    assert summary["tower"] == record and summary["scored"] == 1
    assert '"a/1"' in (old / "high.jsonl").read_text() and (old / "summary.json").is_file()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["filtered", "prepared"]
