"""PANNs Cnn14 at 16 kHz (Kong et al. 2020, "PANNs: Large-Scale Pretrained Audio Neural Networks"), as
av-benchmark runs it: `Cnn14(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50,
fmax=8000, classes_num=527)` with the checkpoint `Cnn14_16k_mAP=0.438.pth`.

Front end (torchlibrosa's `Spectrogram` + `LogmelFilterBank`, frozen, stored in the checkpoint):
  STFT as two 1-D convolutions (real and imaginary DFT rows times a periodic Hann window of 512), input
  reflect-padded by 256 (center=True), hop 160 -> power |X|^2 (B, 1, frames, 257) -> times the librosa Slaney
  mel matrix (257, 64), 50-8000 Hz -> 10 log10(max(., 1e-10)) (ref 1, no top_db).
Network: BatchNorm over the 64 mel bins (bn0), six ConvBlocks (two 3x3 conv without bias, each BN + ReLU;
2x2 average pool after blocks 1-5, none after 6), channels 64-128-256-512-1024-2048, mean over mel, then
max + mean over time, fc1 + ReLU = the 2048-d embedding ("2048"), fc_audioset = the 527 logits ("logits").
Dropout and SpecAugment are training-only and absent here. Key names are the checkpoint's
(`spectrogram_extractor.stft.conv_real.weight`, `logmel_extractor.melW`, `bn0.*`, `conv_block1.conv1.weight`,
`conv_block1.bn1.*`, ..., `fc1.*`, `fc_audioset.*`).
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

PANNS_SR = 16000
OFFICIAL_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
STANDIN_CHANNELS: tuple[int, ...] = (8, 16, 16, 32, 32, 64)


class _StftConv(nn.Module):
    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        window = librosa.filters.get_window("hann", n_fft, fftbins=True)
        n, k = np.arange(n_fft), np.arange(n_fft // 2 + 1)
        angle = 2.0 * np.pi * np.outer(k, n) / n_fft  # (freq, n)
        real = torch.tensor(np.cos(angle) * window, dtype=torch.float32)[:, None, :]
        imag = torch.tensor(-np.sin(angle) * window, dtype=torch.float32)[:, None, :]
        self.conv_real = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop_length, bias=False)
        self.conv_imag = nn.Conv1d(1, n_fft // 2 + 1, n_fft, stride=hop_length, bias=False)
        self.conv_real.weight = nn.Parameter(real, requires_grad=False)
        self.conv_imag.weight = nn.Parameter(imag, requires_grad=False)


class Spectrogram(nn.Module):
    """Power spectrogram (B, T) -> (B, 1, frames, n_fft / 2 + 1), center=True with reflect padding."""

    def __init__(self, *, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        self.stft = _StftConv(n_fft, hop_length)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave[:, None, :], (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        real = self.stft.conv_real(x)[:, None].transpose(2, 3)  # (B, 1, frames, freq)
        imag = self.stft.conv_imag(x)[:, None].transpose(2, 3)
        return real**2 + imag**2


class LogmelFilterBank(nn.Module):
    """(B, 1, frames, freq) power -> (B, 1, frames, n_mels) in dB (10 log10, amin 1e-10, ref 1)."""

    def __init__(self, *, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> None:
        super().__init__()
        mel = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).T
        self.melW = nn.Parameter(torch.tensor(mel, dtype=torch.float32), requires_grad=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(power @ self.melW, min=1e-10))


class ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias) with BN and ReLU, then average pooling."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    """Cnn14: waveform (B, T) at `sample_rate` -> (embedding (B, channels[-1]), logits (B, classes))."""

    def __init__(
        self,
        *,
        sample_rate: int = PANNS_SR,
        window_size: int = 512,
        hop_size: int = 160,
        mel_bins: int = 64,
        fmin: float = 50.0,
        fmax: float = 8000.0,
        classes_num: int = 527,
        channels: Sequence[int] = OFFICIAL_CHANNELS,
    ) -> None:
        super().__init__()
        if len(channels) != 6:
            raise ValueError(f"Cnn14 has 6 conv blocks, got channels {tuple(channels)}")
        self.spectrogram_extractor = Spectrogram(n_fft=window_size, hop_length=hop_size)
        self.logmel_extractor = LogmelFilterBank(
            sr=sample_rate, n_fft=window_size, n_mels=mel_bins, fmin=fmin, fmax=fmax
        )
        self.bn0 = nn.BatchNorm2d(mel_bins)
        widths = (1, *channels)
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
        self.fc1 = nn.Linear(channels[-1], channels[-1])
        self.fc_audioset = nn.Linear(channels[-1], classes_num)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert wave.ndim == 2, f"Cnn14 expects (B, T), got {tuple(wave.shape)}"
        x = self.logmel_extractor(self.spectrogram_extractor(wave))  # (B, 1, frames, mels)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            x = getattr(self, f"conv_block{i + 1}")(x, (2, 2) if i < 5 else (1, 1))
        x = x.mean(dim=3)  # (B, C, frames)
        x = x.max(dim=2).values + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))  # (B, C)
        return embedding, self.fc_audioset(embedding)


def cnn14_16k() -> Cnn14:
    """The av-benchmark configuration (2048-d embedding, 527 AudioSet classes)."""
    return Cnn14()


def cnn14_16k_standin() -> Cnn14:
    """A test-sized Cnn14 (the same front end and layer pattern, narrow channels) for CI stand-in weights."""
    return Cnn14(channels=STANDIN_CHANNELS)


def channels_of(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """The six block widths of a Cnn14 checkpoint, read from `conv_block{i}.conv1.weight` shapes."""
    try:
        return tuple(int(state[f"conv_block{i}.conv1.weight"].shape[0]) for i in range(1, 7))
    except KeyError as missing:
        raise ValueError(f"not a Cnn14 checkpoint: no {missing.args[0]}") from None
