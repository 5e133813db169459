"""VarietySound's encoders: temporal (video), acoustic (timbre of a reference mel, with random resampling)
and background (energy-masked mel). Sizes and the sources' disagreements: `varietysound`'s docstring."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from v2s_models.modules.sgau import ResampleSpec, SelfGatedAcousticUnit

TIMBRE_POOLINGS = ("last", "mean", "max")
"""How the acoustic encoder turns its BiLSTM's outputs into one timbre vector: 'last' (the paper's final
hidden states), or the mean / max of the outputs over time."""
REFERENCE_WINDOW_LEAD = 4
"""Frames of a cropped reference before its loudest frame (`AcousticEncoder(reference_window=...)`)."""

# ----------------------------------------------------------------------------------------------------------
# Input checks (ValueError naming the input and the problem)


def _check_video(video: Tensor, video_dim: int) -> None:
    if video.dim() != 3:
        raise ValueError(f"video must be (B, T, {video_dim}), got shape {tuple(video.shape)}")
    if video.shape[2] != video_dim:
        raise ValueError(f"video must have {video_dim} features per frame, got shape {tuple(video.shape)}")
    if video.shape[1] < 1:
        raise ValueError(f"video has no frames: shape {tuple(video.shape)}")


def _check_mel(
    mel: Tensor, n_mels: int, name: str, *, batch: int | None = None, length: int | None = None
) -> None:
    if mel.dim() != 3:
        raise ValueError(f"{name} must be (B, {n_mels}, L), got shape {tuple(mel.shape)}")
    if mel.shape[1] != n_mels:
        raise ValueError(f"{name} must have {n_mels} mel bins on dim 1, got shape {tuple(mel.shape)}")
    if mel.shape[2] < 1:
        raise ValueError(f"{name} has no frames: shape {tuple(mel.shape)}")
    if batch is not None and mel.shape[0] != batch:
        raise ValueError(f"{name} has batch {mel.shape[0]}, expected {batch} (the video's batch)")
    if length is not None and mel.shape[2] != length:
        raise ValueError(f"{name} must have {length} frames, got shape {tuple(mel.shape)}")


def _last_hidden(lstm: nn.LSTM, x: Tensor) -> Tensor:
    """Final hidden states of the last layer of a bidirectional batch-first LSTM: x (B, L, C) -> (B, 2H)."""
    _, (h_n, _) = lstm(x)  # h_n (layers * 2, B, H); the last two rows are the top layer's directions
    return torch.cat([h_n[-2], h_n[-1]], dim=-1)


def loudest_window(mel: Tensor, frames: int, lead: int = REFERENCE_WINDOW_LEAD) -> Tensor:
    """Each sample's `frames` consecutive frames from `lead` frames before its loudest frame (mean over the mel
    bins), moved to stay inside the clip: mel (B, n_mels, L) -> (B, n_mels, min(frames, L))."""
    length = mel.shape[2]
    if length <= frames:
        return mel
    peak = mel.mean(dim=1).argmax(dim=1)  # (B,)
    start = (peak - lead).clamp(0, length - frames)
    index = start[:, None] + torch.arange(frames, device=mel.device)  # (B, frames)
    return mel.gather(2, index[:, None, :].expand(-1, mel.shape[1], -1))


# ----------------------------------------------------------------------------------------------------------
# Encoders


class TemporalEncoder(nn.Module):
    """E_T: video features (B, T, video_dim) -> temporal features (B, T, bottleneck_dim)."""

    def __init__(
        self,
        *,
        video_dim: int = 2048,
        conv_layers: int = 8,
        conv_kernel: int = 5,
        conv_channels: int = 512,
        lstm_layers: int = 2,
        lstm_hidden: int = 256,
        bottleneck_dim: int = 8,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if conv_kernel % 2 != 1:
            raise ValueError(
                f"temporal encoder conv_kernel must be odd to keep the length, got {conv_kernel}"
            )
        if bottleneck_dim < 1:
            raise ValueError(f"bottleneck_dim must be >= 1, got {bottleneck_dim}")
        self.video_dim = video_dim
        self.bottleneck_dim = bottleneck_dim
        layers: list[nn.Module] = []
        for i in range(conv_layers):
            layers += [
                nn.Conv1d(
                    video_dim if i == 0 else conv_channels,
                    conv_channels,
                    conv_kernel,
                    padding=conv_kernel // 2,
                ),
                nn.BatchNorm1d(conv_channels),
                nn.LeakyReLU(leaky_slope),
            ]
        self.convs = nn.Sequential(*layers)
        lstm_in = conv_channels if conv_layers > 0 else video_dim
        self.lstm = nn.LSTM(
            lstm_in, lstm_hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True
        )
        self.bottleneck = nn.Linear(2 * lstm_hidden, bottleneck_dim)

    def forward(self, video: Tensor) -> Tensor:
        _check_video(video, self.video_dim)
        h = self.convs(video.transpose(1, 2)).transpose(1, 2)  # (B, T, conv_channels)
        h, _ = self.lstm(h)  # (B, T, 2 * lstm_hidden)
        return self.bottleneck(h)  # (B, T, bottleneck_dim)


def energy_mask(mel: Tensor, *, mask_value: float = 0.0) -> tuple[Tensor, Tensor]:
    """Energy masking before E_B: mel (B, n_mels, L) -> (masked mel (B, n_mels, L), mask (B, L) True=masked).

    A frame's energy is its mean over the mel bins (in the mel's own units; for the RegNet [0, 1] log-mel
    this orders frames as their log energy does). Frames whose energy is strictly above the per-clip median
    are set to `mask_value` (0.0 is silence in the RegNet convention), leaving the quiet, background part.
    """
    if mel.dim() != 3:
        raise ValueError(f"energy_mask expects (B, n_mels, L), got shape {tuple(mel.shape)}")
    energy = mel.mean(dim=1)  # (B, L)
    median = energy.median(dim=1, keepdim=True).values  # (B, 1)
    mask = energy > median
    masked = mel.masked_fill(mask.unsqueeze(1), mask_value)
    return masked, mask


class AcousticEncoder(nn.Module):
    """E_A: reference mel (B, n_mels, L) -> timbre features (B, num_frames, 2 * lstm_hidden).

    Any reference length L works (the timbre is a single vector). Random resampling runs in training, and at
    evaluation too unless `resample_in_eval=False`; `resample=False` switches it off entirely. With
    `reference_window=W` (ours, 0 = off) the encoder reads only W frames of the reference around its loudest
    frame (`loudest_window`), in training and generation alike, so the reference's event rate cannot reach the
    timbre vector.
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        units: int = 5,
        channels: int = 512,
        input_kernels: tuple[int, int] = (5, 7),
        output_kernel: int = 3,
        skip_kernel: int = 5,
        groups: int = 8,
        lstm_layers: int = 2,
        lstm_hidden: int = 256,
        resample: bool = True,
        resample_in_eval: bool = True,
        min_segment: int = 19,
        max_segment: int = 32,
        min_scale: float = 0.5,
        max_scale: float = 1.5,
        pooling: str = "last",
        reference_window: int = 0,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if reference_window < 0:
            raise ValueError(
                f"reference_window must be >= 0 frames (0: the whole reference), got {reference_window}"
            )
        self.reference_window = int(reference_window)
        if units < 1:
            raise ValueError(f"the acoustic encoder needs at least one SGAU, got {units=}")
        if pooling not in TIMBRE_POOLINGS:
            raise ValueError(f"timbre pooling must be one of {TIMBRE_POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.n_mels = n_mels
        self.resample = resample
        self.resample_in_eval = resample_in_eval
        self.spec = ResampleSpec(
            min_segment=min_segment, max_segment=max_segment, min_scale=min_scale, max_scale=max_scale
        )
        self.units = nn.ModuleList(
            SelfGatedAcousticUnit(
                in_channels=n_mels if i == 0 else channels,
                channels=channels,
                input_kernels=tuple(input_kernels),
                output_kernel=output_kernel,
                skip_kernel=skip_kernel,
                groups=groups,
                leaky_slope=leaky_slope,
            )
            for i in range(units)
        )
        self.lstm = nn.LSTM(
            channels, lstm_hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True
        )
        self.out_dim = 2 * lstm_hidden

    @property
    def resampling_active(self) -> bool:
        return self.resample and (self.training or self.resample_in_eval)

    def timbre(self, mel: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """The timbre vector: mel (B, n_mels, L) -> (B, 2 * lstm_hidden).

        Pooling 'last' (the paper) keeps the BiLSTM's final hidden states; 'mean' / 'max' pool its outputs
        over time, which lets a few loud frames (a hammer's strikes in a mostly quiet clip) set the vector.
        """
        _check_mel(mel, self.n_mels, "reference_mel")
        if self.reference_window:
            mel = loudest_window(mel, self.reference_window)
        spec = self.spec if self.resampling_active else None
        x, c = mel, mel  # "self-gated": the first unit gets the same tensor at both inputs
        for unit in self.units:
            x, c = unit(x, c, spec=spec, generator=generator)  # (B, channels, L) each
        if self.pooling == "last":
            return _last_hidden(self.lstm, x.transpose(1, 2))
        h, _ = self.lstm(x.transpose(1, 2))  # (B, L, 2 * lstm_hidden)
        return h.mean(dim=1) if self.pooling == "mean" else h.amax(dim=1)

    def forward(self, mel: Tensor, *, num_frames: int, generator: torch.Generator | None = None) -> Tensor:
        return self.timbre(mel, generator=generator).unsqueeze(1).expand(-1, num_frames, -1)


class BackgroundEncoder(nn.Module):
    """E_B: mel (B, n_mels, L) -> background features (B, num_frames, out_dim), after energy masking."""

    def __init__(
        self,
        *,
        n_mels: int = 80,
        lstm_layers: int = 2,
        lstm_hidden: int = 128,
        out_dim: int = 8,
        mask_value: float = 0.0,
    ) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.mask_value = mask_value
        self.lstm = nn.LSTM(n_mels, lstm_hidden, num_layers=lstm_layers, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * lstm_hidden, out_dim)
        self.out_dim = out_dim

    def forward(self, mel: Tensor, *, num_frames: int) -> Tensor:
        _check_mel(mel, self.n_mels, "background_mel")
        masked, _ = energy_mask(mel, mask_value=self.mask_value)
        h = self.proj(_last_hidden(self.lstm, masked.transpose(1, 2)))  # (B, out_dim)
        return h.unsqueeze(1).expand(-1, num_frames, -1)
