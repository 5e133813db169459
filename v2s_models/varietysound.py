"""VarietySound (Cui et al.): timbre-controllable video-to-sound by information disentanglement.

Generator: three encoders and a mel decoder (paper Fig. 2-3, Table 3 for every size).
- TemporalEncoder E_T: video features (B, T, 2048) -> 8 x [Conv1d k5 512, BatchNorm, leaky ReLU] -> 2-layer
  BiLSTM (256) -> Linear bottleneck (8) -> (B, T, 8). The bottleneck keeps acoustic content out of the video
  path.
- AcousticEncoder E_A: reference mel (B, 80, L) -> 5 Self-Gated Acoustic Units with random resampling R[.]
  (modules/sgau.py, appendix eq. 8-9) -> 2-layer BiLSTM (256); the last layer's final hidden states (forward
  and backward, 512) are the timbre vector, repeated over the T video steps -> (B, T, 512).
- BackgroundEncoder E_B: energy masking (frames whose energy exceeds the median frame energy are set to
  silence) -> 2-layer BiLSTM (128) -> Linear; final hidden state repeated over T -> (B, T, 8). Fed silence
  at inference.
- MelDecoder: concat of the encoder outputs on the feature axis -> 2 x [ConvT1d k4 s2 1024, leaky ReLU] (T
  -> 4T) -> Linear 1024 -> 512 -> sinusoidal positions -> 4 FFT blocks (512, 2 heads, conv k9 512) -> Linear
  -> 80 mels, (B, 80, 4T); 215 video frames -> 860 mel frames.
Discriminators: TimeDomainAlignmentDiscriminator (TDAD; negatives: the generated mel and a time-shifted real
mel) and MultiWindowMelDiscriminator (SyntaSpeech's, 3 sub-discriminators of 3 Conv2d on random windows).
Losses (eq. 1-7): G = lambda_m * L1(mel) + lambda_a * LSGAN adversarial summed over both discriminators;
weights as a mapping, Table 3: {"mel": 10000, "adv": 1}.

Where sources disagree, what we follow and why:
- lambda_m: Table 3 says 10000; the authors' demo page says 1e5. We follow Table 3 (the paper's
  configuration table is the more specific source); a sweep changes `weights["mel"]`.
- Acoustic-encoder LSTM layers: the text says "a single layer of the bidirectional LSTM", Table 3 says 2. We
  follow Table 3 (every other size here comes from it); `acoustic_lstm_layers` changes it.
- "Concatenated along the time dimension" (Mel Decoder section): the encoder outputs all have T steps and
  the decoder up-samples in time, so the concatenation can only be on the feature axis; we concatenate
  features.
- Eq. 6 writes the time-shifted negative as S[m_hat] (a shifted *generated* mel); the text beside it,
  PAPERS.md and this project's brief say a time-shifted *real* mel. We follow the text: shifted real mels
  are the negatives that cannot be told apart by content alone, which is the stated purpose ("consistent in
  content but not aligned in time").
- Eq. 3-7 write ||.||_2 (a norm, not squared); "least squares" (and LSGAN) means the mean squared error,
  which we use. The TDAD ends in a sigmoid (paper text); the mel discriminator's outputs are linear
  (SyntaSpeech).
Our choices where the paper is silent: leaky ReLU slope 0.2 everywhere; a leaky ReLU after each up-sampling
ConvT; a Linear 1024 -> 512 between the up-sampler (filter size 1024) and the FFT blocks (hidden 512);
background output dimension 8 (like the temporal bottleneck); FFT dropout 0.2 (FastSpeech 2's public
config); TDAD mel convolution 80 -> 512, k3; TDAD convolutions strided 2 except the last (a patch
discriminator, as in REGNET's); GroupNorm with 8 groups in the SGAUs; mel-discriminator windows 32 / 64 /
128 frames (SyntaSpeech's defaults, about 0.37 / 0.74 / 1.49 s at 86 mel frames/s), 128 channels, BatchNorm
after the 2nd and 3rd Conv2d, dropout 0.25.

Random resampling at evaluation: on by default (`resample_in_eval=True`). The decoder only ever sees timbre
vectors of resampled references during training; feeding an untouched reference at inference would be a
distribution shift and would let the reference's timing leak into the output, which is what R[.] exists to
stop. Pass a `torch.Generator` to `forward` for a deterministic draw, or build with `resample_in_eval=False`
(or `resample=False`) to switch it off.

Ablations: `use_temporal`, `use_timbre`, `use_background` remove an encoder (its parameters are not built
and the decoder's input shrinks), i.e. a model *trained* without that component. The paper's full model
(Table 8 "Proposed") is trained with the background encoder and given silence at inference; Table 8's "w Bi"
is the same model given the real mel as `background_mel` at inference. Table 7 (without one discriminator)
is a training-loop choice: pass `None` for that discriminator's scores to `generator_loss`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from v2s_models.modules.fft_block import FFTBlock, SinusoidalPositionalEncoding
from v2s_models.modules.sgau import ResampleSpec, SelfGatedAcousticUnit
from v2s_models.settings import REGNET

__all__ = [
    "DEBUG_N_MELS",
    "DEBUG_VIDEO_DIM",
    "PAPER_LOSS_WEIGHTS",
    "PAPER_MEL_FRAMES",
    "PAPER_NUM_FRAMES",
    "AcousticEncoder",
    "BackgroundEncoder",
    "MelDecoder",
    "MultiWindowMelDiscriminator",
    "SingleWindowMelDiscriminator",
    "TemporalEncoder",
    "TimeDomainAlignmentDiscriminator",
    "VarietySoundGenerator",
    "build_mel_discriminator",
    "build_tdad",
    "build_varietysound",
    "energy_mask",
    "generator_loss",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "mel_discriminator_loss",
    "mel_discriminator_debug",
    "mel_discriminator_paper",
    "mel_l1_loss",
    "tdad_debug",
    "tdad_loss",
    "tdad_paper",
    "time_shift",
    "varietysound_debug",
    "varietysound_paper",
]

PAPER_LOSS_WEIGHTS: dict[str, float] = {"mel": 10000.0, "adv": 1.0}
"""Table 3: lambda_m = 10000 (the authors' demo page says 1e5), lambda_a = 1."""


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
    evaluation too unless `resample_in_eval=False`; `resample=False` switches it off entirely.
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
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if units < 1:
            raise ValueError(f"the acoustic encoder needs at least one SGAU, got {units=}")
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
        """The timbre vector: mel (B, n_mels, L) -> (B, 2 * lstm_hidden)."""
        _check_mel(mel, self.n_mels, "reference_mel")
        spec = self.spec if self.resampling_active else None
        x, c = mel, mel  # "self-gated": the first unit gets the same tensor at both inputs
        for unit in self.units:
            x, c = unit(x, c, spec=spec, generator=generator)  # (B, channels, L) each
        return _last_hidden(self.lstm, x.transpose(1, 2))

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


# ----------------------------------------------------------------------------------------------------------
# Decoder and generator


class MelDecoder(nn.Module):
    """Mel decoder: features (B, T, in_dim) -> mel (B, n_mels, T * 2**upsample_layers)."""

    def __init__(
        self,
        *,
        in_dim: int,
        n_mels: int = 80,
        upsample_layers: int = 2,
        upsample_kernel: int = 4,
        upsample_channels: int = 1024,
        fft_layers: int = 4,
        fft_dim: int = 512,
        fft_heads: int = 2,
        fft_kernel: int = 9,
        fft_filter: int = 512,
        dropout: float = 0.2,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if upsample_kernel < 2 or upsample_kernel % 2 != 0:
            raise ValueError(
                f"upsample_kernel must be even (stride 2 doubles the length), got {upsample_kernel}"
            )
        self.in_dim = in_dim
        self.n_mels = n_mels
        self.upsample_factor = 2**upsample_layers
        layers: list[nn.Module] = []
        for i in range(upsample_layers):
            c_in = in_dim if i == 0 else upsample_channels
            # padding (k - 2) / 2 makes the output exactly twice the input length.
            layers += [
                nn.ConvTranspose1d(
                    c_in, upsample_channels, upsample_kernel, stride=2, padding=(upsample_kernel - 2) // 2
                ),
                nn.LeakyReLU(leaky_slope),
            ]
        self.upsample = nn.Sequential(*layers)
        up_dim = upsample_channels if upsample_layers > 0 else in_dim
        self.in_proj = nn.Linear(up_dim, fft_dim)
        self.positions = SinusoidalPositionalEncoding(dim=fft_dim)
        self.blocks = nn.ModuleList(
            FFTBlock(dim=fft_dim, heads=fft_heads, kernel=fft_kernel, filter_size=fft_filter, dropout=dropout)
            for _ in range(fft_layers)
        )
        self.out_proj = nn.Linear(fft_dim, n_mels)

    def forward(self, h: Tensor) -> Tensor:
        b, t, d = h.shape
        assert d == self.in_dim, f"{h.shape=}"
        x = self.upsample(h.transpose(1, 2)).transpose(1, 2)  # (B, T * factor, upsample_channels)
        assert x.shape[1] == t * self.upsample_factor, f"{x.shape=}"
        x = self.positions(self.in_proj(x))  # (B, 4T, fft_dim)
        for block in self.blocks:
            x = block(x)
        return self.out_proj(x).transpose(1, 2)  # (B, n_mels, 4T)


class VarietySoundGenerator(nn.Module):
    """VarietySound generator G(v, m): video (B, T, video_dim), reference mel (B, n_mels, L_ref), background
    mel (B, n_mels, L_bg) or None (silence) -> mel (B, n_mels, T * upsample_factor).

    Training: reference_mel = background_mel = the clip's own mel. Inference: any reference audio's mel as
    reference_mel, background_mel=None (silence).
    """

    def __init__(
        self,
        *,
        video_dim: int = 2048,
        n_mels: int = 80,
        use_temporal: bool = True,
        use_timbre: bool = True,
        use_background: bool = True,
        # temporal encoder
        temporal_conv_layers: int = 8,
        temporal_conv_kernel: int = 5,
        temporal_conv_channels: int = 512,
        temporal_lstm_layers: int = 2,
        temporal_lstm_hidden: int = 256,
        bottleneck_dim: int = 8,
        # acoustic encoder
        sgau_units: int = 5,
        sgau_channels: int = 512,
        sgau_input_kernels: tuple[int, int] = (5, 7),
        sgau_output_kernel: int = 3,
        sgau_skip_kernel: int = 5,
        sgau_groups: int = 8,
        acoustic_lstm_layers: int = 2,
        acoustic_lstm_hidden: int = 256,
        resample: bool = True,
        resample_in_eval: bool = True,
        resample_min_segment: int = 19,
        resample_max_segment: int = 32,
        resample_min_scale: float = 0.5,
        resample_max_scale: float = 1.5,
        # background encoder
        background_lstm_layers: int = 2,
        background_lstm_hidden: int = 128,
        background_dim: int = 8,
        silence_value: float = 0.0,
        # decoder
        upsample_layers: int = 2,
        upsample_kernel: int = 4,
        upsample_channels: int = 1024,
        fft_layers: int = 4,
        fft_dim: int = 512,
        fft_heads: int = 2,
        fft_kernel: int = 9,
        fft_filter: int = 512,
        dropout: float = 0.2,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if not (use_temporal or use_timbre or use_background):
            raise ValueError(
                "VarietySoundGenerator needs at least one of use_temporal, use_timbre, use_background"
            )
        self.video_dim = video_dim
        self.n_mels = n_mels
        self.silence_value = silence_value
        self.temporal_encoder: TemporalEncoder | None = None
        self.acoustic_encoder: AcousticEncoder | None = None
        self.background_encoder: BackgroundEncoder | None = None
        in_dim = 0
        if use_temporal:
            self.temporal_encoder = TemporalEncoder(
                video_dim=video_dim,
                conv_layers=temporal_conv_layers,
                conv_kernel=temporal_conv_kernel,
                conv_channels=temporal_conv_channels,
                lstm_layers=temporal_lstm_layers,
                lstm_hidden=temporal_lstm_hidden,
                bottleneck_dim=bottleneck_dim,
                leaky_slope=leaky_slope,
            )
            in_dim += bottleneck_dim
        if use_timbre:
            self.acoustic_encoder = AcousticEncoder(
                n_mels=n_mels,
                units=sgau_units,
                channels=sgau_channels,
                input_kernels=tuple(sgau_input_kernels),
                output_kernel=sgau_output_kernel,
                skip_kernel=sgau_skip_kernel,
                groups=sgau_groups,
                lstm_layers=acoustic_lstm_layers,
                lstm_hidden=acoustic_lstm_hidden,
                resample=resample,
                resample_in_eval=resample_in_eval,
                min_segment=resample_min_segment,
                max_segment=resample_max_segment,
                min_scale=resample_min_scale,
                max_scale=resample_max_scale,
                leaky_slope=leaky_slope,
            )
            in_dim += self.acoustic_encoder.out_dim
        if use_background:
            self.background_encoder = BackgroundEncoder(
                n_mels=n_mels,
                lstm_layers=background_lstm_layers,
                lstm_hidden=background_lstm_hidden,
                out_dim=background_dim,
                mask_value=silence_value,
            )
            in_dim += background_dim
        self.decoder = MelDecoder(
            in_dim=in_dim,
            n_mels=n_mels,
            upsample_layers=upsample_layers,
            upsample_kernel=upsample_kernel,
            upsample_channels=upsample_channels,
            fft_layers=fft_layers,
            fft_dim=fft_dim,
            fft_heads=fft_heads,
            fft_kernel=fft_kernel,
            fft_filter=fft_filter,
            dropout=dropout,
            leaky_slope=leaky_slope,
        )
        self.upsample_factor = self.decoder.upsample_factor

    def encode(
        self,
        video: Tensor,
        reference_mel: Tensor | None = None,
        background_mel: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """The disentangled components, each (B, T, dim), under 'temporal', 'timbre', 'background' if built.

        `background_mel=None` means silence (inference). Inputs of a switched-off encoder are ignored.
        """
        _check_video(video, self.video_dim)
        b, t = video.shape[0], video.shape[1]
        out: dict[str, Tensor] = {}
        if self.temporal_encoder is not None:
            out["temporal"] = self.temporal_encoder(video)
        if self.acoustic_encoder is not None:
            if reference_mel is None:
                raise ValueError("reference_mel is required: this generator has a timbre (acoustic) encoder")
            _check_mel(reference_mel, self.n_mels, "reference_mel", batch=b)
            out["timbre"] = self.acoustic_encoder(reference_mel, num_frames=t, generator=generator)
        if self.background_encoder is not None:
            if background_mel is None:
                background_mel = video.new_full(
                    (b, self.n_mels, t * self.upsample_factor), self.silence_value
                )
            _check_mel(background_mel, self.n_mels, "background_mel", batch=b)
            out["background"] = self.background_encoder(background_mel, num_frames=t)
        return out

    def decode(self, features: Mapping[str, Tensor]) -> Tensor:
        """Concatenates the components in a fixed order on the feature axis -> mel (B, n_mels, T * factor)."""
        parts = [features[k] for k in ("temporal", "timbre", "background") if k in features]
        return self.decoder(torch.cat(parts, dim=-1))

    def forward(
        self,
        video: Tensor,
        reference_mel: Tensor | None = None,
        background_mel: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        mel = self.decode(self.encode(video, reference_mel, background_mel, generator=generator))
        assert mel.shape == (video.shape[0], self.n_mels, video.shape[1] * self.upsample_factor), (
            f"{mel.shape=}"
        )
        return mel


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


# ----------------------------------------------------------------------------------------------------------
# Losses (pure functions; weights come from config as a mapping)


def mel_l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """L_mel (eq. 2): mean absolute error between mels of equal shape."""
    if pred.shape != target.shape:
        raise ValueError(f"mel_l1_loss needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    return F.l1_loss(pred, target)


def _sum_terms(terms: list[Tensor]) -> Tensor:
    return torch.stack(terms).sum() if terms else torch.zeros(())


def lsgan_generator_loss(fake_scores: Sequence[Tensor]) -> Tensor:
    """Least-squares generator term: sum over score tensors of mean((1 - D(fake))^2)."""
    return _sum_terms([torch.mean((1.0 - s) ** 2) for s in fake_scores])


def lsgan_discriminator_loss(real_scores: Sequence[Tensor], fake_scores: Sequence[Tensor]) -> Tensor:
    """Least-squares discriminator term: sum of mean((1 - D(real))^2) + mean(D(fake)^2)."""
    return _sum_terms(
        [torch.mean((1.0 - s) ** 2) for s in real_scores] + [torch.mean(s**2) for s in fake_scores]
    )


def _check_weights(weights: Mapping[str, float]) -> None:
    known = set(PAPER_LOSS_WEIGHTS)
    if set(weights) != known:
        raise ValueError(f"loss weights must have exactly the keys {sorted(known)}, got {sorted(weights)}")


def generator_loss(
    mel_pred: Tensor,
    mel_target: Tensor,
    *,
    weights: Mapping[str, float] = PAPER_LOSS_WEIGHTS,
    tdad_fake: Tensor | None = None,
    mel_d_fake: Sequence[Tensor] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """L_G (eq. 1-3) = weights['mel'] * L1 + weights['adv'] * (LSGAN(TDAD) + LSGAN(mel D)).

    `tdad_fake` (B, L') = D_t(G(v, m) | v); `mel_d_fake` = D_m(G(v, m)). Pass None for a discriminator that
    is switched off (Table 7). Returns (total, parts): 'mel', 'adv_tdad', 'adv_mel' (unweighted, detached).
    """
    _check_weights(weights)
    mel = mel_l1_loss(mel_pred, mel_target)
    zero = mel_pred.new_zeros(())
    adv_t = lsgan_generator_loss([tdad_fake]) if tdad_fake is not None else zero
    adv_m = lsgan_generator_loss(mel_d_fake) if mel_d_fake is not None else zero
    total = weights["mel"] * mel + weights["adv"] * (adv_t + adv_m)
    return total, {"mel": mel.detach(), "adv_tdad": adv_t.detach(), "adv_mel": adv_m.detach()}


def tdad_loss(real: Tensor, fake: Tensor, shifted: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """L_Dt (eq. 4-6): real = D_t(m | v), fake = D_t(G(v, m) | v) (detached input), shifted = D_t(S[m] | v).

    Returns (total, parts) with parts 'real', 'fake', 'shifted' (detached).
    """
    l_real = torch.mean((1.0 - real) ** 2)
    l_fake = torch.mean(fake**2)
    l_shift = torch.mean(shifted**2)
    total = l_real + l_fake + l_shift
    return total, {"real": l_real.detach(), "fake": l_fake.detach(), "shifted": l_shift.detach()}


def mel_discriminator_loss(
    real_scores: Sequence[Tensor], fake_scores: Sequence[Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """L_Dm (eq. 7), summed over the windows. Returns (total, parts) with parts 'real', 'fake' (detached)."""
    if len(real_scores) != len(fake_scores):
        raise ValueError(f"need as many real as fake scores, got {len(real_scores)} and {len(fake_scores)}")
    l_real = lsgan_discriminator_loss(real_scores, [])
    l_fake = lsgan_discriminator_loss([], fake_scores)
    return l_real + l_fake, {"real": l_real.detach(), "fake": l_fake.detach()}


# ----------------------------------------------------------------------------------------------------------
# Presets (Table 3) and builders

# The paper's data: 215 video frames -> 860 mel frames, 4 = 2**2 per video frame, i.e. two stride-2
# up-sampling layers in the decoder and in the TDAD.
PAPER_NUM_FRAMES = REGNET.num_frames  # 215
PAPER_MEL_FRAMES = REGNET.num_mel_frames  # 860
_PAPER_UPSAMPLE_LAYERS = 2
assert 2**_PAPER_UPSAMPLE_LAYERS * PAPER_NUM_FRAMES == PAPER_MEL_FRAMES, f"{REGNET.num_mel_frames=}"


def _build(cls: type[nn.Module], base: Mapping[str, Any], overrides: Mapping[str, Any]) -> Any:
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(overrides) - allowed
    if unknown:
        raise ValueError(f"unknown {cls.__name__} option(s) {sorted(unknown)}; known: {sorted(allowed)}")
    return cls(**{**base, **overrides})


def varietysound_paper(**overrides: Any) -> VarietySoundGenerator:
    """Paper-size generator (Table 3): video 2048 x 215 -> mel 80 x 860; about 70 M parameters."""
    base = dict(
        video_dim=2048,
        n_mels=REGNET.mel.n_mels,
        temporal_conv_layers=8,
        temporal_conv_kernel=5,
        temporal_conv_channels=512,
        temporal_lstm_layers=2,
        temporal_lstm_hidden=256,
        bottleneck_dim=8,
        sgau_units=5,
        sgau_channels=512,
        sgau_input_kernels=(5, 7),
        sgau_output_kernel=3,
        sgau_skip_kernel=5,
        acoustic_lstm_layers=2,
        acoustic_lstm_hidden=256,
        background_lstm_layers=2,
        background_lstm_hidden=128,
        upsample_layers=_PAPER_UPSAMPLE_LAYERS,
        upsample_kernel=4,
        upsample_channels=1024,
        fft_layers=4,
        fft_dim=512,
        fft_heads=2,
        fft_kernel=9,
        fft_filter=512,
    )
    return _build(VarietySoundGenerator, base, overrides)


DEBUG_VIDEO_DIM = 32
DEBUG_N_MELS = 20
"""Debug presets: video 32-d, 20 mel bins; any T works (mel frames = 4T; the debug mel D needs T >= 8)."""


def varietysound_debug(**overrides: Any) -> VarietySoundGenerator:
    """Tiny generator for tests (milliseconds on CPU): video (B, T, 32) -> mel (B, 20, 4T)."""
    base = dict(
        video_dim=DEBUG_VIDEO_DIM,
        n_mels=DEBUG_N_MELS,
        temporal_conv_layers=2,
        temporal_conv_kernel=5,
        temporal_conv_channels=32,
        temporal_lstm_layers=1,
        temporal_lstm_hidden=16,
        bottleneck_dim=4,
        sgau_units=2,
        sgau_channels=32,
        sgau_groups=4,
        acoustic_lstm_layers=1,
        acoustic_lstm_hidden=16,
        resample_min_segment=4,
        resample_max_segment=8,
        background_lstm_layers=1,
        background_lstm_hidden=8,
        background_dim=4,
        upsample_layers=2,
        upsample_channels=32,
        fft_layers=1,
        fft_dim=32,
        fft_heads=2,
        fft_kernel=3,
        fft_filter=32,
        dropout=0.0,
    )
    return _build(VarietySoundGenerator, base, overrides)


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


_GENERATORS: dict[str, Callable[..., VarietySoundGenerator]] = {
    "paper": varietysound_paper,
    "debug": varietysound_debug,
}
_TDADS: dict[str, Callable[..., TimeDomainAlignmentDiscriminator]] = {
    "paper": tdad_paper,
    "debug": tdad_debug,
}
_MEL_DS: dict[str, Callable[..., MultiWindowMelDiscriminator]] = {
    "paper": mel_discriminator_paper,
    "debug": mel_discriminator_debug,
}


def _lookup(table: Mapping[str, Callable[..., Any]], preset: str, prefix: str) -> Callable[..., Any]:
    key = preset.removeprefix(prefix)
    if key not in table:
        raise ValueError(
            f"unknown preset {preset!r}; known: {sorted(table)} (optionally prefixed {prefix!r})"
        )
    return table[key]


def build_varietysound(preset: str = "paper", **overrides: Any) -> VarietySoundGenerator:
    """Generator from a preset name ('paper' | 'debug', or 'varietysound_paper' ...) and keyword overrides."""
    return _lookup(_GENERATORS, preset, "varietysound_")(**overrides)


def build_tdad(preset: str = "paper", **overrides: Any) -> TimeDomainAlignmentDiscriminator:
    return _lookup(_TDADS, preset, "tdad_")(**overrides)


def build_mel_discriminator(preset: str = "paper", **overrides: Any) -> MultiWindowMelDiscriminator:
    return _lookup(_MEL_DS, preset, "mel_discriminator_")(**overrides)
