"""Logged models carry a signature and a small input example (v2s_models.registry.log_model, MLflow 3 logged
models) that the loaded pyfunc accepts: REGNET (visual features alone) and VarietySound (visual features and
a reference mel), on a real SQLite store; SampleRNN (needs a sample count) logs neither."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_generate import DEBUG_REGNET, VISUAL_DIM, _save
from v2s_models import registry
from v2s_models.settings import DataSettings
from v2s_models.tracking import MLflowTracker

VARIETYSOUND = {
    "_component_": "v2s_models.builders.varietysound_generator",
    "preset": "debug",
    "video_dim": VISUAL_DIM,
    "n_mels": 80,
}
SAMPLERNN = {"_component_": "v2s_models.builders.zhou", "preset": "seq_debug", "visual_dim": VISUAL_DIM}


@pytest.mark.parametrize("kind", ["regnet", "varietysound"])
def test_logged_model_has_signature_and_an_example_the_pyfunc_accepts(tmp_path: Path, kind: str) -> None:
    import mlflow

    package = _save(tmp_path / kind, "gan_mel", DEBUG_REGNET if kind == "regnet" else VARIETYSOUND)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MLflowTracker.create(
        tracking_uri=uri, experiment=kind, run_name=kind, artifact_root=(tmp_path / "art").as_uri()
    )
    model_uri = registry.log_model(package, tracking_uri=uri, run_id=tracker.run_id)
    tracker.end()
    with registry._mlflow_uri(uri):
        info = mlflow.models.get_model_info(model_uri)
        inputs = info.signature.inputs.to_dict()
        example = mlflow.models.Model.load(model_uri).load_input_example()
        out = mlflow.pyfunc.load_model(model_uri).predict(example, params={"seed": 3})
    names = [spec["name"] for spec in inputs]
    assert names == (["visual"] if kind == "regnet" else ["visual", "reference_mel"])
    assert list(inputs[0]["tensor-spec"]["shape"]) == [-1, -1, VISUAL_DIM]
    assert list(info.signature.outputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 80, -1]
    assert set(example) == set(names), "MLflow stores the example by the signature's tensor names"
    assert np.asarray(example["visual"]).shape == (1, registry.EXAMPLE_FRAMES, VISUAL_DIM)
    assert out.shape == (1, 80, 4 * registry.EXAMPLE_FRAMES) and np.isfinite(out).all()


def test_a_generator_needing_a_sample_count_logs_no_signature(tmp_path: Path) -> None:
    from v2s_models.package import load_package

    package = _save(
        tmp_path / "samplernn",
        "autoregressive",
        SAMPLERNN,
        settings=DataSettings(name="zhou_test", fps=15.6, sample_rate=4000),
    )
    assert registry._signature(load_package(package)) == (None, None)


@pytest.mark.parametrize(
    ("name", "component"),
    [
        ("tower", {"_component_": "v2s_models.builders.correlation_tower", "preset": "debug"}),
        ("generator", {"_component_": "v2s_models.builders.hifigan_generator", "preset": "debug"}),
    ],
)
def test_a_package_that_makes_no_sound_from_video_logs_no_signature(
    tmp_path: Path, name: str, component: dict
) -> None:
    """The filter stage's correlation tower and a vocoder are logged like any model, without a signature (the
    demo's `filter` stage stopped on this once: the signature asked the tower for its SoundModel)."""
    from v2s_models.config import instantiate
    from v2s_models.package import load_package, save_package

    paradigm = "correlation" if name == "tower" else "vocoder"
    package = save_package(
        tmp_path / name,
        paradigm=paradigm,
        config={"name": name, "paradigm": paradigm, "model": {name: component}},
        data_settings=DataSettings(name="regnet"),
        features={},
        modules={name: instantiate(component)},
    )
    assert registry._signature(load_package(package)) == (None, None)
