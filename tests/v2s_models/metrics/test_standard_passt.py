"""PaSST-S: hear21passt does not install here (it needs timm and torchaudio), so the front end is checked against
an independent numpy computation and a synthetic checkpoint with exactly the official key names and shapes
(read from hear21passt/models/passt.py: PaSST(img_size=(128, 998), patch_size=16, stride=10, embed_dim=768,
depth=12, num_heads=12, distilled=True, num_classes=527), PatchEmbed without norm) loads strictly and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from v2s_models.metrics.standard import passt
from v2s_models.metrics.standard.weights import load_strict, read_state_dict

# passt-s-f128-p16-s10-ap.476-swa.pt: every tensor, its shape; blocks.{0..11} each carry BLOCK_KEYS
TOP_KEYS: dict[str, tuple[int, ...]] = {
    "cls_token": (1, 1, 768),
    "dist_token": (1, 1, 768),
    "new_pos_embed": (1, 2, 768),
    "freq_new_pos_embed": (1, 768, 12, 1),
    "time_new_pos_embed": (1, 768, 1, 99),
    "patch_embed.proj.weight": (768, 1, 16, 16),
    "patch_embed.proj.bias": (768,),
    "norm.weight": (768,),
    "norm.bias": (768,),
    "head.0.weight": (768,),
    "head.0.bias": (768,),
    "head.1.weight": (527, 768),
    "head.1.bias": (527,),
    "head_dist.weight": (527, 768),
    "head_dist.bias": (527,),
}
BLOCK_KEYS: dict[str, tuple[int, ...]] = {
    "norm1.weight": (768,),
    "norm1.bias": (768,),
    "attn.qkv.weight": (2304, 768),
    "attn.qkv.bias": (2304,),
    "attn.proj.weight": (768, 768),
    "attn.proj.bias": (768,),
    "norm2.weight": (768,),
    "norm2.bias": (768,),
    "mlp.fc1.weight": (3072, 768),
    "mlp.fc1.bias": (3072,),
    "mlp.fc2.weight": (768, 3072),
    "mlp.fc2.bias": (768,),
}


def official_shapes() -> dict[str, tuple[int, ...]]:
    blocks = {f"blocks.{i}.{k}": s for i in range(12) for k, s in BLOCK_KEYS.items()}
    return {**TOP_KEYS, **blocks}


def _numpy_mel(wave: np.ndarray) -> np.ndarray:
    """The front end written out independently: pre-emphasis, reflect-padded frames, rfft, Kaldi mel loop."""
    x = wave[1:] - 0.97 * wave[:-1]
    padded = np.pad(x, (512, 512), mode="reflect")
    n_frames = 1 + (padded.size - 1024) // 320
    window = np.zeros(1024)
    window[112 : 112 + 800] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(800) / 799)  # symmetric Hann, centred
    frames = np.stack([padded[i * 320 : i * 320 + 1024] * window for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, 513)

    def mel(f: float) -> float:
        return 1127.0 * np.log(1.0 + f / 700.0)

    delta = (mel(15000.0) - mel(0.0)) / 129
    banks = np.zeros((128, 513))
    for m in range(128):
        left, centre, right = m * delta, (m + 1) * delta, (m + 2) * delta
        for k in range(512):
            f_mel = mel(k * 31.25)
            banks[m, k] = max(0.0, min((f_mel - left) / (centre - left), (right - f_mel) / (right - centre)))
    return (np.log(banks @ power.T + 1e-5) + 4.5) / 5.0  # (128, frames)


def test_front_end_equals_an_independent_numpy_computation() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(32000) / 32000
    wave = (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    ours = passt.MelFrontEnd()(torch.from_numpy(wave)[None])[0].numpy()
    ref = _numpy_mel(wave.astype(np.float64))
    assert ours.shape == ref.shape == (128, passt.n_frames(32000)), f"{ours.shape=} {ref.shape=}"
    np.testing.assert_allclose(ours, ref, atol=2e-4)  # float32 STFT of a 0.3-amplitude tone vs float64
    centres = [
        1127.0 * np.log(1 + 0 / 700) + (m + 1) * (1127.0 * np.log(1 + 15000 / 700)) / 129 for m in range(128)
    ]
    nearest = int(np.argmin(np.abs(np.array(centres) - 1127.0 * np.log(1 + 1000 / 700))))
    assert abs(int(ours[:, 20:-20].mean(axis=1).argmax()) - nearest) <= 1, (
        "a 1 kHz tone peaks in its mel band"
    )


def test_ten_seconds_give_1000_frames_and_99_time_patches() -> None:
    assert passt.n_frames(passt.PASST_SAMPLES) == 1000 and passt.n_time_patches(1000) == 99


def test_synthetic_official_checkpoint_loads_strictly_and_runs(tmp_path: Path) -> None:
    shapes = official_shapes()
    model = passt.passt_s()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
    gen = torch.Generator().manual_seed(0)
    path = tmp_path / "passt-s-f128-p16-s10-ap.476-swa.pt"
    torch.save({k: torch.randn(s, generator=gen) * 0.02 for k, s in shapes.items()}, path)
    state = read_state_dict(path)
    assert passt.dims_of(state) == passt.OFFICIAL_DIMS
    net = passt.PaSSTWithFrontEnd(load_strict(model, state, source=str(path))).eval()
    with torch.no_grad():
        features, logits = net(
            torch.randn(1, 32000 * 2) * 0.1
        )  # 2 s: the time embedding is cut to 19 patches
    assert features.shape == (1, 768) and logits.shape == (1, 527), f"{features.shape=} {logits.shape=}"
    assert torch.isfinite(logits).all()
    del state["head_dist.bias"]
    with pytest.raises(ValueError, match="head_dist.bias"):
        load_strict(passt.passt_s(), state, source="incomplete")
