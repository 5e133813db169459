"""Evaluations as MLflow runs of their own (v2s_models.evaluation.stage.log_to_mlflow) on a real SQLite store:
the same metric names for every model, the system as a tag, baselines as child runs, the training run never
written to, and only a full evaluation reaching the registry (model_card.annotate_version)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from v2s_models import model_card
from v2s_models.evaluation.baselines import SYSTEM
from v2s_models.evaluation.driver import Evaluation
from v2s_models.evaluation.stage import (
    EVALUATION_EXPERIMENT,
    headline,
    log_to_mlflow,
    record_on_registry,
)
from v2s_models.metrics.stats import Interval
from v2s_models.tracking import MLflowTracker


def _evaluation(name: str, onset: float, clips: int, out: Path | None = None) -> Evaluation:
    summary = {
        SYSTEM: {"onset_f1": Interval(onset, onset - 0.1, onset + 0.1), "mcd_db": Interval(30.0, 28.0, 32.0)},
        "silence": {"onset_f1": Interval(0.0, 0.0, 0.0), "mcd_db": Interval(60.0, 58.0, 62.0)},
        "revoiced": {"onset_f1": Interval(0.9, 0.8, 1.0), "mcd_db": Interval(10.0, 9.0, 11.0)},
    }
    return Evaluation(
        name=name,
        systems=[name, "silence", "revoiced"],
        summary=summary,
        per_clip=[],
        per_category=[],
        out=out,
        meta={"split": "test", "clips": clips, "seed": 0, "data_fingerprint": "abc123", "vocoder": "gl"},
    )


def _training_run(uri: str, root: str, name: str) -> str:
    data = {
        "synthetic": "all",
        "sources": ["data/raw/synthfoley"],
        "categories": ["drum"],
        "clips": {"train": 4},
    }
    tracker = MLflowTracker.create(tracking_uri=uri, experiment=name, run_name=name, artifact_root=root)
    tracker.log_metrics({"val/onset_corr": 0.25}, step=3)
    card = model_card.make_card(model=name, paradigm="gan_mel", config=name, data=data)
    tracker.set_tags(model_card.to_tags(card))
    tracker.end()
    return str(tracker.run_id)


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "mlartifacts").as_uri()


def test_two_models_share_metric_names_and_the_training_runs_stay_untouched(store, tmp_path: Path) -> None:
    uri, root = store
    client = MlflowClient(tracking_uri=uri)
    ids = {}
    for name, onset in (("regnet_demo", 0.6), ("varietysound_demo", 0.2)):
        train = _training_run(uri, root, name)
        before = client.get_run(train).data
        out = tmp_path / name
        (out / "plots").mkdir(parents=True)
        (out / "table.md").write_text("| system |\n")
        ev_id = log_to_mlflow(
            _evaluation(name, onset, 8, out), train, tracking_uri=uri, max_clips=None, artifact_root=root
        )
        ids[name] = ev_id
        after = client.get_run(train).data
        assert after.metrics == before.metrics and after.tags == before.tags, (
            "the training run is not written"
        )
    exp = client.get_experiment_by_name(EVALUATION_EXPERIMENT)
    runs = {r.info.run_id: r for r in client.search_runs([exp.experiment_id])}
    models = [runs[i] for i in ids.values()]
    assert {r.data.tags["v2s.system"] for r in models} == set(ids)
    assert (
        models[0].data.metrics.keys()
        == models[1].data.metrics.keys()
        == {
            "onset_f1",
            "onset_f1_ci95_low",
            "onset_f1_ci95_high",
            "mcd_db",
            "mcd_db_ci95_low",
            "mcd_db_ci95_high",
        }
    )
    assert models[0].data.metrics["onset_f1"] == pytest.approx(0.6)
    for r in models:
        tags = r.data.tags
        assert tags["v2s.split"] == "test" and tags["v2s.clips"] == "8" and tags["v2s.selection"] == "full"
        assert tags["v2s.max_clips"] == "all" and tags["v2s.seed"] == "0"
        assert tags["v2s.data_fingerprint"] == "abc123" and tags["v2s.system_role"] == "model"
        assert r.info.status == "FINISHED"
        assert "evaluation/table.md" in {a.path for a in client.list_artifacts(r.info.run_id, "evaluation")}
        (inp,) = r.inputs.dataset_inputs
        assert inp.dataset.digest == "abc123"
    children = [r for r in runs.values() if r.data.tags.get("v2s.system_role") == "baseline"]
    assert len(children) == 4 and {r.data.tags["v2s.system"] for r in children} == {"silence", "revoiced"}
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == set(ids.values())
    assert all(r.data.metrics.keys() == models[0].data.metrics.keys() for r in children)


def test_quick_evaluation_never_changes_the_registered_versions_figures(store) -> None:
    uri, root = store
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    train = _training_run(uri, root, "regnet_demo")
    client.create_registered_model("regnet")
    mv = client.create_model_version("regnet", source=f"{root}/x", run_id=train)
    client.set_registered_model_alias("regnet", "champion", mv.version)
    model_card.annotate_version(client, "regnet", mv.version)
    assert "none recorded yet" in client.get_model_version("regnet", mv.version).description

    full = log_to_mlflow(_evaluation("regnet_demo", 0.589, 40), train, tracking_uri=uri, max_clips=None)
    assert record_on_registry(train, tracking_uri=uri) == [f"regnet/{mv.version}"]
    champion = client.get_model_version_by_alias("regnet", "champion")
    assert champion.tags["v2s.card.eval.onset_f1"] == "0.589"
    assert champion.tags["v2s.evaluation_run_id"] == full
    assert f"run `{full}`" in champion.description and "onset_f1 0.589 [0.489, 0.689]" in champion.description
    assert "none recorded yet" not in champion.description, "the card v2s wrote is brought up to date"

    quick = log_to_mlflow(_evaluation("regnet_demo", 0.0, 8), train, tracking_uri=uri, max_clips=8)
    record_on_registry(train, tracking_uri=uri)  # even if called: the latest *full* evaluation is used
    after = client.get_model_version_by_alias("regnet", "champion")
    assert after.tags == champion.tags and after.description == champion.description
    assert client.get_run(quick).data.tags["v2s.selection"] == "quick"
    assert client.get_run(quick).data.tags["v2s.model_versions"] == f"regnet/{mv.version}"
    assert client.get_run(full).data.metrics["onset_f1"] == pytest.approx(0.589), "its own run, unchanged"

    client.update_model_version("regnet", mv.version, description="Hand-written note.")
    model_card.annotate_version(client, "regnet", mv.version)
    text = client.get_model_version("regnet", mv.version).description
    assert text.startswith("Hand-written note.") and text.count(model_card.EVALUATION_MARK) == 1


def test_dvc_experiment_name_is_a_tag(store, monkeypatch: pytest.MonkeyPatch) -> None:
    uri, _ = store
    monkeypatch.setenv("DVC_EXP_NAME", "quick")
    run = log_to_mlflow(_evaluation("m", 0.5, 8), None, tracking_uri=uri, max_clips=8)
    tags = MlflowClient(tracking_uri=uri).get_run(run).data.tags
    assert tags["v2s.dvc_experiment"] == "quick" and tags["v2s.selection"] == "quick"
    assert tags["v2s.sample"] == "category-stratified, seeded"
    assert "v2s.training_run_id" not in tags
    assert MlflowClient(tracking_uri=uri).get_run(run).data.tags.get("v2s.max_clips") == "8"
    # `v2s evaluate` passes no artifact root: the artifacts go beside the database, not to ./mlruns
    exp = MlflowClient(tracking_uri=uri).get_experiment_by_name(EVALUATION_EXPERIMENT)
    db_dir = Path(uri.removeprefix("sqlite:///")).parent
    assert exp.artifact_location == f"{(db_dir / 'mlartifacts').as_uri()}/{EVALUATION_EXPERIMENT}"


def test_headline_is_flat_and_holds_the_models_own_figures() -> None:
    flat = headline(_evaluation("m", 0.5, 8))
    assert flat == {
        "clips": 8.0,
        "onset_f1": 0.5,
        "onset_f1_ci95_low": 0.4,
        "onset_f1_ci95_high": 0.6,
        "mcd_db": 30.0,
        "mcd_db_ci95_low": 28.0,
        "mcd_db_ci95_high": 32.0,
    }
    assert json.loads(json.dumps(flat)) == flat
