"""Visual extractors (registry, shapes, determinism, packaged weights, TorchScript) and clip features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from v2s_models.media.visual import (
    EXTRACTORS,
    VisualExtractor,
    build_extractor,
    clip_visual_features,
    efficientnet_lite0_weights_path,
    load_efficientnet_lite0,
    motion_features,
)


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def random_frames(num_frames: int, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(num_frames, height, width, 3), dtype=np.uint8)


def moving_clip(num_frames: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """(T, size, size, 3) uint8: a smooth random scene panning 2 px a frame (so flow is non-trivial)."""
    import cv2

    rng = np.random.default_rng(seed)
    wide = cv2.GaussianBlur(
        rng.uniform(0, 255, (size, size + 2 * num_frames, 3)).astype(np.float32), (0, 0), 2
    )
    return np.stack([wide[:, 2 * t : 2 * t + size] for t in range(num_frames)]).astype(np.uint8)


class CountingExtractor(VisualExtractor):
    """Records how many images went through the network."""

    def __init__(self, inner: VisualExtractor) -> None:
        super().__init__(
            name=inner.name,
            module=inner.module,
            dim=inner.dim,
            image_size=inner.image_size,
            normalization=inner.normalization,
        )
        self.images_seen = 0

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        self.images_seen += frames.shape[0]
        return super().__call__(frames)


def test_random_projection_shapes_and_determinism() -> None:
    frames = random_frames(5)
    first = build_extractor("random_projection", image_size=64)
    second = build_extractor("random_projection", image_size=64)
    out = first(frames)
    assert out.shape == (5, first.dim) and out.dtype == np.float32, f"{out.shape=} {out.dtype=}"
    assert first.name == "random_projection" and first.dim == 128
    np.testing.assert_array_equal(out, second(frames))  # same seed, same features, fresh build
    assert np.isfinite(out).all() and out.std() > 0
    # Different images give different features; batching does not change results.
    assert not np.allclose(out[0], out[1])
    small_batches = build_extractor("random_projection", image_size=64, batch_size=2)
    np.testing.assert_allclose(small_batches(frames), out, rtol=1e-5, atol=1e-6)


def test_registry_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: .*efficientnet_lite0.*random_projection.*torchscript"):
        build_extractor("bn_inception")
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_extractor("torchscript", weights=str(missing))
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        build_extractor("efficientnet_lite0", weights=str(missing))
    with pytest.raises(ValueError, match="needs weights"):
        build_extractor("torchscript")
    extractor = build_extractor("random_projection", image_size=32)
    with pytest.raises(ValueError, match="uint8"):
        extractor(random_frames(2).astype(np.float32))
    assert sorted(EXTRACTORS) == ["efficientnet_lite0", "random_projection", "torchscript"]


def test_efficientnet_lite0_packaged_weights_load_strictly() -> None:
    path = efficientnet_lite0_weights_path()
    assert path.is_file(), f"packaged weights missing: {path}"
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = load_efficientnet_lite0(image_size=112)
    # strict=True raises on any missing or unexpected key; also compare the key sets explicitly.
    assert set(state) == set(net.state_dict()), "state dict keys differ from the architecture"
    net.load_state_dict(state, strict=True)
    torch.testing.assert_close(net.state_dict()["_conv_head.weight"], state["_conv_head.weight"])
    image = torch.from_numpy(random_frames(1, 112, 112)).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        logits = net((image - 127.0) / 128.0)
    assert logits.shape == (1, 1000), f"{logits.shape=}"
    assert torch.isfinite(logits).all()


def test_efficientnet_lite0_extractor_shapes_and_determinism() -> None:
    extractor = build_extractor("efficientnet_lite0", image_size=96, threads=1)
    assert extractor.dim == 1280 and extractor.normalization == "tf"
    frames = random_frames(3, 80, 120)
    out = extractor(frames)
    assert out.shape == (3, 1280) and out.dtype == np.float32, f"{out.shape=}"
    assert np.isfinite(out).all() and (out >= 0).all()  # pooled ReLU6 activations
    np.testing.assert_array_equal(out, extractor(frames))
    # The features are the classifier's input: pooling then _fc reproduces the network's logits.
    net = extractor.module.net
    with torch.inference_mode():
        batch = extractor.preprocess(frames)
        torch.testing.assert_close(net._fc(torch.from_numpy(out)), net(batch), rtol=1e-4, atol=1e-4)


def test_torchscript_extractor(tmp_path: Path) -> None:
    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 7, kernel_size=3, stride=2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).amax(dim=(2, 3))

    torch.manual_seed(0)
    tiny = Tiny().eval()
    path = tmp_path / "tiny.pt"
    with pytest.warns(DeprecationWarning):  # torch.jit is deprecated in torch 2.13 but still works
        torch.jit.script(tiny).save(str(path))
    extractor = build_extractor("torchscript", weights=str(path), image_size=40)
    assert extractor.dim == 7, "dim must be discovered by a dummy forward"
    frames = random_frames(4, 50, 40)
    out = extractor(frames)
    assert out.shape == (4, 7), f"{out.shape=}"
    with torch.inference_mode():
        expected = tiny(extractor.preprocess(frames)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)

    class NotFeatures(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    bad = tmp_path / "bad.pt"
    with pytest.warns(DeprecationWarning):
        torch.jit.script(NotFeatures()).save(str(bad))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        build_extractor("torchscript", weights=str(bad), image_size=16)


def test_preprocess_crops_the_centre_square() -> None:
    extractor = build_extractor("random_projection", image_size=32, normalization="none")
    frames = np.zeros((1, 32, 64, 3), dtype=np.uint8)
    frames[:, :, 16:48] = 255  # the centre square is white, the sides black
    batch = extractor.preprocess(frames)
    assert tuple(batch.shape) == (1, 3, 32, 32)
    assert float(batch.min()) == 1.0


def test_motion_features_see_motion() -> None:
    extractor = build_extractor("random_projection", image_size=32)
    still = np.zeros((1, 32, 32, 2), dtype=np.float32)
    moving = np.full((1, 32, 32, 2), 5.0, dtype=np.float32)
    out = motion_features(np.concatenate([still, moving]), extractor)
    assert out.shape == (2, extractor.dim)
    assert not np.allclose(out[0], out[1])


@pytest.mark.parametrize("flow_method", ["dis", "tvl1"])
def test_loop_index_matches_looped_frames_at_lower_cost(flow_method: str) -> None:
    decoded = moving_clip(6)
    # A 6-frame clip looped to 16 frames, as a short clip padded to 10 s: 0..5, 0..5, 0..3.
    loop_index = np.arange(16) % 6
    looped = decoded[loop_index]

    full = CountingExtractor(build_extractor("random_projection", image_size=48))
    expected = clip_visual_features(looped, extractor=full, flow_method=flow_method)
    cheap = CountingExtractor(build_extractor("random_projection", image_size=48))
    out = clip_visual_features(
        decoded, extractor=cheap, flow_method=flow_method, loop_index=loop_index, workers=2
    )

    assert out.shape == (16, 2 * cheap.dim) and out.dtype == np.float32, f"{out.shape=}"
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # Looped: 16 appearance images + 15 distinct index pairs' flows (the last pair is repeated).
    assert full.images_seen == 16 + 15
    # Decoded: 6 frames + 6 distinct pairs (0->1 ... 4->5 and the wrap-around 5->0).
    assert cheap.images_seen == 6 + 6
    # The wrap-around frame's motion (frame 5 -> frame 0) differs from ordinary motion: it is really computed.
    dim = cheap.dim
    assert not np.allclose(out[5, dim:], out[4, dim:])
    np.testing.assert_array_equal(out[15, dim:], out[14, dim:])  # the last frame repeats the previous motion


def test_clip_visual_features_without_loop_index() -> None:
    frames = moving_clip(4)
    extractor = build_extractor("random_projection", image_size=48)
    out = clip_visual_features(frames, extractor=extractor, flow_method="dis")
    assert out.shape == (4, 256), f"{out.shape=}"
    np.testing.assert_allclose(out[:, :128], extractor(frames), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="loop_index values"):
        clip_visual_features(frames, extractor=extractor, flow_method="dis", loop_index=np.array([0, 4]))
    with pytest.raises(ValueError, match="unknown flow method"):
        clip_visual_features(frames, extractor=extractor, flow_method="raft")  # type: ignore[arg-type]


def test_folded_batchnorm_matches_the_unfolded_network():
    import torch

    from v2s_models.media.visual import _efficientnet_features_module, fold_batchnorm, load_efficientnet_lite0

    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    reference = _efficientnet_features_module(load_efficientnet_lite0(image_size=64).eval())
    folded_net = fold_batchnorm(load_efficientnet_lite0(image_size=64).eval())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded_net.modules())
    folded = _efficientnet_features_module(folded_net)
    with torch.inference_mode():
        a, b = reference(x), folded(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(load_efficientnet_lite0(image_size=64).train())
