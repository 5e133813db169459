"""Tests for the correlation solver (v2s_models/training/contrastive.py) and the data-set filter
(v2s_models/correlation_filter.py) on the prepared tiny data.

The data: the tiny built-in set, prepared once per test session by tests/conftest.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from v2s_models.config import load_config
from v2s_models.correlation_filter import load_tower, main, score_manifest, write_subsets
from v2s_models.data import read_manifest
from v2s_models.training.contrastive import CorrelationSolver, roc_auc
from v2s_models.training.loop import build_solver, fit, seed_everything

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs"
TOWER_DEBUG = CONFIGS / "correlation" / "tower_debug.yaml"
SEQ2SEQ_DEBUG = CONFIGS / "correlation" / "seq2seq_debug.yaml"
MANIFEST = Path("data/prepared/manifest.jsonl")


@pytest.fixture(scope="module")
def data_root(tiny_data_root: Path) -> Path:
    """The prepared tiny data set (tests/conftest.py builds it once per session)."""
    return tiny_data_root


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _solver(cfg: dict[str, Any], root: Path, seed: int | None = None) -> CorrelationSolver:
    seed_everything(int(cfg["seed"]) if seed is None else seed)
    solver = build_solver(cfg, root=root)
    assert isinstance(solver, CorrelationSolver)
    return solver


@pytest.fixture(scope="module")
def trained(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[CorrelationSolver, Path, dict]:
    """The debug tower after its config's 2 epochs, with its checkpoint folder."""
    torch.set_num_threads(1)
    cfg = load_config(TOWER_DEBUG)
    solver = _solver(cfg, data_root)
    ckpt = tmp_path_factory.mktemp("tower") / "ckpt"
    metrics = fit(solver, cfg, checkpoint_dir=ckpt)
    return solver, ckpt, metrics


# ---------------------------------------------------------------------------------------------------- tests


def test_debug_config_trains_and_reports_accuracy_and_auc(
    trained: tuple[CorrelationSolver, Path, dict],
) -> None:
    _, _, metrics = trained
    assert metrics["epoch"] == 2
    assert math.isfinite(metrics["train/bce"]) and 0.0 <= metrics["train/acc"] <= 1.0
    # No val split in the tiny data: validation used the test split and its names say so.
    for key in ("bce", "acc", "auc", "auc_other_clip", "auc_time_shift", "pos_score", "neg_score"):
        value = metrics[f"val/test_split/{key}"]
        assert math.isfinite(value), (key, metrics)
        if key != "bce":
            assert 0.0 <= value <= 1.0, (key, value)


def test_validation_pairs_are_the_same_every_call(trained: tuple[CorrelationSolver, Path, dict]) -> None:
    solver, _, _ = trained
    _, val = solver.datasets()
    loader = torch.utils.data.DataLoader(val, batch_size=4, collate_fn=solver.collate_fn())
    assert solver.validate(loader) == solver.validate(loader)


def test_roc_auc_matches_the_pairwise_definition() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 6, (40,), generator=g).float()  # many ties
    labels = torch.randint(0, 2, (40,), generator=g)
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    expected = ((diff > 0).float() + 0.5 * (diff == 0).float()).mean().item()
    assert roc_auc(scores, labels) == pytest.approx(expected)
    assert roc_auc(torch.tensor([0.1, 0.2, 0.8, 0.9]), torch.tensor([0, 0, 1, 1])) == 1.0
    assert roc_auc(torch.tensor([0.9, 0.8, 0.2, 0.1]), torch.tensor([0, 0, 1, 1])) == 0.0
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))


def test_time_shift_negatives_can_be_switched_off(data_root: Path) -> None:
    cfg = load_config(TOWER_DEBUG, {"train": {"time_shift_negatives": False}})
    solver = _solver(cfg, data_root)
    train, val = solver.datasets()
    batch = solver.collate_fn()([train[i] for i in range(4)])
    _, _, labels = solver._pairs(batch, None)
    assert labels.tolist() == [1.0] * 4 + [0.0] * 4  # matched, then other-clip only
    metrics = solver.validate(torch.utils.data.DataLoader(val, batch_size=4, collate_fn=solver.collate_fn()))
    assert "test_split/auc_other_clip" in metrics and "test_split/auc_time_shift" not in metrics
    assert metrics["test_split/auc"] == metrics["test_split/auc_other_clip"]
    with pytest.raises(ValueError, match="time_shift_negatives"):
        _solver(load_config(TOWER_DEBUG, {"train": {"time_shift_negatives": "no"}}), data_root)


def _epoch_losses(cfg: dict[str, Any], root: Path) -> list[float]:
    solver = _solver(cfg, root)
    losses: list[float] = []
    original = solver.train_step

    def record(batch: Any) -> dict[str, float]:
        out = original(batch)
        losses.append(out["bce"])
        return out

    solver.train_step = record  # type: ignore[method-assign]
    fit(solver, cfg, epochs=1)
    return losses


def test_same_seed_same_first_epoch_losses(data_root: Path) -> None:
    cfg = load_config(TOWER_DEBUG, {"data.val_split": None})
    a, b = _epoch_losses(cfg, data_root), _epoch_losses(cfg, data_root)
    assert len(a) == 2 and a == b, (a, b)
    assert _epoch_losses({**cfg, "seed": 1}, data_root) != a


