"""The evaluation driver (v2s_models/evaluation.py) and the train / evaluate stage helpers, on the tiny data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.stages import experiment_entry
from v2s_models import evaluation as ev

REPO = Path(__file__).resolve().parents[2]


def _clip(cid: str, category: str) -> ev.EvalClip:
    return ev.EvalClip(
        clip_id=cid,
        category=category,
        visual=np.zeros((2, 2), np.float32),
        real_wav=np.zeros(4, np.float32),
        real_mel=None,
        gt=None,
        source=Path("x.mp4"),
        duration=1.0,
    )


def test_partners_are_other_clips_of_the_same_category():
    clips = [_clip("a/1", "a"), _clip("a/2", "a"), _clip("a/3", "a"), _clip("b/1", "b"), _clip("c/1", "c")]
    mate = ev.partners(clips)
    assert mate["a/1"] == "a/2" and mate["a/2"] == "a/3" and mate["a/3"] == "a/1"
    assert mate["b/1"] != "b/1" and mate["c/1"] != "c/1"  # alone in its category: another clip


def test_experiment_entry_names_the_bad_key():
    params = {"train": {"experiments": {"x": {"config": "c.yaml", "set": {"epochs": 1}}, "bad": {"set": {}}}}}
    assert experiment_entry(params, "x") == {"config": "c.yaml", "set": {"epochs": 1}}
    with pytest.raises(ValueError, match="has no 'y'"):
        experiment_entry(params, "y")
    with pytest.raises(ValueError, match=r"train.experiments.bad: expected a mapping with a 'config'"):
        experiment_entry(params, "bad")


def test_markdown_table_and_column_order():
    cols = ["system", *ev.ordered_columns({"zeta", "mcd_db", "onset_f1"})]
    assert cols == ["system", "onset_f1", "mcd_db", "zeta"]
    md = ev.markdown_table([{"system": "m", "onset_f1": 0.5, "mcd_db": float("nan"), "zeta": 2.0}], cols)
    assert md.splitlines()[2] == "| m | 0.500 |  | 2.000 |"


def _debug_package(tmp: Path, config: str) -> Path:
    from v2s_models.config import instantiate, load_config
    from v2s_models.package import save_package
    from v2s_models.settings import get_preset

    cfg = load_config(REPO / config)
    torch.manual_seed(0)
    modules = {name: instantiate(spec) for name, spec in cfg["model"].items()}
    out = tmp / cfg["name"]
    save_package(
        out,
        paradigm=cfg["paradigm"],
        config=cfg,
        data_settings=get_preset("zhou" if cfg["data"].get("preset") == "zhou" else "regnet"),
        features={"visual_part": cfg["data"].get("visual_part", "all")},
        modules=modules,
    )
    return out


@pytest.mark.parametrize(
    "config", ["experiments/configs/regnet/debug.yaml", "experiments/configs/varietysound/debug.yaml"]
)
def test_evaluate_writes_tables_baselines_and_samples(tiny_data_root, tmp_path, config):
    package = _debug_package(tmp_path, config)
    out = tmp_path / "eval"
    standard = None
    if "regnet" in config:  # the standard metrics' hook, with the test-sized stand-in networks
        from v2s_models.metrics.standard.standin import write_standins

        write_standins(tmp_path / "standin", seed=0)
        standard = {"standin_dir": str(tmp_path / "standin")}
    result = ev.evaluate(
        package, root=tiny_data_root, out=out, max_clips=3, samples=1, standard_settings=standard
    )
    name = result.name
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["systems"]) == [name, "revoiced", "same_category", "silence", "model_other_video"]
    assert doc["clips"] == 3
    for system, figures in doc["systems"].items():  # every figure carries its interval
        for metric, fig in figures.items():
            low, high = fig["ci95"]
            finite = all(np.isfinite([fig["value"], low, high]))
            assert not finite or low <= fig["value"] <= high, (system, metric, fig)
    s = {k: {m: f["value"] for m, f in v.items()} for k, v in doc["systems"].items()}
    # known answers: silence has no onsets; the real audio re-voiced keeps the real events' timing
    assert s["silence"]["onset_f1"] == 0.0
    assert s["revoiced"]["onset_f1"] > 0.5, s["revoiced"]
    assert s["revoiced"]["mcd_db"] < s["silence"]["mcd_db"]
    assert s["revoiced"]["fd_soundnet"] < s["silence"]["fd_soundnet"]
    assert doc["systems"]["revoiced"]["fd_soundnet"]["ci95"][0] <= s["revoiced"]["fd_soundnet"]
    if standard is not None:
        assert {"fd_panns", "kl_panns", "fd_vggish"} <= set(s[name]), sorted(s[name])
        assert doc["protocol"]["standard_weights"]["panns"] == "stand-in"
    if "varietysound" in config:
        assert "timbre_sim_reference" in s[name]  # VarietySound is scored against its reference clip too
        assert "mcd_own_reference_db" in s[name] and "mcd_mel_db" in s[name]
    assert re.search(r"\| -?\d+\.\d+ \[-?\d+\.\d+, -?\d+\.\d+\] \|", (out / "table.md").read_text())
    rows = (out / "per_clip.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 * 3
    assert (out / "plots" / "summary.png").stat().st_size > 1000
    samples = sorted(p.relative_to(out / "samples").parts[0] for p in (out / "samples").glob("*/*.mp4"))
    assert samples == sorted(["real", name, "revoiced", "same_category", "silence"])
    cat = (out / "per_category.csv").read_text().splitlines()
    assert cat[0].startswith("system,category,clips,onset_f1")


def test_correlation_tower_is_evaluated_by_retrieval_beside_chance(tiny_data_root, tmp_path):
    package = _debug_package(tmp_path, "experiments/configs/correlation/tower_debug.yaml")
    result = ev.evaluate(package, root=tiny_data_root, out=tmp_path / "eval")
    found, chance = result.summary["model"], result.summary["chance"]
    n = int(result.meta["protocol"]["retrieval"]["clips"])
    assert n == 8 and chance["recall@1"].value == 1 / 8 and chance["median_rank"].value == 4.5
    assert 1 <= found["median_rank"].value <= n and found["recall@10"].value == 1.0  # 8 candidates: top 10
    assert found["mean_rank"].low <= found["mean_rank"].value <= found["mean_rank"].high
    doc = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert list(doc["systems"]) == [result.name, "chance"]


def test_samplernn_gets_likelihood_retrieval_and_short_generation(tiny_data_root, tmp_path):
    package = _debug_package(tmp_path, "experiments/configs/zhou/frame_debug.yaml")
    result = ev.evaluate(
        package,
        root=tiny_data_root,
        max_clips=2,
        generate_seconds=0.1,
        retrieval_clips=4,
        retrieval_seconds=0.064,
    )
    m = {k: v.value for k, v in result.summary["model"].items()}
    assert result.meta["protocol"]["retrieval"]["clips"] == 4 and 1 <= m["median_rank"] <= 4
    assert m["nll_bits"] == pytest.approx(m["nll_nats"] / np.log(2))
    assert 0 < m["nll_nats"] < 6.0  # an untrained 256-way softmax: about ln 256 = 5.55 nats
    systems = {"model", *ev.BASELINES, ev.CONTROL, ev.RETRIEVAL_BASELINE}
    assert len(result.per_clip) == 2 * len(systems) and set(result.summary) == systems


def test_a_per_second_model_is_scored_on_the_per_second_features(tiny_data_root, tmp_path):
    """The seq2seq SampleRNN (`model_inputs().per_second`) reads persecond/<clip>/appearance.npy, one row a
    second, not the preset's per-frame visual.npy: its clips load those rows, and it generates and is scored."""
    from v2s_models.data import feature_dir, read_manifest
    from v2s_models.package import load_package

    path = _debug_package(tmp_path, "experiments/configs/correlation/seq2seq_debug.yaml")
    package = load_package(path)
    row = read_manifest("data/prepared/manifest.jsonl", split="test", root=tiny_data_root)[0]
    visual = ev.visual_input(package, row, root=tiny_data_root)
    appearance = np.load(feature_dir(row, "persecond", tiny_data_root) / "appearance.npy")
    assert visual.shape == (10, 1280) and visual.dtype == np.float32, f"{visual.shape=} {visual.dtype=}"
    np.testing.assert_array_equal(visual, appearance)
    frame_wise = load_package(_debug_package(tmp_path, "experiments/configs/zhou/frame_debug.yaml"))
    assert ev.visual_input(frame_wise, row, root=tiny_data_root).shape == (156, 1280)  # appearance per frame

    result = ev.evaluate(
        path,
        root=tiny_data_root,
        max_clips=2,
        generate_seconds=0.1,
        retrieval_clips=4,
        retrieval_seconds=0.064,
        retrieval_baseline=False,
        bootstrap=10,
    )
    m = {k: v.value for k, v in result.summary["model"].items()}
    assert 0 < m["nll_nats"] < 6.0 and 1 <= m["median_rank"] <= 4, m
    assert len(result.per_clip) == 2 * len({"model", *ev.BASELINES, ev.CONTROL})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"generate_seconds": 0}, "generate_seconds must be a positive"),
        ({"max_clips": 0}, "max_clips must be at least 1"),
        ({"retrieval_clips": 1}, "retrieval_clips must be at least 2"),
    ],
)
def test_impossible_settings_are_refused_before_any_work(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ev.evaluate(tmp_path / "no-such-model", root=tmp_path, **kwargs)


def test_an_unknown_model_is_named_in_the_error(tmp_path):
    with pytest.raises(ValueError, match="no-such-model"):
        ev.evaluate(tmp_path / "no-such-model", root=tmp_path)


def test_summary_plot_takes_an_interval_that_does_not_contain_its_value(tmp_path: Path) -> None:
    """FD on resampled sets lies above FD on the set, so its percentile interval can sit wholly above the value."""
    from v2s_models.evaluation.reporting import _plot
    from v2s_models.metrics.stats import Interval

    rows = [
        {"system": "model", "fd_soundnet": Interval(0.10, 0.12, 0.20)},
        {"system": "silence", "fd_soundnet": Interval(0.30, 0.25, 0.28)},
    ]
    _plot(tmp_path / "summary.png", rows, ["fd_soundnet"])
    assert (tmp_path / "summary.png").stat().st_size > 0
