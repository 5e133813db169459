"""HiFi-GAN (Kong et al., 2020): the generator V1/V2/V3 and its presets. The discriminators are in
`hifigan_discriminators.py`, the losses in `hifigan_losses.py`, the released weights, checkpoint files and the
inference wrapper in `hifigan_io.py`.

Sizes follow ../shared/PAPERS.md ("Vocoder: HiFi-GAN") and the authors' released configurations, read for facts:

    |                  | V1                  | V2        | V3                                   |
    | upsample rates   | 8, 8, 2, 2          | same      | 8, 8, 4                              |
    | upsample kernels | 16, 16, 4, 4        | same      | 16, 16, 8                            |
    | initial channels | 512                 | 128       | 256                                  |
    | resblock         | type 1, k 3, 7, 11, | type 1    | type 2, k 3, 5, 7,                   |
    |                  | dilations (1, 3, 5) |           | dilations (1, 2), (2, 6), (3, 12)    |
    | parameters       | 13.93 M             | 0.93 M    | 1.46 M                               |

Choices where the sources differ, and why:
- V3 dilations: the helper brief says "(1, 3)" (the type-2 block's default argument in the authors' code), but
  the released ``config_v3.json`` passes ``[[1, 2], [2, 6], [3, 12]]`` per kernel; we follow the released
  configuration because that is what was trained and measured. Parameter counts do not depend on dilations.
- Parameter counts: the published numbers count the generator with weight norm removed (one ``weight`` per
  convolution): 13,926,017 / 925,985 / 1,462,273 here, which PAPERS.md rounds to 13.93 / 0.93 / 1.46 M and the
  paper's Table 1 truncates to 13.92 / 0.92 / 1.46 M. With weight norm attached every convolution carries an extra
  ``g`` of out_channels values (13,936,130 / 928,514 / 1,464,322), which fits neither source for V1.
- The last activation before ``conv_post`` uses slope 0.01 (PyTorch's default), not 0.1: the authors' code and
  therefore the released pretrained weights use it; every other leaky ReLU uses 0.1.
- Weight norm uses ``torch.nn.utils.parametrizations.weight_norm`` (the old ``weight_norm`` is deprecated); the
  released state dicts (``weight_g``/``weight_v``) are mapped to ``parametrizations.weight.original0/1`` on load.
  Module names (``conv_pre``, ``ups``, ``resblocks``, ``convs1``/``convs2``/``convs``, ``conv_post``) match the
  release, so nothing else needs renaming.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

LRELU_SLOPE = 0.1


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    # "same" length for odd kernels with dilation.
    return (kernel_size * dilation - dilation) // 2


def _init_normal(module: nn.Module, std: float = 0.01) -> nn.Module:
    # The authors initialise generator convolutions N(0, 0.01) before weight norm is attached.
    nn.init.normal_(module.weight, 0.0, std)
    return module


def _has_weight_norm(module: nn.Module) -> bool:
    return parametrize.is_parametrized(module, "weight")


# ---------------------------------------------------------------------------------------------------------------
# Generator


class ResBlock1(nn.Module):
    """Type-1 multi-receptive-field block: per dilation d, x + conv_1(lrelu(conv_d(lrelu(x)))). (B, C, L) -> same."""

    def __init__(self, *, channels: int, kernel_size: int, dilations: Sequence[int] = (1, 3, 5)) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(
            weight_norm(
                _init_normal(
                    nn.Conv1d(
                        channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d)
                    )
                )
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(
                _init_normal(nn.Conv1d(channels, channels, kernel_size, padding=same_padding(kernel_size)))
            )
            for _ in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2 in zip(self.convs1, self.convs2, strict=True):
            y = conv1(F.leaky_relu(x, LRELU_SLOPE))
            x = x + conv2(F.leaky_relu(y, LRELU_SLOPE))
        return x


class ResBlock2(nn.Module):
    """Type-2 (smaller) block: per dilation d, x + conv_d(lrelu(x)). (B, C, L) -> same."""

    def __init__(self, *, channels: int, kernel_size: int, dilations: Sequence[int] = (1, 3)) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            weight_norm(
                _init_normal(
                    nn.Conv1d(
                        channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d)
                    )
                )
            )
            for d in dilations
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = x + conv(F.leaky_relu(x, LRELU_SLOPE))
        return x


class HifiganGenerator(nn.Module):
    """HiFi-GAN generator: log mel (B, n_mels, T) -> waveform (B, 1, T * prod(upsample_rates)) in [-1, 1].

    conv_pre (k7) -> per stage [lrelu 0.1, transposed conv (stride u, kernel k, channels halved), mean of the
    multi-receptive-field blocks] -> lrelu 0.01 -> conv_post (k7) -> tanh.
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock_type: Literal[1, 2] = 1,
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilations: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    ) -> None:
        super().__init__()
        if len(upsample_rates) != len(upsample_kernel_sizes):
            raise ValueError(
                f"upsample_rates {tuple(upsample_rates)} and upsample_kernel_sizes "
                f"{tuple(upsample_kernel_sizes)} must have the same length"
            )
        if len(resblock_kernel_sizes) != len(resblock_dilations):
            raise ValueError(
                f"resblock_kernel_sizes {tuple(resblock_kernel_sizes)} needs one dilation tuple per kernel, "
                f"got {len(resblock_dilations)}"
            )
        if resblock_type not in (1, 2):
            raise ValueError(f"resblock_type must be 1 or 2, got {resblock_type!r}")
        if upsample_initial_channel % (2 ** len(upsample_rates)) != 0:
            raise ValueError(
                f"upsample_initial_channel {upsample_initial_channel} must be divisible by "
                f"2 ** {len(upsample_rates)} (channels halve at every upsampling stage)"
            )
        self.hparams: dict[str, Any] = {
            "n_mels": n_mels,
            "upsample_rates": [int(u) for u in upsample_rates],
            "upsample_kernel_sizes": [int(k) for k in upsample_kernel_sizes],
            "upsample_initial_channel": int(upsample_initial_channel),
            "resblock_type": int(resblock_type),
            "resblock_kernel_sizes": [int(k) for k in resblock_kernel_sizes],
            "resblock_dilations": [[int(d) for d in ds] for ds in resblock_dilations],
        }
        self.n_mels = n_mels
        self.hop_length = math.prod(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)

        self.conv_pre = weight_norm(nn.Conv1d(n_mels, upsample_initial_channel, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        block = ResBlock1 if resblock_type == 1 else ResBlock2
        channels = upsample_initial_channel
        for rate, kernel in zip(upsample_rates, upsample_kernel_sizes, strict=True):
            if kernel < rate or (kernel - rate) % 2 != 0:
                raise ValueError(
                    f"upsample kernel {kernel} with rate {rate}: need kernel >= rate and kernel - rate even "
                    "so that each stage multiplies the length exactly by its rate"
                )
            self.ups.append(
                weight_norm(
                    _init_normal(
                        nn.ConvTranspose1d(
                            channels, channels // 2, kernel, stride=rate, padding=(kernel - rate) // 2
                        )
                    )
                )
            )
            channels //= 2
            for k, ds in zip(resblock_kernel_sizes, resblock_dilations, strict=True):
                self.resblocks.append(block(channels=channels, kernel_size=k, dilations=ds))
        self.conv_post = weight_norm(_init_normal(nn.Conv1d(channels, 1, 7, padding=3)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (B, n_mels, T) -> waveform (B, 1, T * hop_length)."""
        assert mel.ndim == 3 and mel.shape[1] == self.n_mels, f"{mel.shape=}, expected (B, {self.n_mels}, T)"
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            acc = blocks[0](x)
            for blk in blocks[1:]:
                acc = acc + blk(x)
            x = acc / self.num_kernels
        # slope 0.01 here, as in the released weights (see the module docstring)
        x = torch.tanh(self.conv_post(F.leaky_relu(x)))
        assert x.shape[-1] == mel.shape[-1] * self.hop_length, f"{x.shape=} {mel.shape=}"
        return x

    def remove_weight_norm(self) -> HifiganGenerator:
        """Folds weight norm into plain weights (for inference; identical outputs, fewer ops). Returns self."""
        for module in self.modules():
            if _has_weight_norm(module):
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        return self

    def to_channels_last_inference(self) -> HifiganGenerator:
        """Replaces every convolution by a channels-last 2-D equivalent (weight norm removed first). Same outputs,
        2-3x faster on a CPU for V2/V3; inference only (no gradients, the state dict changes). Returns self."""
        self.remove_weight_norm().eval()
        for module in list(self.modules()):
            for child_name, child in list(module.named_children()):
                if isinstance(child, nn.Conv1d | nn.ConvTranspose1d):
                    squeeze = module is self and child_name == "conv_post"
                    setattr(module, child_name, _ChannelsLastConv(child, squeeze_output=squeeze))
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    @property
    def has_weight_norm(self) -> bool:
        return any(_has_weight_norm(m) for m in self.modules())


class _ChannelsLastConv(nn.Module):
    """Inference-only stand-in for a Conv1d / ConvTranspose1d: the same operation as a 2-D convolution over
    (B, C, 1, L) in channels-last memory format. oneDNN's 1-D path is several times slower for narrow layers
    (8-64 channels: HiFi-GAN's late stages); measured 3x on the whole V2 generator on this project's CPUs."""

    def __init__(self, conv: nn.Conv1d | nn.ConvTranspose1d, *, squeeze_output: bool = False) -> None:
        super().__init__()
        if _has_weight_norm(conv):
            raise ValueError("remove weight norm before converting to channels-last inference")
        self.transposed = isinstance(conv, nn.ConvTranspose1d)
        if self.transposed and conv.output_padding[0] != 0:
            raise ValueError("output_padding is not supported by the channels-last stand-in")
        weight = conv.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last)
        self.register_buffer("weight", weight)
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        self.stride, self.padding, self.dilation = (
            (1, conv.stride[0]),
            (0, conv.padding[0]),
            (1, conv.dilation[0]),
        )
        self.groups = conv.groups
        self.squeeze_output = squeeze_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:  # (B, C, L) -> (B, C, 1, L) channels-last
            x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        if self.transposed:
            y = F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, groups=self.groups)
        else:
            y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return y[:, :, 0] if self.squeeze_output else y


def count_parameters(module: nn.Module, *, without_weight_norm: bool = True) -> int:
    """Number of parameters; with ``without_weight_norm`` counted as after ``remove_weight_norm`` (how the paper
    counts: one weight tensor per convolution, no separate magnitude ``g``)."""
    total = 0
    for name, p in module.named_parameters():
        # weight norm's magnitude g (original0) is folded away by remove_weight_norm
        if without_weight_norm and name.endswith("parametrizations.weight.original0"):
            continue
        total += p.numel()
    return total


# ---------------------------------------------------------------------------------------------------------------
# Presets


def hifigan_v1(**overrides: Any) -> HifiganGenerator:
    """HiFi-GAN V1 (13.93 M parameters): the quality setting; the released pretrained weights are V1."""
    preset: dict[str, Any] = dict(
        upsample_rates=(8, 8, 2, 2),
        upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=512,
        resblock_type=1,
        resblock_kernel_sizes=(3, 7, 11),
        resblock_dilations=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    )
    return HifiganGenerator(**{**preset, **overrides})


def hifigan_v2(**overrides: Any) -> HifiganGenerator:
    """HiFi-GAN V2 (0.93 M parameters): V1 with 128 initial channels, the small CPU-friendly setting."""
    preset: dict[str, Any] = dict(
        upsample_rates=(8, 8, 2, 2),
        upsample_kernel_sizes=(16, 16, 4, 4),
        upsample_initial_channel=128,
        resblock_type=1,
        resblock_kernel_sizes=(3, 7, 11),
        resblock_dilations=((1, 3, 5), (1, 3, 5), (1, 3, 5)),
    )
    return HifiganGenerator(**{**preset, **overrides})


def hifigan_v3(**overrides: Any) -> HifiganGenerator:
    """HiFi-GAN V3 (1.46 M parameters): three upsampling stages and the lighter type-2 blocks."""
    preset: dict[str, Any] = dict(
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=256,
        resblock_type=2,
        resblock_kernel_sizes=(3, 5, 7),
        resblock_dilations=((1, 2), (2, 6), (3, 12)),
    )
    return HifiganGenerator(**{**preset, **overrides})


def hifigan_debug(**overrides: Any) -> HifiganGenerator:
    """A tiny generator (hop 256) that runs in milliseconds on a CPU, for tests."""
    preset: dict[str, Any] = dict(
        upsample_rates=(8, 8, 4),
        upsample_kernel_sizes=(16, 16, 8),
        upsample_initial_channel=32,
        resblock_type=2,
        resblock_kernel_sizes=(3, 5),
        resblock_dilations=((1, 2), (2, 6)),
    )
    return HifiganGenerator(**{**preset, **overrides})
