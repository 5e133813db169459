"""VarietySound's discriminators and their presets: the time-domain alignment discriminator (TDAD;
negatives: the generated mel and a time-shifted real mel) and SyntaSpeech's multi-window mel discriminator.
Sizes and choices: `varietysound`'s docstring."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from v2s_models.settings import REGNET
from v2s_models.varietysound import _PAPER_UPSAMPLE_LAYERS, DEBUG_N_MELS, DEBUG_VIDEO_DIM, _build, _lookup
from v2s_models.varietysound_encoders import _check_mel, _check_video

# ----------------------------------------------------------------------------------------------------------
# Discriminators


def time_shift(
    mel: Tensor, *, min_shift: int, max_shift: int | None = None, generator: torch.Generator | None = None
) -> Tensor:
    """S[.]: rolls each clip (B, C, L) circularly in time by +-k frames, k uniform in [min_shift, max_shift].

    `max_shift` defaults to L - min_shift; every roll then moves each frame at least `min_shift` frames away
    (circular distance). E.g. min_shift=43 is half a second at 86 mel frames/s. Returns (B, C, L).
    """
    if mel.dim() != 3:
        raise ValueError(f"time_shift expects (B, C, L), got shape {tuple(mel.shape)}")
    b, _, length = mel.shape
    max_shift = length - min_shift if max_shift is None else max_shift
    if not 1 <= min_shift <= max_shift <= length - min_shift:
        raise ValueError(
            f"time_shift needs 1 <= min_shift <= max_shift <= L - min_shift, got {min_shift=}, {max_shift=}, "
            f"L={length}"
        )
    k = torch.randint(min_shift, max_shift + 1, (b,), generator=generator)
    sign = torch.randint(0, 2, (b,), generator=generator) * 2 - 1
    shift = (k * sign).to(mel.device)
    idx = torch.remainder(torch.arange(length, device=mel.device).unsqueeze(0) - shift.unsqueeze(1), length)
    return mel.gather(2, idx.unsqueeze(1).expand(-1, mel.shape[1], -1))  # out[t] = mel[t - shift]


class TimeDomainAlignmentDiscriminator(nn.Module):
    """TDAD D_t(m | v): mel (B, n_mels, 4T), video (B, T, video_dim) -> patch scores (B, L') in (0, 1)."""

    def __init__(
        self,
        *,
        video_dim: int = 2048,
        n_mels: int = 80,
        upsample_layers: int = 2,
        upsample_kernel: int = 4,
        upsample_channels: int = 1024,
        mel_channels: int = 512,
        mel_kernel: int = 3,
        conv_layers: int = 4,
        conv_kernel: int = 4,
        conv_channels: int = 512,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if upsample_kernel < 2 or upsample_kernel % 2 != 0:
            raise ValueError(
                f"upsample_kernel must be even (stride 2 doubles the length), got {upsample_kernel}"
            )
        if conv_layers < 1:
            raise ValueError(f"TDAD needs at least one convolution, got {conv_layers=}")
        self.video_dim = video_dim
        self.n_mels = n_mels
        self.upsample_factor = 2**upsample_layers
        self.leaky_slope = leaky_slope
        up: list[nn.Module] = []
        for i in range(upsample_layers):
            c_in = video_dim if i == 0 else upsample_channels
            up += [
                nn.ConvTranspose1d(
                    c_in, upsample_channels, upsample_kernel, stride=2, padding=(upsample_kernel - 2) // 2
                ),
                nn.LeakyReLU(leaky_slope),
            ]
        self.video_upsample = nn.Sequential(*up)
        self.mel_conv = nn.Conv1d(n_mels, mel_channels, mel_kernel, padding=mel_kernel // 2)
        video_channels = upsample_channels if upsample_layers > 0 else video_dim
        convs: list[nn.Module] = []
        c_in = video_channels + mel_channels
        for i in range(conv_layers):
            last = i == conv_layers - 1
            # Strided layers reduce time like a patch discriminator; the last one maps to one score per patch.
            convs.append(
                nn.Conv1d(c_in, 1 if last else conv_channels, conv_kernel, stride=1 if last else 2, padding=1)
            )
            if not last:
                convs += [nn.BatchNorm1d(conv_channels), nn.LeakyReLU(leaky_slope)]
            c_in = conv_channels
        self.convs = nn.Sequential(*convs)

    def forward(self, mel: Tensor, video: Tensor) -> Tensor:
        _check_video(video, self.video_dim)
        b, t = video.shape[0], video.shape[1]
        _check_mel(mel, self.n_mels, "mel", batch=b, length=t * self.upsample_factor)
        v = self.video_upsample(video.transpose(1, 2))  # (B, upsample_channels, 4T)
        m = F.leaky_relu(self.mel_conv(mel), self.leaky_slope)  # (B, mel_channels, 4T)
        out = self.convs(torch.cat([v, m], dim=1))  # (B, 1, L')
        if out.shape[2] < 1:
            raise ValueError(
                f"mel of {mel.shape[2]} frames is too short for this TDAD's strided convolutions"
            )
        return torch.sigmoid(out.squeeze(1))


class SingleWindowMelDiscriminator(nn.Module):
    """One sub-discriminator: mel window (B, n_mels, window) -> score (B, 1) (linear, for LSGAN)."""

    def __init__(
        self,
        *,
        window: int,
        n_mels: int = 80,
        channels: int = 128,
        kernel: int = 3,
        dropout: float = 0.25,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.window = window
        self.n_mels = n_mels
        layers: list[nn.Module] = []
        c_in = 1
        for i in range(3):
            layers.append(nn.Conv2d(c_in, channels, kernel, stride=2, padding=kernel // 2))
            if i > 0:  # no normalisation on the input layer (DCGAN convention)
                layers.append(nn.BatchNorm2d(channels))
            layers += [nn.LeakyReLU(leaky_slope), nn.Dropout2d(dropout)]
            c_in = channels
        self.convs = nn.Sequential(*layers)
        freq, time = n_mels, window
        for _ in range(3):
            freq, time = (
                (freq + 2 * (kernel // 2) - kernel) // 2 + 1,
                (time + 2 * (kernel // 2) - kernel) // 2 + 1,
            )
        self.head = nn.Linear(channels * freq * time, 1)

    def forward(self, window: Tensor) -> Tensor:
        assert window.shape[1:] == (self.n_mels, self.window), f"{window.shape=}"
        h = self.convs(window.unsqueeze(1))  # (B, channels, F', W')
        return self.head(h.flatten(1))


class MultiWindowMelDiscriminator(nn.Module):
    """D_m: mel (B, n_mels, L) -> list of scores (B, 1), one per window length (random start per clip)."""

    def __init__(
        self,
        *,
        n_mels: int = 80,
        windows: Sequence[int] = (32, 64, 128),
        channels: int = 128,
        kernel: int = 3,
        dropout: float = 0.25,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.windows = tuple(int(w) for w in windows)
        self.discriminators = nn.ModuleList(
            SingleWindowMelDiscriminator(
                window=w,
                n_mels=n_mels,
                channels=channels,
                kernel=kernel,
                dropout=dropout,
                leaky_slope=leaky_slope,
            )
            for w in self.windows
        )

    def sample_starts(
        self, batch: int, length: int, *, generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """Random window starts, one (batch,) tensor per window; reuse them to crop real and fake alike."""
        if length < max(self.windows):
            raise ValueError(
                f"mel of {length} frames is shorter than the longest window ({max(self.windows)})"
            )
        return [torch.randint(0, length - w + 1, (batch,), generator=generator) for w in self.windows]

    def forward(
        self, mel: Tensor, *, starts: Sequence[Tensor] | None = None, generator: torch.Generator | None = None
    ) -> list[Tensor]:
        _check_mel(mel, self.n_mels, "mel")
        b, _, length = mel.shape
        if starts is None:
            starts = self.sample_starts(b, length, generator=generator)
        elif len(starts) != len(self.windows):
            raise ValueError(f"need one start tensor per window ({len(self.windows)}), got {len(starts)}")
        scores = []
        for disc, w, start in zip(self.discriminators, self.windows, starts, strict=True):
            idx = start.to(mel.device).unsqueeze(1) + torch.arange(w, device=mel.device)  # (B, w)
            window = mel.gather(2, idx.unsqueeze(1).expand(-1, self.n_mels, -1))  # (B, n_mels, w)
            scores.append(disc(window))
        return scores


def tdad_paper(**overrides: Any) -> TimeDomainAlignmentDiscriminator:
    """Paper-size TDAD (Table 3: ConvT x2 k4 s2 1024; Conv1d x4 k4 512)."""
    base = dict(
        video_dim=2048,
        n_mels=REGNET.mel.n_mels,
        upsample_layers=_PAPER_UPSAMPLE_LAYERS,
        upsample_kernel=4,
        upsample_channels=1024,
        conv_layers=4,
        conv_kernel=4,
        conv_channels=512,
    )
    return _build(TimeDomainAlignmentDiscriminator, base, overrides)


def tdad_debug(**overrides: Any) -> TimeDomainAlignmentDiscriminator:
    base = dict(
        video_dim=DEBUG_VIDEO_DIM,
        n_mels=DEBUG_N_MELS,
        upsample_layers=2,
        upsample_channels=32,
        mel_channels=16,
        conv_layers=4,
        conv_channels=32,
    )
    return _build(TimeDomainAlignmentDiscriminator, base, overrides)


def mel_discriminator_paper(**overrides: Any) -> MultiWindowMelDiscriminator:
    """Multi-window mel discriminator, SyntaSpeech sizes: windows 32/64/128 frames, 128 channels."""
    base = dict(n_mels=REGNET.mel.n_mels, windows=(32, 64, 128), channels=128)
    return _build(MultiWindowMelDiscriminator, base, overrides)


def mel_discriminator_debug(**overrides: Any) -> MultiWindowMelDiscriminator:
    base = dict(n_mels=DEBUG_N_MELS, windows=(8, 16, 32), channels=8)
    return _build(MultiWindowMelDiscriminator, base, overrides)


_TDADS: dict[str, Callable[..., TimeDomainAlignmentDiscriminator]] = {
    "paper": tdad_paper,
    "debug": tdad_debug,
}
_MEL_DS: dict[str, Callable[..., MultiWindowMelDiscriminator]] = {
    "paper": mel_discriminator_paper,
    "debug": mel_discriminator_debug,
}


def build_tdad(preset: str = "paper", **overrides: Any) -> TimeDomainAlignmentDiscriminator:
    return _lookup(_TDADS, preset, "tdad_")(**overrides)


def build_mel_discriminator(preset: str = "paper", **overrides: Any) -> MultiWindowMelDiscriminator:
    return _lookup(_MEL_DS, preset, "mel_discriminator_")(**overrides)
