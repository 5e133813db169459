"""BatchNorm re-estimation (v2s_models/training/batchnorm.py, GanMelSolver.recalibrate_batchnorm,
`train.bn_recalibrate`): issue 13 item 4's floor fix."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.toy.model import TRUSTED_PREFIX
from v2s_models import components
from v2s_models.config import load_config
from v2s_models.package import load_package, save_package
from v2s_models.settings import get_preset
from v2s_models.training import batchnorm
from v2s_models.training.batchnorm import (
    batchnorm_layers,
    recalibrate_package,
    reestimating_batchnorm,
    set_batchnorm_train,
)
from v2s_models.training.gan_mel import GanMelSolver
from v2s_models.training.loop import build_solver, fit

REPO = Path(__file__).resolve().parents[2]
REGNET_DEBUG = REPO / "experiments" / "configs" / "regnet" / "debug.yaml"
TOY = REPO / "tests" / "toy" / "toy.yaml"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _toy_bn_model() -> nn.Sequential:
    """Linear -> Dropout -> BatchNorm: the dropout must be off while the statistics are measured."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.BatchNorm1d(4))
    bn = model[2]
    bn.running_mean.fill_(5.0)  # stale statistics, as after a short run at a high learning rate
    bn.running_var.fill_(9.0)
    return model.eval()


def _reestimate(model: nn.Module, batches: list[torch.Tensor]) -> list[nn.Module]:
    with reestimating_batchnorm(model) as layers:
        model.eval()
        set_batchnorm_train(model)
        with torch.no_grad():
            for x in batches:
                model(x)
    return layers


def test_running_statistics_equal_the_data_statistics() -> None:
    model = _toy_bn_model()
    gen = torch.Generator().manual_seed(1)
    batches = [torch.randn(8, 3, generator=gen) * (i + 1) + i for i in range(5)]  # batches that differ
    layers = _reestimate(model, batches)
    bn = model[2]
    assert layers == [bn]
    with torch.no_grad():
        features = [model[0](x) for x in batches]  # (8, 4) each: the BatchNorm's input, no dropout
    data = torch.cat(features)
    # equal batches: the cumulative average of batch means is the data's mean
    assert torch.allclose(bn.running_mean, data.mean(0), atol=1e-5), (bn.running_mean, data.mean(0))
    mean_batch_var = torch.stack([f.var(0, unbiased=True) for f in features]).mean(0)
    assert torch.allclose(bn.running_var, mean_batch_var, atol=1e-4), (bn.running_var, mean_batch_var)
    # one batch: exactly the data's mean and unbiased variance
    model = _toy_bn_model()
    _reestimate(model, [torch.cat(batches)])
    assert torch.allclose(model[2].running_mean, data.mean(0), atol=1e-5)
    assert torch.allclose(model[2].running_var, data.var(0, unbiased=True), atol=1e-4)
    # the layer's momentum and mode come back; the model now normalises the data to zero mean
    assert bn.momentum == 0.1 and not bn.training and not model.training
    with torch.no_grad():
        assert model(torch.cat(batches)).mean(0).abs().max() < 1e-4


def test_a_model_without_batchnorm_is_left_unchanged() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.ReLU())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert batchnorm_layers(model) == []
    assert _reestimate(model, [torch.randn(8, 3)]) == []
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def _bn_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items() if "running_" in k}


def _regnet_cfg(**train: Any) -> dict[str, Any]:
    cfg = load_config(REGNET_DEBUG)
    cfg["epochs"] = 1
    cfg["train"] = {**cfg["train"], **train}
    return cfg


def test_solver_reestimates_over_the_train_split_deterministically(tiny_data_root: Path) -> None:
    cfg = _regnet_cfg()
    solver = build_solver(cfg, root=tiny_data_root)
    assert isinstance(solver, GanMelSolver)
    fit(solver, cfg, epochs=1)
    generator = solver.unwrapped("generator")
    trained = _bn_state(generator)
    weights = {k: v.clone() for k, v in generator.state_dict().items() if "running_" not in k}
    solver.train(True)
    report = solver.recalibrate_batchnorm()
    train_clips = len(solver.datasets()[0])
    assert report == {"layers": len(batchnorm_layers(generator)), "clips": train_clips, "split": "train"}
    assert report["layers"] > 0
    first = _bn_state(generator)
    assert any(not torch.allclose(first[k], trained[k]) for k in first if "num_batches" not in k), (
        "re-estimation changed no statistic"
    )
    for k, v in generator.state_dict().items():  # weights untouched
        if k in weights:
            assert torch.equal(v, weights[k]), k
    assert generator.training, "the generator's mode comes back"
    assert all(layer.momentum == 0.1 for layer in batchnorm_layers(generator))
    solver.recalibrate_batchnorm()  # a reset, not a running update: the same statistics again
    for k, v in _bn_state(generator).items():
        assert torch.allclose(v, first[k], atol=1e-6), k


