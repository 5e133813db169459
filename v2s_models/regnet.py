"""REGNET: "Generating Visually Aligned Sound from Videos" (Chen et al., 2020).

A conditional GAN that maps per-frame visual features (B, T, D) to a RegNet-convention mel spectrogram
(B, 80, 4T): 215 video frames at 21.5 fps become 860 mel frames (hop 256 at 22050 Hz).

- `RegnetGenerator`: visual encoder (3 x Conv1d k5 + BN + ReLU + dropout, 2-layer BiLSTM, Linear) with a
  noise vector broadcast over time; the *audio forwarding regularizer* (a bottleneck over the real mel,
  used only while training); a decoder of two stride-2 transposed convolutions (T -> 4T); a residual
  Tacotron-style postnet.
- `RegnetDiscriminator`: a patch discriminator over (visual features up-sampled 4x, mel).
- `regnet_generator_loss` / `regnet_discriminator_loss`: the authors' losses as pure functions.

Sources and the choices made where they differ or are silent:
- Sizes come from the authors' public code (`model.py`, `config.py`, shipped config `dog_opts.yml`; see
  /work/shared/PAPERS.md section 1); the `regnet_paper` preset reproduces its parameter counts exactly
  (generator 94,095,184, discriminator 11,420,545). Facts read there: every Conv/Linear/LSTM has a bias;
  the postnet's last conv is followed by a BatchNorm (no tanh); all transposed convs are k4 s2 p1; the
  discriminator's mel branch is a kernel-1 convolution (the authors wrote it as a ConvTranspose1d with k1,
  which is the same map with the weight transposed; we use Conv1d); its down-sampling stack is Conv k4
  (s2 p1, s2 p1, s1 p1, s1 p1) with BN after the 2nd and 3rd conv and LeakyReLU(0.2) after the first three.
- Initialisation follows the authors' `init_weights('normal', 0.02)`: conv and linear weights N(0, 0.02),
  biases 0; BatchNorm and LSTM keep PyTorch's defaults.
- The authors' output pair is (decoder + postnet, decoder); we name them `mel_postnet` and `mel_decoder`.
- Regularizer at evaluation: the original fixes its mode (real mel or not) when the module is built, so
  its validation loss still saw the real audio. Here the regularizer's output is zero whenever the module
  is in eval mode or no real mel is given, so validation and generation use vision only.
- `lstm_last`: the original feeds only the top layer's final *backward* state (h[-1]) to the Linear, so the
  top layer's forward direction (12,544 of the preset's parameters) never receives a gradient. We feed the
  sum of both final states of the top layer: the same parameters (the counts stay exact), none of them dead,
  and a summary that weighs the clip's end as much as its start. It broadcasts over the actual T (the
  original hard-codes 215). At evaluation the regularizer is zero either way, so generating with weights
  trained by the original is unaffected.
- `lstm_sample`: the original samples forward states at frames 0, 32, ... and backward states at 1, 33, ...
  and then *tiles* the whole sampled sequence (`repeat` on a new leading axis), so video step t does not
  receive the sample of its own segment. We take, for each segment of `aux_sample_rate` mel frames, the
  forward state at the segment's last frame and the backward state at its first frame (each summarises
  the segment from its own side), and repeat each sample over the segment's `aux_sample_rate / 4` video
  steps, which is what the paper's "sample and repeat" describes.
- The noise z ~ N(0, 1) is drawn inside the original encoder; here it can also be passed in, which makes
  generation reproducible and lets tests compare two calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from v2s_models.interface import ModelInputs

AuxType = Literal["lstm_last", "lstm_sample", "conv", "none"]
AUX_TYPES: tuple[str, ...] = ("lstm_last", "lstm_sample", "conv", "none")
UpsampleType = Literal["transposed", "transposed_blur", "resize_conv"]
UPSAMPLE_TYPES: tuple[str, ...] = ("transposed", "transposed_blur", "resize_conv")
TRANSPOSED_TYPES: tuple[str, ...] = ("transposed", "transposed_blur")
DecoderInit = Literal["default", "icnr"]
DECODER_INITS: tuple[str, ...] = ("default", "icnr")

MEL_FRAMES_PER_VIDEO_FRAME = 4  # fixed by the decoder's two 2x up-sampling steps


class RegnetOutput(NamedTuple):
    """Generator output. Both tensors are (B, n_mels, 4T).

    `mel_decoder` is the decoder's mel; `mel_postnet` = `mel_decoder` + the postnet's residual (the final mel).
    """

    mel_decoder: torch.Tensor
    mel_postnet: torch.Tensor


def _check_visual(visual: torch.Tensor, visual_dim: int) -> None:
    if visual.dim() != 3 or visual.shape[2] != visual_dim:
        raise ValueError(f"visual must be (B, T, {visual_dim}), got shape {tuple(visual.shape)}")
    if visual.shape[1] < 1:
        raise ValueError(f"visual must have at least one frame, got shape {tuple(visual.shape)}")


def _check_mel(mel: torch.Tensor, name: str, batch: int, n_mels: int, num_frames: int) -> None:
    want = (batch, n_mels, MEL_FRAMES_PER_VIDEO_FRAME * num_frames)
    if tuple(mel.shape) != want:
        raise ValueError(
            f"{name} must be (B, n_mels, 4T) = {want} for visual of {num_frames} frames "
            f"(4 mel frames per video frame), got shape {tuple(mel.shape)}"
        )


def init_regnet_weights(module: nn.Module, std: float = 0.02) -> None:
    """The authors' initialisation: conv/linear weights ~ N(0, std), biases 0 (BN and LSTM untouched)."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.ConvTranspose1d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv_bn(in_ch: int, out_ch: int, kernel: int) -> nn.Sequential:
    """Conv1d (same padding, stride 1) followed by BatchNorm1d: (B, in_ch, L) -> (B, out_ch, L)."""
    return nn.Sequential(nn.Conv1d(in_ch, out_ch, kernel, padding=(kernel - 1) // 2), nn.BatchNorm1d(out_ch))


class RegnetEncoder(nn.Module):
    """Visual encoder: (B, T, visual_dim) and noise (B, noise_dim) -> (B, T, out_dim)."""

    def __init__(
        self,
        *,
        visual_dim: int,
        noise_dim: int,
        channels: int,
        num_convs: int,
        kernel_size: int,
        lstm_hidden: int,
        lstm_layers: int,
        out_dim: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"encoder kernel_size must be odd (same padding), got {kernel_size}")
        self.noise_dim = noise_dim
        self.dropout = dropout
        self.convs = nn.ModuleList(
            _conv_bn(visual_dim + noise_dim if i == 0 else channels, channels, kernel_size)
            for i in range(num_convs)
        )
        self.lstm = nn.LSTM(channels, lstm_hidden, lstm_layers, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * lstm_hidden, out_dim)

    def forward(self, visual: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        B, T, _ = visual.shape
        x = visual.transpose(1, 2)  # (B, D, T)
        if self.noise_dim > 0:
            x = torch.cat([x, noise.unsqueeze(2).expand(B, self.noise_dim, T)], dim=1)  # (B, D + Z, T)
        for conv in self.convs:
            x = F.dropout(F.relu(conv(x)), self.dropout, self.training)
        x, _ = self.lstm(x.transpose(1, 2))  # (B, T, 2H)
        return self.proj(x)  # (B, T, out_dim)


class AuxLstmLast(nn.Module):
    """Regularizer: BiLSTM over the mel, the top layer's final states -> Linear, broadcast over T.

    (B, n_mels, 4T) -> (B, T, aux_dim).
    """

    def __init__(self, *, n_mels: int, aux_dim: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_mels, aux_dim, 2, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(aux_dim, aux_dim)

    def forward(self, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        _, (h, _) = self.lstm(mel.transpose(1, 2))  # h: (layers * 2, B, aux_dim)
        # Both final states of the top layer have read the whole clip; summing them uses every weight
        # (the authors read h[-1] only, which leaves the top layer's forward direction untrained).
        x = self.proj(h[-2] + h[-1])  # (B, aux_dim)
        return x.unsqueeze(1).expand(-1, num_frames, -1)


class AuxLstmSample(nn.Module):
    """Regularizer: BiLSTM (aux_dim / 2 per direction) sampled once per `sample_rate` mel frames, repeated.

    (B, n_mels, 4T) -> (B, T, aux_dim).
    """

    def __init__(self, *, n_mels: int, aux_dim: int, sample_rate: int) -> None:
        super().__init__()
        if aux_dim % 2 != 0:
            raise ValueError(f"lstm_sample needs an even aux_dim (two directions), got {aux_dim}")
        if sample_rate <= 0 or sample_rate % MEL_FRAMES_PER_VIDEO_FRAME != 0:
            raise ValueError(
                f"aux_sample_rate must be a positive multiple of 4 mel frames, got {sample_rate}"
            )
        self.half = aux_dim // 2
        self.sample_rate = sample_rate
        self.lstm = nn.LSTM(n_mels, self.half, 2, batch_first=True, bidirectional=True)

    def forward(self, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        x, _ = self.lstm(mel.transpose(1, 2))  # (B, L, aux_dim), L = 4T
        L = x.shape[1]
        starts = torch.arange(0, L, self.sample_rate, device=x.device)
        ends = (starts + self.sample_rate - 1).clamp(max=L - 1)
        forward_states = x[:, ends, : self.half]  # the forward pass has read up to the segment's end
        backward_states = x[:, starts, self.half :]  # the backward pass has read back to its start
        sampled = torch.cat([forward_states, backward_states], dim=-1)  # (B, ceil(L / rate), aux_dim)
        steps = self.sample_rate // MEL_FRAMES_PER_VIDEO_FRAME
        return sampled.repeat_interleave(steps, dim=1)[:, :num_frames]  # (B, T, aux_dim)


class AuxConv(nn.Module):
    """Regularizer: two stride-2 convolutions (n_mels -> 32 -> aux_dim), 4T -> T. (B, n_mels, 4T) -> (B, T, aux_dim)."""

    def __init__(self, *, n_mels: int, aux_dim: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(n_mels, hidden, 3, stride=2, padding=1),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, aux_dim, 3, stride=2, padding=1),
            nn.BatchNorm1d(aux_dim),
            nn.ReLU(inplace=True),
        )

    def forward(self, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        x = self.net(mel).transpose(1, 2)  # (B, T, aux_dim)
        assert x.shape[1] == num_frames, f"{x.shape=} {num_frames=}"
        return x


class RegnetDecoder(nn.Module):
    """Decoder: (B, T, in_dim) -> (B, n_mels, 4T) via two 2x up-sampling steps.

    `upsample="transposed"` is the paper's k4 s2 transposed convolution. Its kernel overlaps unevenly (each output
    frame sums two taps, alternating between two kernel halves), which leaves a period-2 / period-4 pattern in the
    mel frames until long training evens it out (Odena et al., "Deconvolution and checkerboard artifacts", 2016).
    `upsample="resize_conv"` repeats each frame (nearest neighbour) and then applies a k3 convolution: every output
    frame sees the same kernel, so the pattern cannot arise. Same widths, same receptive field order.
    `upsample="transposed_blur"` keeps the paper's layer and follows it with a fixed binomial blur [1, 2, 1] / 4
    over time (`binomial_blur`, no parameters): its response is 0 at half the frame rate, so a period-2 pattern of
    each layer's output is removed whatever the weights learn (the first layer's period 2 is the mel's period 4).
    The paper's parameters are unchanged; the blur smooths the mel over about one frame (1/4 video frame).

    `init_icnr` (the generator's `decoder_init="icnr"`) keeps the paper's transposed layers but starts each one as
    nearest-neighbour 2x up-sampling followed by a k3 convolution, so the decoder has no checkerboard at step 0.
    """

    def __init__(
        self, *, in_dim: int, channels: int, n_mels: int, upsample: UpsampleType = "transposed"
    ) -> None:
        super().__init__()
        if upsample not in UPSAMPLE_TYPES:
            raise ValueError(f"decoder_upsample must be one of {UPSAMPLE_TYPES}, got {upsample!r}")
        self.upsample = upsample
        self.net = nn.Sequential(
            _upsample2x(in_dim, channels, upsample),  # T -> 2T
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            nn.Conv1d(channels, channels, 5, padding=2),
            nn.BatchNorm1d(channels),
            nn.ReLU(inplace=True),
            _upsample2x(channels, n_mels, upsample),  # 2T -> 4T
            nn.BatchNorm1d(n_mels),
            nn.ReLU(inplace=True),
            nn.Conv1d(n_mels, n_mels, 5, padding=2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.transpose(1, 2))

    @torch.no_grad()
    def init_icnr(self, std: float = 0.02, generator: torch.Generator | None = None) -> None:
        """Re-initialise every transposed convolution as nearest 2x up-sampling + a k3 convolution (ICNR-style).

        A k3 kernel V (out, in, 3) is drawn ~ N(0, std) (the authors' scale) and folded into the k4 s2 p1 transposed
        kernel W (in, out, 4): nearest up-sampling then V gives y[2m] = V0 x[m-1] + (V1 + V2) x[m] and
        y[2m+1] = (V0 + V1) x[m] + V2 x[m+1], and the transposed layer gives y[2m] = W1 x[m] + W3 x[m-1] and
        y[2m+1] = W0 x[m+1] + W2 x[m]; so W0 = V2, W1 = V1 + V2, W2 = V0 + V1, W3 = V0 (boundaries included). Biases
        become 0. Training then moves the four taps freely, as in the paper's layer.
        """
        if self.upsample not in TRANSPOSED_TYPES:
            raise ValueError(
                f"decoder_init='icnr' initialises the transposed layers; got decoder_upsample={self.upsample!r}"
            )
        for m in self.net.modules():
            if isinstance(m, nn.ConvTranspose1d):
                assert m.kernel_size == (4,) and m.stride == (2,) and m.padding == (1,), f"{m=}"
                v = torch.randn(m.out_channels, m.in_channels, 3, generator=generator) * std
                v = v.to(device=m.weight.device, dtype=m.weight.dtype).transpose(0, 1)  # (in, out, 3)
                m.weight.copy_(
                    torch.stack([v[..., 2], v[..., 1] + v[..., 2], v[..., 0] + v[..., 1], v[..., 0]], -1)
                )
                if m.bias is not None:
                    m.bias.zero_()


class TemporalFilter(nn.Module):
    """A fixed FIR filter over time, the same for every channel: (B, C, L) -> (B, C, L), edges replicated
    (len(taps) // 2 frames before, the rest after). No parameters, nothing in the state_dict.

    `binomial_blur()`, [1, 2, 1] / 4: gain 1 at DC, 0.5 at a period of 4 frames, 0 at a period of 2 (an anti-alias
    after a stride-2 up-sampling). `TemporalFilter([1 / k] * k)`: a moving average, gain 0 at periods k, k / 2, ...
    """

    def __init__(self, taps: Sequence[float]) -> None:
        super().__init__()
        if len(taps) < 1:
            raise ValueError("a temporal filter needs at least one tap")
        self.register_buffer("kernel", torch.tensor([[list(map(float, taps))]]), persistent=False)
        self.pad = (len(taps) // 2, len(taps) - 1 - len(taps) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels, width = x.shape[1], self.kernel.shape[2]
        padded = F.pad(x, self.pad, mode="replicate") if width > 1 else x
        return F.conv1d(padded, self.kernel.to(x.dtype).expand(channels, 1, width), groups=channels)


def binomial_blur() -> TemporalFilter:
    return TemporalFilter((0.25, 0.5, 0.25))


def _upsample2x(in_ch: int, out_ch: int, kind: UpsampleType) -> nn.Module:
    """(B, in_ch, L) -> (B, out_ch, 2L)."""
    if kind == "transposed":
        return nn.ConvTranspose1d(in_ch, out_ch, 4, stride=2, padding=1)
    if kind == "transposed_blur":
        return nn.Sequential(nn.ConvTranspose1d(in_ch, out_ch, 4, stride=2, padding=1), binomial_blur())
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv1d(in_ch, out_ch, 3, padding=1))


class RegnetPostnet(nn.Module):
    """Tacotron-2 postnet: (B, n_mels, L) -> residual (B, n_mels, L); tanh after every conv but the last."""

    def __init__(self, *, n_mels: int, channels: int, num_convs: int, kernel_size: int) -> None:
        super().__init__()
        if num_convs < 2:
            raise ValueError(f"postnet_convs must be >= 2, got {num_convs}")
        dims = [n_mels] + [channels] * (num_convs - 1) + [n_mels]
        self.convs = nn.ModuleList(_conv_bn(dims[i], dims[i + 1], kernel_size) for i in range(num_convs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs[:-1]:
            x = torch.tanh(conv(x))
        return self.convs[-1](x)


class RegnetGenerator(nn.Module):
    """REGNET generator: visual features (+ real mel while training) -> mel spectrogram.

    forward(visual (B, T, visual_dim), real_mel (B, n_mels, 4T) | None, noise (B, noise_dim) | None)
    -> RegnetOutput(mel_decoder (B, n_mels, 4T), mel_postnet (B, n_mels, 4T)).

    Any T >= 1 is accepted (`num_frames` / `mel_frames` record the training window, 215 / 860 in the paper),
    so a model trained on 10 s clips can generate longer ones.
    """

    def __init__(
        self,
        *,
        visual_dim: int,
        noise_dim: int = 512,
        encoder_channels: int = 2048,
        encoder_convs: int = 3,
        encoder_kernel_size: int = 5,
        lstm_hidden: int = 512,
        lstm_layers: int = 2,
        encoder_out: int = 1024,
        aux_type: AuxType = "lstm_last",
        aux_dim: int = 32,
        aux_sample_rate: int = 32,
        n_mels: int = 80,
        decoder_channels: int = 512,
        postnet_channels: int = 512,
        postnet_convs: int = 5,
        postnet_kernel_size: int = 5,
        dropout: float = 0.5,
        num_frames: int = 215,
        mel_frames: int = 860,
        decoder_upsample: UpsampleType = "transposed",
        decoder_init: DecoderInit = "default",
        output_bias: bool = False,
        output_bias_init: float = 0.0,
        output_smoothing: int = 1,
        aux_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if decoder_init not in DECODER_INITS:
            raise ValueError(f"decoder_init must be one of {DECODER_INITS}, got {decoder_init!r}")
        if aux_type not in AUX_TYPES:
            raise ValueError(f"aux_type must be one of {AUX_TYPES}, got {aux_type!r}")
        if aux_type != "none" and aux_dim <= 0:
            raise ValueError(f"aux_dim must be positive for aux_type={aux_type!r}, got {aux_dim}")
        if mel_frames != MEL_FRAMES_PER_VIDEO_FRAME * num_frames:
            raise ValueError(
                f"mel_frames must be 4 x num_frames (the decoder up-samples 4x), got {mel_frames=} {num_frames=}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if not 0.0 <= aux_dropout <= 1.0:
            raise ValueError(f"aux_dropout must be a probability in [0, 1], got {aux_dropout}")
        # aux_dropout p (not in the paper): in training, each clip's regularizer output is zeroed with probability
        # p, so the decoder also learns to sound right from vision alone, as it must at generation, where the
        # regularizer is zero. With p = 0 (the paper) it only ever sees the real audio's code while training and
        # generates far below the real level and noise floor without it (docs/results.md, issue 13 item 4).
        self.aux_dropout = float(aux_dropout)
        self.visual_dim = visual_dim
        self.noise_dim = noise_dim
        self.n_mels = n_mels
        self.aux_type = aux_type
        self.aux_dim = 0 if aux_type == "none" else aux_dim
        self.num_frames = num_frames
        self.mel_frames = mel_frames

        self.encoder = RegnetEncoder(
            visual_dim=visual_dim,
            noise_dim=noise_dim,
            channels=encoder_channels,
            num_convs=encoder_convs,
            kernel_size=encoder_kernel_size,
            lstm_hidden=lstm_hidden,
            lstm_layers=lstm_layers,
            out_dim=encoder_out,
            dropout=dropout,
        )
        self.auxiliary: nn.Module | None
        if aux_type == "lstm_last":
            self.auxiliary = AuxLstmLast(n_mels=n_mels, aux_dim=aux_dim)
        elif aux_type == "lstm_sample":
            self.auxiliary = AuxLstmSample(n_mels=n_mels, aux_dim=aux_dim, sample_rate=aux_sample_rate)
        elif aux_type == "conv":
            self.auxiliary = AuxConv(n_mels=n_mels, aux_dim=aux_dim)
        else:
            self.auxiliary = None
        self.decoder = RegnetDecoder(
            in_dim=encoder_out + self.aux_dim,
            channels=decoder_channels,
            n_mels=n_mels,
            upsample=decoder_upsample,
        )
        self.postnet = RegnetPostnet(
            n_mels=n_mels, channels=postnet_channels, num_convs=postnet_convs, kernel_size=postnet_kernel_size
        )
        # output_bias: a learned per-band offset on the decoder's mel (so on both outputs), starting at
        # output_bias_init. The decoder's last conv already has a per-band bias starting at 0, which Adam moves by
        # about lr a step; at the demo's lr and length it does not reach the data's level (issue 13, item 4).
        # Not in the paper; absent (no parameter) by default.
        self.output_bias: nn.Parameter | None = (
            nn.Parameter(torch.full((n_mels,), float(output_bias_init))) if output_bias else None
        )
        # output_smoothing k > 1: a fixed k-frame moving average over time on both outputs (training and
        # generation). k = 4, the decoder's up-sampling factor, has gain 0 at the transposed layers' periods 2 and
        # 4: their ripple cannot reach the output, whatever the weights. Not in the paper (k = 1: none).
        if not (isinstance(output_smoothing, int) and output_smoothing >= 1):
            raise ValueError(f"output_smoothing must be an integer >= 1 (frames), got {output_smoothing!r}")
        self.output_smoothing = output_smoothing
        self.smoothing = (
            TemporalFilter([1.0 / output_smoothing] * output_smoothing) if output_smoothing > 1 else None
        )
        init_regnet_weights(self)
        if decoder_init == "icnr":
            self.decoder.init_icnr()

    def regularizer(
        self, real_mel: torch.Tensor | None, batch: int, num_frames: int, ref: torch.Tensor
    ) -> torch.Tensor:
        """The audio forwarding regularizer's output (B, T, aux_dim); zeros unless training with a real mel."""
        if self.auxiliary is None or not self.training or real_mel is None:
            return ref.new_zeros(batch, num_frames, self.aux_dim)
        aux = self.auxiliary(real_mel, num_frames)
        if self.aux_dropout > 0.0:
            keep = torch.rand(batch, 1, 1, device=aux.device) >= self.aux_dropout
            aux = aux * keep.to(aux.dtype)
        return aux

    def forward(
        self,
        visual: torch.Tensor,
        real_mel: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> RegnetOutput:
        _check_visual(visual, self.visual_dim)
        B, T, _ = visual.shape
        if real_mel is not None:
            _check_mel(real_mel, "real_mel", B, self.n_mels, T)
        if noise is None:
            noise = torch.randn(B, self.noise_dim, device=visual.device, dtype=visual.dtype)
        elif tuple(noise.shape) != (B, self.noise_dim):
            raise ValueError(
                f"noise must be (B, noise_dim) = {(B, self.noise_dim)}, got {tuple(noise.shape)}"
            )

        encoded = self.encoder(visual, noise)  # (B, T, encoder_out)
        aux = self.regularizer(real_mel, B, T, encoded)  # (B, T, aux_dim)
        mel_decoder = self.decoder(torch.cat([encoded, aux], dim=2))  # (B, n_mels, 4T)
        if self.output_bias is not None:
            mel_decoder = mel_decoder + self.output_bias[:, None]
        mel_postnet = mel_decoder + self.postnet(mel_decoder)
        if self.smoothing is not None:
            mel_decoder, mel_postnet = self.smoothing(mel_decoder), self.smoothing(mel_postnet)
        assert mel_postnet.shape == (B, self.n_mels, MEL_FRAMES_PER_VIDEO_FRAME * T), f"{mel_postnet.shape=}"
        return RegnetOutput(mel_decoder=mel_decoder, mel_postnet=mel_postnet)

    # SoundModel (v2s_models.interface)
    def model_inputs(self) -> ModelInputs:
        return ModelInputs(
            visual_dim=self.visual_dim, n_mels=self.n_mels, mel_frames_per_step=MEL_FRAMES_PER_VIDEO_FRAME
        )

    def start_video(
        self,
        *,
        generator: torch.Generator,
        reference_mel: torch.Tensor | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """One noise vector z (1, noise_dim) for every window of a video (drawn on `generator`'s device)."""
        del reference_mel, temperature  # REGNET takes neither
        device = next(self.parameters()).device
        return torch.randn(1, self.noise_dim, generator=generator).to(device)

    def generate_windows(
        self, windows: torch.Tensor, context: torch.Tensor, *, num_samples: int | None = None
    ) -> torch.Tensor:
        return self.generate(windows, noise=context.expand(windows.shape[0], -1))

    @torch.no_grad()
    def generate(self, visual: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Mel from vision alone (eval semantics, no gradients): (B, T, visual_dim) -> (B, n_mels, 4T).

        The module's train/eval mode is restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            return self.forward(visual, None, noise).mel_postnet
        finally:
            self.train(was_training)


class RegnetDiscriminator(nn.Module):
    """REGNET patch discriminator: (visual (B, T, visual_dim), mel (B, n_mels, 4T)) -> (B, 1, T - 2).

    The visual features are up-sampled 4x to the mel's frame rate and concatenated with a 1x1 projection of
    the mel; the outputs are per-patch probabilities (sigmoid), each patch seeing 34 mel frames.
    """

    def __init__(
        self,
        *,
        visual_dim: int,
        n_mels: int = 80,
        visual_hidden: int = 1024,
        branch_channels: int = 64,
        channels: tuple[int, int, int] = (256, 512, 1024),
    ) -> None:
        super().__init__()
        self.visual_dim = visual_dim
        self.n_mels = n_mels
        self.visual_up = nn.Sequential(
            nn.ConvTranspose1d(visual_dim, visual_hidden, 4, stride=2, padding=1),  # T -> 2T
            nn.BatchNorm1d(visual_hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.ConvTranspose1d(visual_hidden, branch_channels, 4, stride=2, padding=1),  # 2T -> 4T
        )
        self.mel_proj = nn.Conv1d(n_mels, branch_channels, 1)
        c1, c2, c3 = channels
        self.down = nn.Sequential(
            nn.Conv1d(2 * branch_channels, c1, 4, stride=2, padding=1),  # 4T -> 2T
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(c1, c2, 4, stride=2, padding=1),  # 2T -> T
            nn.BatchNorm1d(c2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(c2, c3, 4, stride=1, padding=1),  # T -> T - 1
            nn.BatchNorm1d(c3),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv1d(c3, 1, 4, stride=1, padding=1),  # T - 1 -> T - 2
        )
        init_regnet_weights(self)

    def forward(self, visual: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        return self.forward_many(visual, [mel])[0]

    def forward_many(self, visual: torch.Tensor, mels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Judge several mels (e.g. real and generated) against the same visual features.

        Equal to `[self(visual, mel) for mel in mels]` (each mel keeps its own BatchNorm batch statistics),
        but the visual branch, the largest layer, runs once: ~5 % of a paper-size training step. Only its
        BatchNorm running statistics differ (one update instead of one per mel); the discriminator is never
        run in eval mode.
        """
        _check_visual(visual, self.visual_dim)
        B, T, _ = visual.shape
        if T < 3:
            raise ValueError(
                f"the discriminator needs at least 3 video frames, got visual shape {tuple(visual.shape)}"
            )
        for i, mel in enumerate(mels):
            _check_mel(mel, f"mel[{i}]" if len(mels) > 1 else "mel", B, self.n_mels, T)
        visual_up = self.visual_up(visual.transpose(1, 2))  # (B, branch, 4T)
        outs = []
        for mel in mels:
            x = torch.cat([visual_up, self.mel_proj(mel)], dim=1)  # (B, 2 * branch, 4T)
            out = torch.sigmoid(self.down(x))
            assert out.shape == (B, 1, T - 2), f"{out.shape=}"
            outs.append(out)
        return outs


__all__ = [
    "AUX_TYPES",
    "DECODER_INITS",
    "RegnetDiscriminator",
    "RegnetGenerator",
    "RegnetOutput",
]