def test_resume_equals_uninterrupted_training(data_root: Path, tmp_path: Path) -> None:
    cfg = load_config(TOWER_DEBUG)
    straight = _solver(cfg, data_root)
    m_straight = fit(straight, cfg, checkpoint_dir=tmp_path / "a", epochs=2)
    fit(_solver(cfg, data_root), cfg, checkpoint_dir=tmp_path / "b", epochs=1)
    resumed = _solver(cfg, data_root, seed=123)  # other initial weights: the checkpoint must replace them
    m_resumed = fit(resumed, cfg, checkpoint_dir=tmp_path / "b", epochs=2)
    assert m_resumed == m_straight
    for k, v in straight.state_dict()["modules"]["tower"].items():
        assert torch.equal(v, resumed.state_dict()["modules"]["tower"][k]), k


def test_filter_writes_ordered_high_and_low_subsets(
    trained: tuple[CorrelationSolver, Path, dict], data_root: Path, tmp_path: Path
) -> None:
    solver, _, _ = trained
    tower = solver.unwrapped("tower")
    scores = score_manifest(tower, MANIFEST, data_root)
    rows = read_manifest(MANIFEST, root=data_root)
    assert set(scores) == {r["clip_id"] for r in rows}
    assert all(0.0 < s < 1.0 for s in scores.values())
    assert len(set(scores.values())) > 1, "a trained tower should not give every clip the same score"

    summary = write_subsets(MANIFEST, scores, tmp_path, high_quantile=0.75, low_quantile=0.25, root=data_root)
    high = [json.loads(line) for line in (tmp_path / "high.jsonl").read_text().splitlines()]
    low = [json.loads(line) for line in (tmp_path / "low.jsonl").read_text().splitlines()]
    assert 1 <= len(high) <= 5 and 1 <= len(low) <= 5, (len(high), len(low))  # a quarter of 16, ties aside
    assert min(r["correlation"] for r in high) > max(r["correlation"] for r in low)
    assert min(r["correlation"] for r in high) >= summary["high_threshold"] >= summary["low_threshold"]
    by_id = {r["clip_id"]: r for r in rows}
    for r in high + low:  # the manifest's rows, unchanged, plus the score
        assert {k: v for k, v in r.items() if k != "correlation"} == by_id[r["clip_id"]]
        assert r["correlation"] == pytest.approx(scores[r["clip_id"]])
    # The subsets are manifests the data sets read.
    assert len(read_manifest(tmp_path / "high.jsonl", root=data_root)) == len(high)

    # Filtering the training split only keeps every test clip in both subsets.
    write_subsets(
        MANIFEST,
        scores,
        tmp_path / "train_only",
        high_quantile=0.5,
        low_quantile=0.5,
        root=data_root,
        splits=["train"],
    )
    for name in ("high", "low"):
        subset = read_manifest(tmp_path / "train_only" / f"{name}.jsonl", root=data_root)
        assert sum(r["split"] == "test" for r in subset) == sum(r["split"] == "test" for r in rows)
        assert 1 <= sum(r["split"] == "train" for r in subset) < sum(r["split"] == "train" for r in rows)

    with pytest.raises(ValueError, match="high_quantile"):
        write_subsets(MANIFEST, scores, tmp_path, high_quantile=1.5, low_quantile=0.2, root=data_root)


def test_filter_entry_point_reads_a_checkpoint_and_its_config(
    trained: tuple[CorrelationSolver, Path, dict],
    data_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    solver, ckpt, _ = trained
    args = ["--checkpoint", str(ckpt), "--config", str(TOWER_DEBUG), "--manifest", str(MANIFEST)]
    assert main([*args, "--root", str(data_root), "--out", str(tmp_path), "--high-quantile", "0.5"]) == 0
    assert json.loads(capsys.readouterr().out)["scored"] == 16
    expected = score_manifest(solver.unwrapped("tower"), MANIFEST, data_root)
    written = {
        r["clip_id"]: r["correlation"]
        for name in ("high.jsonl", "low.jsonl")
        for r in map(json.loads, (tmp_path / name).read_text().splitlines())
    }
    assert written.keys() == expected.keys()  # quantile 0.5 for both: every clip is in one subset or both
    assert all(written[k] == pytest.approx(v, abs=1e-6) for k, v in expected.items())
    with pytest.raises(ValueError, match="--config"):
        load_tower(ckpt)


def test_seq2seq_trains_on_the_high_correlation_subset(
    trained: tuple[CorrelationSolver, Path, dict], data_root: Path, tmp_path: Path
) -> None:
    solver, _, _ = trained
    scores = score_manifest(solver.unwrapped("tower"), MANIFEST, data_root)
    write_subsets(MANIFEST, scores, tmp_path, high_quantile=0.5, low_quantile=0.5, root=data_root)
    cfg = load_config(SEQ2SEQ_DEBUG, {"data.manifest": str(tmp_path / "high.jsonl"), "data.val_split": None})
    seq2seq = build_solver(cfg, root=data_root)
    train, _ = seq2seq.datasets()
    high_train = {r["clip_id"] for r in read_manifest(tmp_path / "high.jsonl", split="train", root=data_root)}
    assert 1 <= len(train.rows) and {r["clip_id"] for r in train.rows} <= high_train
    metrics = fit(seq2seq, cfg, epochs=1, max_steps_per_epoch=1)
    assert math.isfinite(metrics["train/nll"])


@pytest.mark.parametrize("name", ["tower_paper.yaml", "tower_demo.yaml"])
def test_shipped_tower_configs_build_their_solver(name: str) -> None:
    cfg = load_config(CONFIGS / "correlation" / name)
    tower = build_solver(cfg).unwrapped("tower")
    assert (tower.video_dim, tower.audio_dim) == (1280, 128)
