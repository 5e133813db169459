"""PaSST-S (Koutini et al. 2022, "Efficient Training of Audio Transformers with Patchout") as av-benchmark runs
it: hear21passt's `get_basic_model(mode="all")`, i.e. `passt_s_swa_p16_128_ap476` (checkpoint
`passt-s-f128-p16-s10-ap.476-swa.pt`), 32 kHz, clips zero-padded or cut to 10 s, eval mode.

Front end (hear21passt `AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024,
fmin=0, fmax=None -> 15000)`, no augmentation at eval):
  pre-emphasis y[n] = x[n + 1] - 0.97 x[n] (T - 1 samples) -> `torch.stft` n_fft 1024, hop 320, symmetric
  Hann window of 800 centred in 1024, center=True (reflect) -> power -> Kaldi mel banks (128 triangles,
  equally spaced in mel = 1127 ln(1 + f / 700) from 0 to 15000 Hz over the 512 bins k * 31.25 Hz, the Nyquist
  bin given weight 0) -> ln(mel + 1e-5) -> (x + 4.5) / 5: (B, 128, frames), 1000 frames for 10 s.
Network (a DeiT-style ViT with distillation token): conv patch embedding 16x16 stride 10 -> (B, 768, 12, 99)
+ time and frequency positional embeddings (time cut to the input's patches) -> flattened frequency-major,
[cls + new_pos_embed[0], dist + new_pos_embed[1], patches] -> 12 pre-norm blocks (LayerNorm eps 1e-6,
12-head attention with qkv bias, GELU MLP 3072) -> LayerNorm -> features = (cls + dist) / 2 (768-d,
av-benchmark's PaSST embedding) -> head = LayerNorm (eps 1e-5) + Linear 527 (the logits). `head_dist` is in
the checkpoint and loaded (strictly) but, as in the reference's forward, unused.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

PASST_SR = 32000
PASST_SAMPLES = 320000  # 10 s
N_FFT, WIN, HOP, N_MELS, FMAX = 1024, 800, 320, 128, 15000.0
OFFICIAL_DIMS = {"embed_dim": 768, "depth": 12}
STANDIN_DIMS = {"embed_dim": 64, "depth": 2}
HEAD_DIM = 64  # attention heads = embed_dim / 64 (12 for PaSST-S)


def kaldi_mel_banks(
    n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = PASST_SR, fmin: float = 0.0, fmax: float = FMAX
) -> torch.Tensor:
    """Kaldi's triangular mel filters (n_mels, n_fft / 2 + 1), the last (Nyquist) column zero, float32."""

    def mel(hz: torch.Tensor | float) -> torch.Tensor:
        return 1127.0 * torch.log(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)

    delta = (mel(fmax) - mel(fmin)) / (n_mels + 1)
    band = torch.arange(n_mels, dtype=torch.float64)[:, None]
    left, centre, right = (
        mel(fmin) + band * delta,
        mel(fmin) + (band + 1) * delta,
        mel(fmin) + (band + 2) * delta,
    )
    bins = mel(torch.arange(n_fft // 2, dtype=torch.float64) * sr / n_fft)[None, :]
    up, down = (bins - left) / (centre - left), (right - bins) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1)).float()


class MelFrontEnd(nn.Module):
    """Waveform (B, T) at 32 kHz -> normalised log mel (B, 128, 1 + (T - 1) // 320)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN, periodic=False), persistent=False)
        self.register_buffer("mel_basis", kaldi_mel_banks(), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave[:, 1:] - 0.97 * wave[:, :-1]
        spec = torch.stft(
            x, N_FFT, hop_length=HOP, win_length=WIN, window=self.window, center=True, return_complex=True
        )
        power = spec.real**2 + spec.imag**2  # (B, 513, frames)
        return (torch.log(self.mel_basis @ power + 1e-5) + 4.5) / 5.0


class PatchEmbed(nn.Module):
    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=16, stride=10)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.attn, self.mlp = Attention(dim, heads), Mlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PaSST(nn.Module):
    """Normalised log mel (B, 1, 128, frames) -> (features (B, embed_dim), logits (B, classes))."""

    def __init__(
        self, *, embed_dim: int = 768, depth: int = 12, classes: int = 527, grid: tuple[int, int] = (12, 99)
    ) -> None:
        super().__init__()
        self.patch_embed = PatchEmbed(embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.dist_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.new_pos_embed = nn.Parameter(torch.zeros(1, 2, embed_dim))
        self.freq_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid[0], 1))
        self.time_new_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, 1, grid[1]))
        self.blocks = nn.Sequential(*[Block(embed_dim, max(1, embed_dim // HEAD_DIM)) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Linear(embed_dim, classes))
        self.head_dist = nn.Linear(embed_dim, classes)
        for p in (
            self.cls_token,
            self.dist_token,
            self.new_pos_embed,
            self.freq_new_pos_embed,
            self.time_new_pos_embed,
        ):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.patch_embed.proj(mel)  # (B, E, F, T)
        b, _, _, t = x.shape
        assert t <= self.time_new_pos_embed.shape[-1], (
            f"{t} time patches, the model has {self.time_new_pos_embed.shape[-1]}"
        )
        x = x + self.time_new_pos_embed[..., :t] + self.freq_new_pos_embed
        x = x.flatten(2).transpose(1, 2)  # (B, F * T, E)
        cls = self.cls_token.expand(b, -1, -1) + self.new_pos_embed[:, :1]
        dist = self.dist_token.expand(b, -1, -1) + self.new_pos_embed[:, 1:]
        x = self.norm(self.blocks(torch.cat([cls, dist, x], dim=1)))
        features = (x[:, 0] + x[:, 1]) / 2
        return features, self.head(features)


class PaSSTWithFrontEnd(nn.Module):
    """Waveform (B, 320000) at 32 kHz -> (features (B, 768), logits (B, 527)); state-dict keys are the net's."""

    def __init__(self, net: PaSST) -> None:
        super().__init__()
        self.mel = MelFrontEnd()
        self.net = net

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(self.mel(wave)[:, None])


def passt_s() -> PaSST:
    """PaSST-S, patch 16, stride 10, 128 mels x 998 frames (12 x 99 patches), 527 classes."""
    return PaSST(**OFFICIAL_DIMS)


def passt_standin() -> PaSST:
    """A test-sized PaSST (same front end, token layout and patch grid; 64-d, 2 blocks) for CI stand-ins."""
    return PaSST(**STANDIN_DIMS)


def dims_of(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """embed_dim and depth of a PaSST checkpoint, read from its tensors."""
    if "cls_token" not in state:
        raise ValueError("not a PaSST checkpoint: no cls_token")
    depth = 1 + max((int(k.split(".")[1]) for k in state if k.startswith("blocks.")), default=-1)
    return {"embed_dim": int(state["cls_token"].shape[-1]), "depth": depth}


def n_frames(n_samples: int) -> int:
    """Mel frames of a waveform of n_samples (after pre-emphasis, centred STFT): 1000 for 10 s."""
    return 1 + (n_samples - 1) // HOP


def n_time_patches(frames: int) -> int:
    """Time patches of 16 frames at stride 10: 99 for 1000 frames."""
    return math.floor((frames - 16) / 10) + 1
