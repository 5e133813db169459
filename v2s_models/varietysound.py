"""VarietySound (Cui et al.): timbre-controllable video-to-sound by information disentanglement.

This module: the generator (its encoders in `varietysound_encoders.py`) and its presets; the discriminators
and their presets are in `varietysound_discriminators.py`, the losses in `varietysound_losses.py`. This
docstring describes all of them.

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

Timbre pooling (`timbre_pooling`, ours, off by default): 'last' is the paper's final BiLSTM hidden state;
'mean' / 'max' pool the BiLSTM's outputs over time instead. On SynthFoley the pitch sits in a few strike frames
of a mostly quiet clip (a ridge probe finds it in the per-bin maximum over time of the mel, not in its mean),
and the trained demo's final hidden state carried none of it (issue 13; docs/results.md).

Reference window (`reference_window`, ours, 0 = off): the acoustic encoder reads only that many frames of the
reference, from 4 before its loudest frame, in training and generation alike. Trained on the clip's own mel as
reference, the encoder otherwise learns the clip's event rate and noise level rather than its timbre (a probe,
`tests/bench/timbre_probe.py`; docs/results.md, issue 13 item 1); one strike's window cannot tell how many there are.

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
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from v2s_models.interface import ModelInputs, check_reference
from v2s_models.modules.fft_block import FFTBlock, SinusoidalPositionalEncoding
from v2s_models.settings import REGNET
from v2s_models.varietysound_encoders import (
    AcousticEncoder,
    BackgroundEncoder,
    TemporalEncoder,
    _check_mel,
    _check_video,
)

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
        timbre_pooling: str = "last",
        reference_window: int = 0,
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
                pooling=timbre_pooling,
                reference_window=reference_window,
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

    # SoundModel (v2s_models.interface)
    def model_inputs(self) -> ModelInputs:
        return ModelInputs(
            visual_dim=self.video_dim,
            takes_reference=self.acoustic_encoder is not None,
            takes_background=self.background_encoder is not None,
            n_mels=self.n_mels,
            mel_frames_per_step=self.upsample_factor,
        )

    def start_video(
        self, *, generator: torch.Generator, reference_mel: Tensor | None = None, temperature: float = 1.0
    ) -> Tensor | None:
        """One timbre vector (1, dim) from the reference (n_mels, L) for every window of a video, its random
        resampling drawn from `generator`; None without an acoustic encoder."""
        del temperature
        check_reference(self.model_inputs(), reference_mel)
        if self.acoustic_encoder is None or reference_mel is None:
            return None
        device = next(self.parameters()).device
        return self.acoustic_encoder.timbre(reference_mel[None].to(device), generator=generator)

    def generate_windows(
        self,
        windows: Tensor,
        context: Tensor | None,
        *,
        num_samples: int | None = None,
        background_mel: Tensor | None = None,
    ) -> Tensor:
        """Windows (B, W, video_dim) with the video's timbre and a background (B, n_mels, W * f), silent by
        default -> mel (B, n_mels, W * f)."""
        b, t = windows.shape[0], windows.shape[1]
        parts: dict[str, Tensor] = {}
        if self.temporal_encoder is not None:
            parts["temporal"] = self.temporal_encoder(windows)
        if context is not None:
            parts["timbre"] = context[:, None].expand(b, t, -1)
        if self.background_encoder is not None:
            if background_mel is None:
                background_mel = windows.new_full(
                    (b, self.n_mels, t * self.upsample_factor), self.silence_value
                )
            parts["background"] = self.background_encoder(background_mel.to(windows.device), num_frames=t)
        return self.decode(parts)

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


_GENERATORS: dict[str, Callable[..., VarietySoundGenerator]] = {
    "paper": varietysound_paper,
    "debug": varietysound_debug,
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
