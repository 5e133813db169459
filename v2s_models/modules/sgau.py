"""Self-Gated Acoustic Unit (SGAU) and the random resampling transform R[.] (VarietySound, Cui et al.).

Appendix A, eq. 8-9 of the paper, with x_i the feature input and c_i the condition input:

    x_o = R[ tanh(W_s * c_i + V_i * x_i)  (.)  sigmoid(W_o * c_i + V_i * x_i) ]      (8)
    c_o = R[ W_s * c_i ]                                                             (9)

V_i is the input gate (Conv1d k5 -> Conv1d k7, 512 filters, then InstanceNorm), W_o the output gate (Conv1d
k3, 512, GroupNorm) and W_s the skip gate (Conv1d k5, 512, GroupNorm); sizes from Table 3.

Choices the paper leaves open (ours, stated here once):
- A leaky ReLU sits between the two input-gate convolutions: without a non-linearity two stacked
  convolutions compose to a single linear convolution, and the paper calls them "2-layer".
- GroupNorm uses 8 groups (64 channels a group at 512 filters); the paper gives no number.
- One resampling plan is drawn per unit and applied to both outputs, so x_o and c_o stay aligned in time for
  the next unit (the equations apply R to both; applying two independent draws would misalign them).

Random resampling R[.]: the paper describes it as "segmenting, expand-shrink transforming and random
swapping of the tensor in the time sequence". We follow SpeechSplit (Qian et al. 2020, which the paper cites
for the idea) for the segment lengths (uniform 19-32 frames) and stretch factors (uniform 0.5-1.5), then
shuffle the segments. The output keeps the input length: the stretched segment lengths are rescaled so they
add up to the input length, which keeps batches rectangular; only the relative stretch between segments is
random. Each sample in a batch gets its own plan. Interpolation is linear and stays inside each source
segment, so no frame from one segment leaks into another and every output value lies between the input's
extremes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["ResampleSpec", "SelfGatedAcousticUnit", "apply_resample", "random_resample", "resample_positions"]


class ResampleSpec:
    """Parameters of the random resampling transform R[.] (segment lengths in frames, stretch factors)."""

    __slots__ = ("min_segment", "max_segment", "min_scale", "max_scale")

    def __init__(
        self, *, min_segment: int = 19, max_segment: int = 32, min_scale: float = 0.5, max_scale: float = 1.5
    ) -> None:
        if not 1 <= min_segment <= max_segment:
            raise ValueError(f"need 1 <= min_segment <= max_segment, got {min_segment=}, {max_segment=}")
        if not 0.0 < min_scale <= max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {min_scale=}, {max_scale=}")
        self.min_segment = int(min_segment)
        self.max_segment = int(max_segment)
        self.min_scale = float(min_scale)
        self.max_scale = float(max_scale)

    def __repr__(self) -> str:
        return (
            f"ResampleSpec(min_segment={self.min_segment}, max_segment={self.max_segment}, "
            f"min_scale={self.min_scale}, max_scale={self.max_scale})"
        )


def resample_positions(
    batch: int, length: int, spec: ResampleSpec, *, generator: torch.Generator | None = None
) -> Tensor:
    """Draws one resampling plan per sample: (batch, length) float64 source positions in [0, length - 1].

    Vectorised over the batch: every sample draws the same (maximum) number of segments; segments that start
    beyond `length` get zero length and vanish from the plan.
    """
    if length < 1:
        raise ValueError(f"random resampling needs at least one frame, got {length=}")
    n_max = length // spec.min_segment + 1  # enough to cover `length` even with minimum-length segments
    seg_len = torch.randint(spec.min_segment, spec.max_segment + 1, (batch, n_max), generator=generator)
    ends = torch.cumsum(seg_len, 1)
    seg_start = ends - seg_len
    seg_len = (ends.clamp(max=length) - seg_start).clamp(min=0)  # trim at `length`; later segments -> 0

    scale = torch.rand(batch, n_max, generator=generator, dtype=torch.float64)
    stretched = seg_len.double() * (spec.min_scale + scale * (spec.max_scale - spec.min_scale))
    # Integer target lengths adding up to `length` exactly (rounded cumulative boundaries).
    bounds = torch.round(torch.cumsum(stretched, 1) / stretched.sum(1, keepdim=True) * length).long()
    target_len = torch.diff(bounds, dim=1, prepend=torch.zeros(batch, 1, dtype=torch.long))

    order = torch.argsort(torch.rand(batch, n_max, generator=generator), dim=1)  # a random shuffle per sample
    target_len = target_len.gather(1, order)
    seg_start = seg_start.gather(1, order)
    seg_len = seg_len.gather(1, order)

    out_end = torch.cumsum(target_len, 1)  # (B, n_max), non-decreasing
    t = torch.arange(length).expand(batch, length).contiguous()
    seg = torch.searchsorted(out_end, t, right=True)  # (B, L): the output segment holding each position
    tgt = target_len.gather(1, seg).double()  # >= 1: zero-length segments are never selected
    src_start = seg_start.gather(1, seg).double()
    src_len = seg_len.gather(1, seg).double()
    j = (t - (out_end.gather(1, seg) - target_len.gather(1, seg))).double()
    # Half-pixel-centred mapping (as F.interpolate with align_corners=False), kept inside the source segment.
    pos = src_start + (j + 0.5) * (src_len / tgt) - 0.5
    return torch.minimum(torch.maximum(pos, src_start), src_start + src_len - 1.0)


def apply_resample(x: Tensor, positions: Tensor) -> Tensor:
    """Reads x (B, C, L) at fractional time positions (B, L) with linear interpolation -> (B, C, L)."""
    assert x.dim() == 3 and positions.shape == (x.shape[0], x.shape[2]), f"{x.shape=} {positions.shape=}"
    pos = positions.to(device=x.device)
    lo = pos.floor()
    frac = (pos - lo).to(x.dtype).unsqueeze(1)  # (B, 1, L)
    lo_idx = lo.long()
    hi_idx = pos.ceil().long()  # never leaves the segment: positions are clamped to its last frame
    channels = x.shape[1]
    x_lo = x.gather(2, lo_idx.unsqueeze(1).expand(-1, channels, -1))
    x_hi = x.gather(2, hi_idx.unsqueeze(1).expand(-1, channels, -1))
    return x_lo * (1.0 - frac) + x_hi * frac


def random_resample(x: Tensor, spec: ResampleSpec, *, generator: torch.Generator | None = None) -> Tensor:
    """R[x]: segments x (B, C, L) in time, stretches each piece randomly, shuffles them -> (B, C, L)."""
    if x.dim() != 3:
        raise ValueError(f"random_resample expects (B, C, L), got shape {tuple(x.shape)}")
    return apply_resample(x, resample_positions(x.shape[0], x.shape[2], spec, generator=generator))


class SelfGatedAcousticUnit(nn.Module):
    """One SGAU (eq. 8-9): (x_i, c_i) each (B, C_in, L) -> (x_o, c_o) each (B, channels, L).

    With `spec=None` R[.] is the identity (the plan-free unit, used when resampling is switched off).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        channels: int = 512,
        input_kernels: tuple[int, int] = (5, 7),
        output_kernel: int = 3,
        skip_kernel: int = 5,
        groups: int = 8,
        leaky_slope: float = 0.2,
    ) -> None:
        super().__init__()
        for k in (*input_kernels, output_kernel, skip_kernel):
            if k % 2 != 1:
                raise ValueError(f"SGAU kernels must be odd to keep the length, got {k}")
        if channels % groups != 0:
            raise ValueError(f"SGAU channels ({channels}) must be divisible by GroupNorm groups ({groups})")
        k1, k2 = input_kernels
        self.in_channels = in_channels
        self.channels = channels
        self.input_gate = nn.Sequential(
            nn.Conv1d(in_channels, channels, k1, padding=k1 // 2),
            nn.LeakyReLU(leaky_slope),
            nn.Conv1d(channels, channels, k2, padding=k2 // 2),
            nn.InstanceNorm1d(channels, affine=True),
        )
        self.output_gate = nn.Sequential(
            nn.Conv1d(in_channels, channels, output_kernel, padding=output_kernel // 2),
            nn.GroupNorm(groups, channels),
        )
        self.skip_gate = nn.Sequential(
            nn.Conv1d(in_channels, channels, skip_kernel, padding=skip_kernel // 2),
            nn.GroupNorm(groups, channels),
        )

    def forward(
        self,
        x: Tensor,
        c: Tensor,
        *,
        spec: ResampleSpec | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        assert x.shape == c.shape and x.shape[1] == self.in_channels, f"{x.shape=} {c.shape=}"
        v = self.input_gate(x)  # (B, channels, L)
        s = self.skip_gate(c)
        o = self.output_gate(c)
        x_out = torch.tanh(s + v) * torch.sigmoid(o + v)
        if spec is None:
            return x_out, s
        positions = resample_positions(x.shape[0], x.shape[2], spec, generator=generator)
        return apply_resample(x_out, positions), apply_resample(s, positions)
