"""The evaluation's protocol pieces without a model: the fast Frechet distance, the stratified clip sample,
Zhou's retrieval baseline, paired comparisons of two evaluations, and the papers' tables."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from v2s_models import evaluation as ev
from v2s_models.evaluation.paper_tables import NO_RUN, paper_tables
from v2s_models.metrics import frechet_distance
from v2s_models.metrics.stats import Interval


def test_lowrank_frechet_distance_equals_the_full_one():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 64))
    b = rng.normal(0.5, 2.0, size=(9, 64))
    assert ev.frechet_distance_lowrank(a, b) == pytest.approx(frechet_distance(a, b), rel=1e-6)
    assert ev.frechet_distance_lowrank(a, a) == pytest.approx(0.0, abs=1e-8)
    idx = rng.integers(0, 9, size=9)  # a bootstrap resample repeats clips
    assert ev.frechet_distance_lowrank(a[idx], b[idx]) == pytest.approx(frechet_distance(a[idx], b[idx]))


def test_max_clips_takes_every_category_not_the_manifest_head():
    rows = [
        {"clip_id": f"{c}/{i}", "category": c} for c in ("dog", "drum", "gun", "hammer") for i in range(10)
    ]
    picked = ev.select_rows(rows, 8, seed=0)
    assert sorted({r["category"] for r in picked}) == ["dog", "drum", "gun", "hammer"]
    assert all(sum(r["category"] == c for r in picked) == 2 for c in ("dog", "drum", "gun", "hammer"))
    assert ev.select_rows(rows, None, seed=0) == rows


def _clip(cid: str, wav: np.ndarray) -> ev.EvalClip:
    return ev.EvalClip(cid, "x", np.zeros((2, 2), np.float32), wav, None, None, Path("x.mp4"), 4.0)


def test_retrieval_baseline_finds_the_training_segment_it_was_given():
    sr = 8000
    rng = np.random.default_rng(1)
    train = [_clip(f"t{i}", rng.normal(0, 0.1 * (i + 1), 4 * sr).astype(np.float32)) for i in range(3)]
    query = _clip("q", train[2].real_wav.copy())
    out = ev.retrieval_oracle([query], train, sample_rate=sr, num_samples=4 * sr, hop=128)
    wav = out["q"]
    seg = int(round(2.0 * sr / 128)) * 128
    assert wav.shape == (4 * sr,)
    np.testing.assert_allclose(wav[: 2 * seg], train[2].real_wav[: 2 * seg])  # both 2 s segments retrieved


def _fake_evaluation(folder: Path, model: str, onset: np.ndarray, mcd: np.ndarray) -> None:
    folder.mkdir(parents=True)
    cats = ["a", "b"] * (len(onset) // 2)
    summary = {"model": {"onset_f1": Interval(float(onset.mean()), 0.0, 1.0)}}
    doc = ev.metrics_document(model, summary, {"split": "test", "clips": len(onset)})
    (folder / "metrics.json").write_text(json.dumps(doc))
    with open(folder / "per_clip.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["system", "clip_id", "category", "onset_f1", "mcd_db"])
        for i, (o, m) in enumerate(zip(onset, mcd, strict=True)):
            w.writerow([model, f"c{i}", cats[i], o, m])
            w.writerow(["silence", f"c{i}", cats[i], 0.0, 9.0])


def test_compare_reports_a_real_difference_and_not_a_null_one(tmp_path):
    rng = np.random.default_rng(3)
    base = rng.uniform(0.2, 0.6, 40)
    mcd = rng.uniform(4, 6, 40)
    _fake_evaluation(
        tmp_path / "A", "model_a", base + 0.15 + rng.normal(0, 0.02, 40), mcd + rng.normal(0, 0.3, 40)
    )
    _fake_evaluation(tmp_path / "B", "model_b", base, mcd)
    rows = {r["metric"]: r for r in ev.compare_evaluations(tmp_path / "A", tmp_path / "B")}
    assert rows["onset_f1"]["significant"] and rows["onset_f1"]["better"] == "model_a"
    assert rows["onset_f1"]["difference"].low > 0 and rows["onset_f1"]["n"] == 40
    assert not rows["mcd_db"]["significant"] and rows["mcd_db"]["better"] is None
    text = ev.comparison_markdown(list(rows.values()))
    assert "onset_f1 (model_a better)" in text and "mcd_db" in text


def test_compare_refuses_evaluations_of_different_clips(tmp_path):
    _fake_evaluation(tmp_path / "A", "a", np.ones(4), np.ones(4))
    _fake_evaluation(tmp_path / "B", "b", np.ones(4), np.ones(4))
    rows = (tmp_path / "B" / "per_clip.csv").read_text().replace("c", "z")
    (tmp_path / "B" / "per_clip.csv").write_text(
        rows.replace("system,zlip_id,zategory", "system,clip_id,category")
    )
    with pytest.raises(ValueError, match="same clips"):
        ev.compare_evaluations(tmp_path / "A", tmp_path / "B")


def test_paper_tables_show_our_figures_beside_the_published_and_missing_runs_as_such():
    summary = {
        "model": {
            "mcd_own_reference_db": Interval(5.5, 5.2, 5.9),
            "mcd_mel_db": Interval(7.0, 6.5, 7.5),
            "timbre_sim_reference": Interval(0.8, 0.7, 0.85),
        }
    }
    meta = {"split": "test", "clips": 32, "vocoder": "griffin_lim", "paradigm": "gan_mel"}
    doc = ev.metrics_document("varietysound_demo", summary, {**meta, "protocol": {"background": "silence"}})
    text = paper_tables([doc])
    proposed = next(line for line in text.splitlines() if line.startswith("| Proposed"))
    assert "4.14" in proposed and "5.500 [5.200, 5.900]" in proposed and "griffin_lim" in proposed
    w_bi = next(line for line in text.splitlines() if line.startswith("| w Bi"))
    assert NO_RUN in w_bi  # no evaluation with a real background: said, not invented
    assert "| Frame | 2.71 | " + NO_RUN in text  # no SampleRNN evaluation


def test_own_reference_mcd_of_the_real_mel_is_zero_and_the_cross_reference_is_not():
    """The own-reference MCD scores the mel generated with the clip's own timbre against the clip's real mel:
    a generator that re-voiced the real clip exactly scores 0 dB there, while the same clip's cross-reference
    figure (another clip's mel) does not."""
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    sr = 22050
    mels = [rng.uniform(0.1, 0.9, (80, 86)).astype(np.float32) for _ in range(2)]
    clips = [
        ev.EvalClip(
            f"c/{i}",
            "c",
            np.zeros((2, 2), np.float32),
            rng.normal(0, 0.1, sr).astype(np.float32),
            mels[i],
            None,
            Path("x.mp4"),
            1.0,
        )
        for i in range(2)
    ]
    synthesis = ev.Synthesis(
        systems={"model": {c.clip_id: c.real_wav for c in clips}},
        mels={"c/0": mels[1], "c/1": mels[0]},  # the other clip's timbre
        own_reference_mels={"c/0": mels[0], "c/1": mels[1]},  # a perfect re-voicing of each clip
        references={"c/0": "c/1", "c/1": "c/0"},
    )
    package = SimpleNamespace(data_settings=SimpleNamespace(sample_rate=sr, fps=21.5))
    rows, _, _ = ev.score_clips(package, clips, synthesis)
    for r in rows:
        assert r["mcd_own_reference_db"] == pytest.approx(0.0, abs=1e-6)
        assert r["mcd_mel_db"] > 1.0


def test_varietysound_validation_reports_the_own_reference_mcd(tiny_data_root):
    from torch.utils.data import DataLoader

    from v2s_models.config import load_config
    from v2s_models.data import MelVisualDataset, collate_dicts, read_manifest
    from v2s_models.training.loop import build_solver

    cfg = load_config(Path(__file__).resolve().parents[2] / "experiments/configs/varietysound/debug.yaml")
    solver = build_solver(cfg, root=tiny_data_root)
    # two clips of each of two categories: every clip's cross reference is the other clip of its category
    rows = read_manifest("data/prepared/manifest.jsonl", split=["train", "test"], root=tiny_data_root)
    rows = [r for r in rows if r["category"] in {"cough", "drum"}]
    loader = DataLoader(MelVisualDataset(rows, root=tiny_data_root), batch_size=2, collate_fn=collate_dicts)
    metrics = {k.split("/")[-1]: v for k, v in solver.validate(loader).items()}
    own, cross = metrics["mcd_own_reference_db"], metrics["mcd_db"]
    assert np.isfinite(own) and own > 0 and own != cross