def test_bn_recalibrate_option_leaves_recalibrated_statistics(tiny_data_root: Path) -> None:
    on = build_solver(_regnet_cfg(bn_recalibrate=True), root=tiny_data_root)
    fit(on, _regnet_cfg(bn_recalibrate=True), epochs=1)
    off = build_solver(_regnet_cfg(), root=tiny_data_root)
    fit(off, _regnet_cfg(), epochs=1)
    stats_on, stats_off = _bn_state(on.unwrapped("generator")), _bn_state(off.unwrapped("generator"))
    # the option changes no training step (batch statistics while training): the same weights
    for k, v in on.unwrapped("generator").state_dict().items():
        if "running_" not in k and "num_batches" not in k:
            assert torch.equal(v, off.unwrapped("generator").state_dict()[k]), k
    off.recalibrate_batchnorm()
    for k, v in _bn_state(off.unwrapped("generator")).items():
        if "num_batches" not in k:
            assert torch.allclose(stats_on[k], v, atol=1e-6), k
    assert any(not torch.allclose(stats_off[k], v) for k, v in stats_on.items() if "num_batches" not in k)
    with pytest.raises(ValueError, match="bn_recalibrate"):
        build_solver(_regnet_cfg(bn_recalibrate="yes"), root=tiny_data_root)


def _package(solver: GanMelSolver, cfg: dict[str, Any], out: Path) -> Path:
    return save_package(
        out,
        paradigm="gan_mel",
        config=cfg,
        data_settings=get_preset("regnet"),
        features={"visual_part": "all"},
        modules={n: solver.unwrapped(n) for n in solver.inference_modules()},
        extra={"run_name": "t"},
    )


def test_package_round_trip(tiny_data_root: Path, tmp_path: Path) -> None:
    cfg = _regnet_cfg()
    solver = build_solver(cfg, root=tiny_data_root)
    fit(solver, cfg, epochs=1)
    source = _package(solver, cfg, tmp_path / "trained")
    out = tmp_path / "recalibrated"
    assert batchnorm.main([str(source), "--root", str(tiny_data_root), "--out", str(out)]) == 0
    before, after = load_package(source), load_package(out)
    solver.recalibrate_batchnorm()  # the same re-estimation in the training process
    expected = solver.unwrapped("generator").state_dict()
    g_before, g_after = before.modules["generator"], after.modules["generator"]
    for k, v in g_after.state_dict().items():
        if "running_" in k:
            assert torch.allclose(v, expected[k], atol=1e-6), k
        elif "num_batches" not in k:
            assert torch.equal(v, g_before.state_dict()[k]), k
    assert after.config == before.config
    assert after.extra["run_name"] == "t"
    assert after.extra["bn_recalibrated"]["layers"] == len(batchnorm_layers(g_after)) > 0
    visual, noise = torch.randn(1, 215, 2560), torch.randn(1, g_before.noise_dim)
    with torch.no_grad():
        assert not torch.allclose(g_before.generate(visual, noise), g_after.generate(visual, noise))
    with pytest.raises(SystemExit):
        batchnorm.main([str(source), "--root", str(tiny_data_root), "--out", str(source)])


def test_package_without_batchnorm_is_copied_and_says_so(
    tiny_data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(components.TRUSTED_ENV, TRUSTED_PREFIX)
    cfg = load_config(TOY)
    solver = build_solver(cfg, root=tiny_data_root)
    assert isinstance(solver, GanMelSolver)
    source = _package(solver, cfg, tmp_path / "toy")
    with caplog.at_level(logging.WARNING):
        report = recalibrate_package(source, root=tiny_data_root, out=tmp_path / "toy_bn")
    assert report["layers"] == 0 and report["clips"] == 0
    assert "no BatchNorm layer" in caplog.text
    a, b = load_package(source), load_package(tmp_path / "toy_bn")
    for k, v in b.modules["generator"].state_dict().items():
        assert torch.equal(v, a.modules["generator"].state_dict()[k]), k
