"""Cnn14 (16 kHz) equals panns_inference's Cnn14 (+ torchlibrosa) given the same random weights by key name."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from v2s_models.metrics.standard import panns
from v2s_models.metrics.standard.weights import load_strict, read_state_dict


def _reference_models_module() -> types.ModuleType:
    """panns_inference.models without panns_inference/__init__.py (which runs wget for a labels CSV)."""
    if "panns_inference.models" in sys.modules:
        return sys.modules["panns_inference.models"]
    spec = importlib.util.find_spec("torchlibrosa")
    assert spec is not None, "torchlibrosa is not installed"
    root = Path(sys.prefix).glob("lib/python*/site-packages/panns_inference")
    package_dir = next(iter(root), None)
    if package_dir is None:
        pytest.skip("panns_inference is not installed")
    package = types.ModuleType("panns_inference")
    package.__path__ = [str(package_dir)]
    sys.modules["panns_inference"] = package
    module_spec = importlib.util.spec_from_file_location("panns_inference.models", package_dir / "models.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["panns_inference.models"] = module
    module_spec.loader.exec_module(module)
    return module


def _randomise(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random values for every learned tensor (BN statistics included), keeping the frozen front end."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in model.state_dict().items():
        if "extractor" in name or name.endswith("num_batches_tracked"):
            state[name] = value.clone()
        elif name.endswith("running_var"):
            state[name] = 0.5 + torch.rand(value.shape, generator=gen)
        else:
            fan_in = value[0].numel() if value.ndim > 1 else 1
            state[name] = torch.randn(value.shape, generator=gen) / np.sqrt(fan_in)
    return state


@pytest.fixture(scope="module")
def reference() -> torch.nn.Module:
    """panns_inference's Cnn14 in av-benchmark's 16 kHz configuration (built once: 80 M parameters)."""
    return (
        _reference_models_module()
        .Cnn14(
            sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50, fmax=8000, classes_num=527
        )
        .eval()
    )


def test_cnn14_equals_panns_inference_with_the_same_random_weights(reference: torch.nn.Module) -> None:
    ours = panns.cnn14_16k()
    assert set(ours.state_dict()) == set(reference.state_dict()), "key names differ from the checkpoint's"
    state = _randomise(reference, seed=0)
    reference.load_state_dict(state)
    load_strict(ours, state, source="reference state")
    wave = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 16000 * 2)).astype(np.float32) * 0.1)
    with torch.no_grad():
        ref = reference(wave)
        emb, logits = ours(wave)
        ref_logits = reference.fc_audioset(ref["embedding"])
    assert emb.shape == (2, 2048) and logits.shape == (2, 527), f"{emb.shape=} {logits.shape=}"
    torch.testing.assert_close(emb, ref["embedding"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.sigmoid(logits), ref["clipwise_output"], rtol=1e-5, atol=1e-6)


def test_front_end_tensors_equal_torchlibrosa(reference: torch.nn.Module) -> None:
    ours = panns.cnn14_16k_standin().state_dict()
    for name, value in reference.state_dict().items():
        if "extractor" in name:
            torch.testing.assert_close(ours[name], value, rtol=0, atol=1e-6, msg=f"{name} differs")


def test_checkpoint_loads_strictly_from_a_file(tmp_path: Path) -> None:
    model = panns.cnn14_16k_standin()
    path = tmp_path / "cnn14.pth"
    torch.save({"model": model.state_dict(), "iteration": 7}, path)
    state = read_state_dict(path)
    assert panns.channels_of(state) == panns.STANDIN_CHANNELS
    load_strict(panns.Cnn14(channels=panns.channels_of(state)), state, source=str(path))
    bad = dict(state)
    bad["fc1.weight"] = bad["fc1.weight"][:, :3]
    with pytest.raises(ValueError, match="fc1.weight"):
        load_strict(panns.cnn14_16k_standin(), bad, source="bad")
    extra = {**state, "head.weight": torch.zeros(2)}
    with pytest.raises(ValueError, match="head.weight"):
        load_strict(panns.cnn14_16k_standin(), extra, source="extra")
