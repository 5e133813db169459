"""Feed-forward Transformer (FFT) block and sinusoidal positional encoding (FastSpeech 2 style).

An FFT block is multi-head self-attention followed by a 1D-convolutional position-wise network; each
sub-layer is followed by dropout, a residual connection and LayerNorm (post-norm, as in FastSpeech 2 and the
Transformer). The convolutional network is Conv1d(k) -> ReLU -> Conv1d(1), FastSpeech 2's layout;
VarietySound (Table 3) sets hidden 512, 2 heads, kernel 9, filter 512.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FFTBlock", "MultiHeadSelfAttention", "SinusoidalPositionalEncoding", "sinusoidal_table"]


def sinusoidal_table(length: int, dim: int, *, device: torch.device | None = None) -> Tensor:
    """Transformer sinusoid table (length, dim): sin on even channels, cos on odd ones."""
    if dim % 2 != 0:
        raise ValueError(f"sinusoidal positional encoding needs an even dimension, got {dim}")
    position = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    inv_freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq)
    return table


class SinusoidalPositionalEncoding(nn.Module):
    """Adds a sinusoid table to x (B, L, dim) -> (B, L, dim); computed on the fly, so any length works."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        if dim % 2 != 0:
            raise ValueError(f"sinusoidal positional encoding needs an even dimension, got {dim}")
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        assert x.dim() == 3 and x.shape[2] == self.dim, f"{x.shape=}"
        return x + sinusoidal_table(x.shape[1], self.dim, device=x.device).to(x.dtype)


class MultiHeadSelfAttention(nn.Module):
    """Self-attention: x (B, L, dim), optional key_padding_mask (B, L), True = padding -> (B, L, dim)."""

    def __init__(self, *, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"attention dim ({dim}) must be divisible by the number of heads ({heads})")
        self.dim = dim
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        b, length, dim = x.shape
        assert dim == self.dim, f"{x.shape=}"
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        mask = None
        if key_padding_mask is not None:
            assert key_padding_mask.shape == (b, length), f"{key_padding_mask.shape=}"
            mask = ~key_padding_mask[:, None, None, :]  # (B, 1, 1, L) True = attend
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )  # (B, heads, L, head_dim)
        return self.proj(out.transpose(1, 2).reshape(b, length, dim))


class FFTBlock(nn.Module):
    """One FFT block: x (B, L, dim) -> (B, L, dim); padded positions (mask True) are zeroed."""

    def __init__(
        self, *, dim: int = 512, heads: int = 2, kernel: int = 9, filter_size: int = 512, dropout: float = 0.2
    ) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"FFT block kernel must be odd to keep the length, got {kernel}")
        self.dim = dim
        self.attention = MultiHeadSelfAttention(dim=dim, heads=heads, dropout=dropout)
        self.attention_norm = nn.LayerNorm(dim)
        self.conv1 = nn.Conv1d(dim, filter_size, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(filter_size, dim, 1)
        self.conv_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        assert x.dim() == 3 and x.shape[2] == self.dim, f"{x.shape=}"
        keep = None if key_padding_mask is None else (~key_padding_mask).unsqueeze(-1).to(x.dtype)
        x = self.attention_norm(x + self.dropout(self.attention(x, key_padding_mask)))
        if keep is not None:
            x = x * keep
        y = self.conv2(F.relu(self.conv1(x.transpose(1, 2)))).transpose(1, 2)
        x = self.conv_norm(x + self.dropout(y))
        if keep is not None:
            x = x * keep
        return x
