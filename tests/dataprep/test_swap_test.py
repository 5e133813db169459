"""The timbre swap test's statistics (dataprep/synthfoley/swap_test.py) on hand-made cases, and re-voicing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.io import wavfile

from dataprep.synthfoley import swap_test
from dataprep.synthfoley.plan import plan_clip
from dataprep.synthfoley.swap_test import rank_direction_stats, revoice, run_swap_test
from v2s_models.metrics.timbre_estimate import estimate_pitch

VIDEOS = ["a", "a", "b", "b", "c", "c"]
REFS = [1.0, 5.0] * 3  # low reference 1, high reference 5


def stats(out):
    return rank_direction_stats(VIDEOS, REFS, out, high=5.0, low=1.0)


def test_outputs_that_follow_the_reference() -> None:
    s = stats([1.1, 4.9, 0.9, 5.2, 1.0, 5.0])
    assert s["fraction_right"] == 1.0 and s["fraction_wrong"] == 0.0 and s["fraction_tied"] == 0.0
    assert s["spearman"] == pytest.approx(s["spearman_max"])
    # two reference values: 3 low and 3 high, ties averaged, so the best possible rho is below 1
    assert s["spearman_max"] == pytest.approx(0.8783100656536799)


def test_ignoring_the_reference_scores_zero_with_ties_counted_as_not_moving() -> None:
    s = stats([2.0, 2.0, 7.0, 7.0, 3.0, 3.0])  # one output per video, whatever the reference
    assert s["spearman"] == pytest.approx(0.0, abs=1e-12)
    assert s["fraction_right"] == 0.0 and s["fraction_tied"] == 1.0


def test_mixed_directions_and_nan() -> None:
    s = stats([2.0, 3.0, 4.0, 1.0, math.nan, 6.0])
    assert s["fraction_right"] == pytest.approx(1 / 3)
    assert s["fraction_wrong"] == pytest.approx(1 / 3)
    assert s["videos_nan"] == 1 and s["videos"] == 3
    assert -1.0 <= s["spearman"] <= 1.0


def test_revoice_moves_the_pitch_and_keeps_the_schedule() -> None:
    gt = plan_clip(seed=0, category="hammer", index=3, size="tiny").ground_truth()
    same, sr = revoice(gt, gt["timbre"])
    low, _ = revoice(gt, {**gt["timbre"], "pitch_hz": 500.0})
    high, _ = revoice(gt, {**gt["timbre"], "pitch_hz": 1500.0})
    assert same.shape == low.shape == (gt["num_samples"],) and sr == gt["sample_rate"]
    assert estimate_pitch(low, sr, fmin=320.0, fmax=2500.0) < estimate_pitch(
        high, sr, fmin=320.0, fmax=2500.0
    )
    assert np.isfinite(same).all()


def _fake_root(tmp_path: Path, n: int = 4) -> Path:
    """A data root with `n` SynthFoley hammer clips in the test split: ground truth, real track, features."""
    rows = []
    for index in range(n):
        gt = plan_clip(seed=0, category="hammer", index=index, size="tiny").ground_truth()
        clip = f"hammer/hammer_{index:04d}"
        folder = tmp_path / "raw" / clip
        folder.mkdir(parents=True)
        (folder.parent / f"hammer_{index:04d}.json").write_text(json.dumps(gt))
        wav, sr = revoice(gt, gt["timbre"])
        wavfile.write(folder.parent / f"hammer_{index:04d}.wav", sr, wav.astype(np.float32))
        features = tmp_path / "features" / clip
        features.mkdir(parents=True)
        np.save(features / "visual.npy", np.zeros((8, 4), np.float16))
        rows.append(
            {"clip_id": clip, "category": "hammer", "split": "test", "status": "ok",
             "ground_truth": f"raw/{clip}.json", "source_path": f"raw/{clip}.wav",
             "duration": gt["duration"], "features": {"regnet": f"features/{clip}"}}
        )  # fmt: skip
    manifest = tmp_path / "data/prepared/manifest.jsonl"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_run_swap_test_on_a_parameter_subset_without_similarity(tmp_path: Path) -> None:
    root = _fake_root(tmp_path)
    systems = {
        "follower": lambda v, r: revoice(v.gt, r.gt["timbre"]),  # takes the reference's timbre exactly
        "ignorer": lambda v, r: revoice(v.gt, v.gt["timbre"]),  # keeps the video's own timbre
    }
    doc = run_swap_test(
        root, systems, takes_reference={"follower": True, "ignorer": False}, categories=("hammer",),
        splits=("test",), parameters=("pitch_hz",), similarity=False, log=lambda _: None,
    )  # fmt: skip
    rows = {r["system"]: r for r in doc["rows"]}
    assert set(rows) == {"follower", "ignorer", "revoiced", "real"}, f"{sorted(rows)=}"
    assert {r["parameter"] for r in doc["rows"]} == {"pitch_hz"} and doc["parameters"] == {
        "pitch_hz": "pitch_hz"
    }
    assert rows["follower"]["fraction_right"] == 1.0, rows["follower"]
    assert rows["ignorer"]["fraction_tied"] == 1.0 and rows["ignorer"]["fraction_right"] == 0.0
    assert rows["follower"]["sim_reference"] is None and math.isnan(doc["pairs"][0]["sim_reference"])
    with pytest.raises(ValueError, match="unknown swap-test parameter"):
        run_swap_test(
            root, {}, takes_reference={}, categories=("hammer",), splits=("test",), parameters=("loud",)
        )


def test_evaluate_models_writes_json_and_markdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _fake_root(tmp_path / "root", n=3)

    class FakeModel:  # stands in for ModelSystem: a "model" that copies the reference's timbre
        def __init__(self, path: str, *, vocoder: str, seed: int) -> None:
            self.package = SimpleNamespace(config={"name": f"fake_{Path(path).name}"})
            self.settings = SimpleNamespace(sample_rate=22050)
            self.takes_reference = True

        def __call__(self, video, reference):
            return revoice(video.gt, reference.gt["timbre"])

    monkeypatch.setattr(swap_test, "ModelSystem", FakeModel)
    out = tmp_path / "evaluations" / "fake"
    doc = swap_test.evaluate_models(
        root,
        ["pkg", "other/pkg"],
        out,
        categories=("hammer",),
        parameters=("pitch_hz",),
        similarity=False,
        log=lambda _: None,
    )
    assert doc["models"] == ["pkg", "other/pkg"]
    # two packages of the same name both keep their rows
    assert {r["system"] for r in doc["rows"]} == {"fake_pkg", "fake_pkg (other/pkg)", "revoiced", "real"}
    assert json.loads((out / "swap_test.json").read_text())["rows"] == json.loads(json.dumps(doc["rows"]))
    md = (out / "swap_test.md").read_text()
    assert "| fake_pkg | hammer | pitch_hz |" in md, md
