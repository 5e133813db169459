"""Video encoders of Zhou et al. 2018, "Visual to Sound" (../shared/PAPERS.md section 2, paper section 3).

- `FrameEncoder` (the paper's *Frame* method): each video frame's features are repeated for every coarse
  SampleRNN step that falls inside that frame and concatenated to the coarsest tier's input. A frame spans s =
  ceil(sr_audio / sr_video) audio samples. With the paper's data (159744 samples per 10 s at 15.6 fps) s is
  exactly 1024; with this project's `ZHOU` settings (16000 Hz, 15.6 fps) s = ceil(1025.64) = 1026, and 156
  frames x 1026 = 160056 samples cover the 160000 samples of a 10 s clip. We follow the paper's formula
  (ceil), not the exact timestamp of each sample, so the mapping is the one the paper describes. An optional
  Linear projection of the (4096-d fc6) features may be applied once per video frame before the repetition
  (`proj_dim`); the paper concatenates the raw features (`proj_dim=None`, the paper presets).
- `SeqEncoder` (*Seq*): a GRU over the frame features; its last hidden state (top layer), through a Linear and
  a tanh, initialises the coarsest tier's hidden state. The projection is needed because the encoder's width
  and the tier's (dim, n_rnn) need not match; the tanh keeps the state inside a GRU state's range (-1, 1).
- `FlowEncoder` (*Flow*): a `SeqEncoder` over cat[appearance fc6, optical-flow fc6] per frame.

None of these modules import SampleRNN; they only produce a conditioning sequence or an initial state.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def samples_per_video_frame(sample_rate: float, fps: float) -> int:
    """s = ceil(sr_audio / sr_video), the paper's step; tolerant of float noise (15974.4 / 15.6 = 1024)."""
    if sample_rate <= 0 or fps <= 0:
        raise ValueError(f"sample_rate and fps must be positive, got {sample_rate=}, {fps=}")
    return int(math.ceil(sample_rate / fps - 1e-9))


def coarse_step_frame_index(
    *, start_sample: int, num_steps: int, step_samples: int, samples_per_frame: int, num_frames: int
) -> Tensor:
    """Video-frame index of each coarse step: (num_steps,) long.

    Coarse step j of a chunk predicts the samples [start_sample + j * step_samples, + step_samples); it takes
    the frame that contains its first sample, floor(sample / s). Raises if a step starts past the last frame.
    """
    if start_sample < 0:
        raise ValueError(f"start_sample must be >= 0, got {start_sample}")
    first = torch.arange(num_steps, dtype=torch.long) * step_samples + start_sample
    index = torch.div(first, samples_per_frame, rounding_mode="floor")
    if num_steps > 0 and int(index[-1]) >= num_frames:
        raise ValueError(
            f"visual features cover {num_frames} frames x {samples_per_frame} samples = "
            f"{num_frames * samples_per_frame} samples, but the audio reaches sample "
            f"{start_sample + num_steps * step_samples}; give more frames or fewer samples"
        )
    return index


class FrameEncoder(nn.Module):
    """Zhou's Frame method: per-coarse-step copies of the video frame features.

    visual (B, T_video, visual_dim) -> cond (B, num_steps, out_dim), out_dim = proj_dim or visual_dim.
    """

    def __init__(
        self,
        *,
        visual_dim: int,
        sample_rate: float,
        fps: float,
        step_samples: int,
        proj_dim: int | None = None,
    ) -> None:
        super().__init__()
        if visual_dim <= 0 or step_samples <= 0:
            raise ValueError(
                f"visual_dim and step_samples must be positive, got {visual_dim=}, {step_samples=}"
            )
        self.visual_dim = visual_dim
        self.step_samples = step_samples
        self.samples_per_frame = samples_per_video_frame(sample_rate, fps)
        self.proj: nn.Module = nn.Identity() if proj_dim is None else nn.Linear(visual_dim, proj_dim)
        self.out_dim = visual_dim if proj_dim is None else proj_dim

    def forward(self, visual: Tensor, *, start_sample: int, num_steps: int) -> Tensor:
        """visual (B, T_video, visual_dim); the chunk predicts samples [start_sample, start_sample +
        num_steps * step_samples) of the clip -> (B, num_steps, out_dim)."""
        if visual.dim() != 3 or visual.shape[-1] != self.visual_dim:
            raise ValueError(f"visual must be (B, T_video, {self.visual_dim}), got {tuple(visual.shape)}")
        if num_steps <= 0:
            raise ValueError(f"num_steps must be positive, got {num_steps}")
        index = coarse_step_frame_index(
            start_sample=start_sample,
            num_steps=num_steps,
            step_samples=self.step_samples,
            samples_per_frame=self.samples_per_frame,
            num_frames=visual.shape[1],
        ).to(visual.device)
        # Project the frames a chunk touches once, then repeat: the same result as projecting every copy.
        lo, hi = int(index[0]), int(index[-1]) + 1
        frames = self.proj(visual[:, lo:hi])  # (B, hi - lo, out_dim)
        return frames[:, index - lo]  # (B, num_steps, out_dim)


