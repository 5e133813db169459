"""Model cards (v2s_models.model_card) and the MLflow records a model chooser reads (v2s_models.tracking):
training data described from a manifest, the card's summary and real-video warning, the card copied onto a
registered version, experiments created as model-training experiments, datasets logged as run inputs.

The MLflow tests use a real SQLite store in the test's folder (a few seconds).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from v2s_models import model_card
from v2s_models.tracking import (
    DESCRIPTION_TAG,
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    MLflowTracker,
    ensure_experiment,
)


def _manifest(path: Path, sources: list[str]) -> Path:
    rows = []
    for i, src in enumerate(sources):
        cat = ["hammer", "dog_bark"][i % 2]
        rows.append(
            {
                "clip_id": f"{cat}/{cat}_{i:04d}",
                "category": cat,
                "source_path": f"{src}/{cat}/{cat}_{i:04d}.mp4",
                "split": ["train", "train", "val", "test"][i % 4],
                "status": "ok",
            }
        )
    rows.append(
        {"clip_id": "x/bad", "category": "x", "source_path": "data/raw/real/x/bad.mp4", "status": "failed"}
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_training_data_counts_splits_categories_and_synthetic(tmp_path: Path) -> None:
    m = _manifest(tmp_path / "manifest.jsonl", ["data/raw/synthfoley"] * 8)
    data = model_card.training_data(m)
    assert data["clips"] == {"test": 2, "train": 4, "val": 2}  # the failed clip is not counted
    assert data["categories"] == ["dog_bark", "hammer"]
    assert data["sources"] == ["data/raw/synthfoley"]
    assert data["synthetic"] == "all"
    assert len(data["manifest_digest"]) == 64
    mixed = model_card.training_data(
        _manifest(tmp_path / "m2.jsonl", ["data/raw/synthfoley", "clips/vas"] * 2)
    )
    assert mixed["synthetic"] == "mixed" and mixed["sources"] == ["clips/vas", "data/raw/synthfoley"]
    real = model_card.training_data(_manifest(tmp_path / "m3.jsonl", ["clips/vas"] * 2))
    assert real["synthetic"] == "none"
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        model_card.training_data(tmp_path / "missing.jsonl")


def test_summary_and_warning_on_real_video(tmp_path: Path) -> None:
    data = model_card.training_data(_manifest(tmp_path / "manifest.jsonl", ["data/raw/synthfoley"] * 8))
    card = model_card.make_card(model="regnet_demo", paradigm="gan_mel", config="regnet_demo", data=data)
    line = model_card.summary(card)
    assert (
        "regnet_demo" in line
        and "synthetic video only" in line
        and "4 training clips of 2 categories" in line
    )
    assert "no evaluation recorded" in line
    warning = model_card.real_video_warning(card, tmp_path / "clips" / "hammer.mp4")
    assert warning is not None and "SynthFoley" in warning
    assert model_card.real_video_warning(card, tmp_path / "data/raw/synthfoley/hammer/a.mp4") is None
    real = model_card.make_card(
        model="m",
        paradigm="gan_mel",
        config="c",
        data={**data, "synthetic": "mixed"},
        evaluation={"onset_f1": 0.5},
    )
    assert model_card.real_video_warning(real, tmp_path / "hammer.mp4") is None
    assert model_card.real_video_warning(None, tmp_path / "hammer.mp4") is None  # packages without a card
    assert "onset_f1=0.5" in model_card.summary(real)


def test_experiment_kind_description_and_dataset_input(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    root = (tmp_path / "mlartifacts").as_uri()
    exp_id = ensure_experiment("regnet", tracking_uri=uri, artifact_root=root, description="REGNET runs")
    client = MlflowClient(tracking_uri=uri)
    tags = client.get_experiment(exp_id).tags
    assert tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING_KIND and tags[DESCRIPTION_TAG] == "REGNET runs"
    client.set_experiment_tag(exp_id, DESCRIPTION_TAG, "edited in the UI")
    assert ensure_experiment("regnet", tracking_uri=uri, description="other") == exp_id
    assert client.get_experiment(exp_id).tags[DESCRIPTION_TAG] == "edited in the UI"  # never overwritten

    data = model_card.training_data(_manifest(tmp_path / "manifest.jsonl", ["data/raw/synthfoley"] * 8))
    tracker = MLflowTracker.create(tracking_uri=uri, experiment="regnet", run_name="r", artifact_root=root)
    tracker.log_dataset(
        name="prepared", digest=data["manifest_digest"], source="data/prepared/manifest.jsonl", profile=data
    )
    card = model_card.make_card(model="r", paradigm="gan_mel", config="c", data=data)
    tracker.set_tags(model_card.to_tags(card))
    tracker.end()
    run = client.get_run(tracker.run_id)
    (inp,) = run.inputs.dataset_inputs
    assert inp.dataset.digest == data["manifest_digest"][:36]
    assert json.loads(inp.dataset.profile)["clips"] == {"test": 2, "train": 4, "val": 2}
    assert {t.key: t.value for t in inp.tags}["mlflow.data.context"] == "training"
    assert run.data.tags["v2s.card.synthetic"] == "all"

    # a registered version of the run's model gets the card as its description and tags
    mv = client.create_registered_model("regnet-test") and client.create_model_version(
        "regnet-test", source=f"{root}/x", run_id=tracker.run_id
    )
    got = model_card.annotate_version(client, "regnet-test", mv.version)
    assert got == card
    version = client.get_model_version("regnet-test", mv.version)
    assert "synthetic video only" in version.description
    assert version.tags["v2s.card.train_clips"] == "4"


def test_git_commit_outside_a_repository_reads_the_submitters_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from v2s_models.tracking import GIT_COMMIT_ENV, git_commit

    monkeypatch.delenv(GIT_COMMIT_ENV, raising=False)
    assert git_commit(tmp_path) == "unknown"  # a Ray job's uploaded working directory has no .git
    monkeypatch.setenv(GIT_COMMIT_ENV, "0123abcd")
    assert git_commit(tmp_path) == "0123abcd"
