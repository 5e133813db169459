"""HiFi-GAN's discriminators (Kong et al., 2020): multi-period and multi-scale, and their presets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from v2s_models.vocoders.hifigan import LRELU_SLOPE, same_padding

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
        pad = (same_padding(kernel_size), 0)
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
            norm(nn.Conv1d(ch(i), ch(o), k, stride=s, groups=g, padding=same_padding(k)))
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