class SeqEncoder(nn.Module):
    """Zhou's Seq method: GRU over the frame features; its last state initialises the coarsest tier.

    visual (B, T, input_dim) -> h0 (out_layers, B, out_dim) in (-1, 1).
    """

    def __init__(
        self,
        *,
        input_dim: int,
        hidden_dim: int,
        num_layers: int = 1,
        out_layers: int,
        out_dim: int,
    ) -> None:
        super().__init__()
        for name, v in dict(
            input_dim=input_dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            out_layers=out_layers,
            out_dim=out_dim,
        ).items():
            if v <= 0:
                raise ValueError(f"SeqEncoder.{name} must be positive, got {v}")
        self.input_dim = input_dim
        self.out_layers = out_layers
        self.out_dim = out_dim
        self.rnn = nn.GRU(input_dim, hidden_dim, num_layers, batch_first=True)
        self.proj = nn.Linear(hidden_dim, out_layers * out_dim)

    def forward(self, visual: Tensor) -> Tensor:
        """visual (B, T, input_dim) -> (out_layers, B, out_dim)."""
        if visual.dim() != 3 or visual.shape[-1] != self.input_dim or visual.shape[1] == 0:
            raise ValueError(f"visual must be (B, T>0, {self.input_dim}), got {tuple(visual.shape)}")
        _, h_last = self.rnn(visual)  # (num_layers, B, hidden_dim)
        h = torch.tanh(self.proj(h_last[-1]))  # (B, out_layers * out_dim)
        batch = visual.shape[0]
        return h.view(batch, self.out_layers, self.out_dim).transpose(0, 1).contiguous()


class FlowEncoder(nn.Module):
    """Zhou's Flow method: `SeqEncoder` over cat[appearance, flow] features per frame.

    visual (B, T, visual_dim), flow (B, T, flow_dim) -> h0 (out_layers, B, out_dim).
    """

    def __init__(
        self,
        *,
        visual_dim: int,
        flow_dim: int,
        hidden_dim: int,
        num_layers: int = 1,
        out_layers: int,
        out_dim: int,
    ) -> None:
        super().__init__()
        if visual_dim <= 0 or flow_dim <= 0:
            raise ValueError(f"visual_dim and flow_dim must be positive, got {visual_dim=}, {flow_dim=}")
        self.visual_dim = visual_dim
        self.flow_dim = flow_dim
        self.seq = SeqEncoder(
            input_dim=visual_dim + flow_dim,
            hidden_dim=hidden_dim,
            num_layers=num_layers,
            out_layers=out_layers,
            out_dim=out_dim,
        )

    def forward(self, visual: Tensor, flow: Tensor) -> Tensor:
        if visual.dim() != 3 or visual.shape[-1] != self.visual_dim:
            raise ValueError(f"visual must be (B, T, {self.visual_dim}), got {tuple(visual.shape)}")
        if flow.dim() != 3 or flow.shape[-1] != self.flow_dim:
            raise ValueError(f"flow must be (B, T, {self.flow_dim}), got {tuple(flow.shape)}")
        if flow.shape[:2] != visual.shape[:2]:
            raise ValueError(
                f"flow and visual must share (B, T): flow {tuple(flow.shape)} vs visual {tuple(visual.shape)}"
            )
        return self.seq(torch.cat([visual, flow], dim=-1))
