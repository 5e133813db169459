"""Zhou et al.'s Visual-to-Sound models: a video encoder (Frame, Seq or Flow) conditioning SampleRNN
(`samplernn.py`), and their presets (`zhou_<encoder>_<paper|debug>`). Sources and choices: `samplernn`'s
docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from v2s_models.audio import dequantize_linear
from v2s_models.interface import ModelInputs
from v2s_models.modules.video_encoders import FlowEncoder, FrameEncoder, SeqEncoder
from v2s_models.samplernn import SampleRNN, SampleRNNState
from v2s_models.settings import ZHOU

EncoderKind = Literal["frame", "seq", "flow"]


@dataclass(frozen=True)
class SamplingContext:
    """What the windows of one video share when a SampleRNN samples them: the seeded generator, the temperature."""

    generator: torch.Generator
    temperature: float = 1.0


def dequantized(q: Tensor, q_levels: int) -> Tensor:
    """Quantised samples (B, N) long -> waveform (B, N) float32 in [-1, 1], on the CPU."""
    return torch.from_numpy(dequantize_linear(q.cpu().numpy(), q_levels))


class SampleRNNSampling:
    """The sampling half of the `SoundModel` interface (`v2s_models.interface`) shared by the video-conditioned
    SampleRNNs: no reference sound; each batch of windows -> the class's `generate` -> a waveform in [-1, 1].
    A class says how a window batch becomes `generate`'s inputs (`_generation_inputs`; default: all of it is
    the visual input)."""

    def start_video(
        self, *, generator: torch.Generator, reference_mel: Tensor | None = None, temperature: float = 1.0
    ) -> SamplingContext:
        del reference_mel
        return SamplingContext(generator=generator, temperature=temperature)

    def generate_windows(
        self, windows: Tensor, context: SamplingContext, *, num_samples: int | None = None
    ) -> Tensor:
        """Windows (B, W, visual_dim) -> waveform (B, num_samples) float32 in [-1, 1]."""
        if num_samples is None:
            raise ValueError("a waveform model needs num_samples")
        q = self.generate(  # type: ignore[attr-defined]
            **self._generation_inputs(windows),
            num_samples=num_samples,
            temperature=context.temperature,
            generator=context.generator,
        )
        return dequantized(q, self.sample_rnn.q_levels)  # type: ignore[attr-defined]

    def _generation_inputs(self, windows: Tensor) -> dict[str, Tensor | None]:
        return {"visual": windows}


class VisualSampleRNN(SampleRNNSampling, nn.Module):
    """Zhou et al.'s video encoder + SampleRNN sound generator (`encoder` = "frame", "seq" or "flow").

    forward: samples_q (B, lookback + L), visual (B, T_video, visual_dim) [, flow (B, T_video, flow_dim)]
    -> logits (B, L, q_levels), SampleRNNState. `start_sample` is the clip index of the first predicted sample
    (the Frame method needs it to pick each coarse step's video frame). For Seq/Flow the visual encoder sets
    the coarsest initial state when `hidden` is None (the first chunk of a clip); later chunks carry `hidden`,
    so under truncated BPTT the encoder is trained through the first chunk of each clip only.
    """

    def __init__(
        self,
        *,
        encoder: EncoderKind,
        visual_dim: int,
        flow_dim: int = 0,
        sample_rate: float,
        fps: float,
        frame_sizes: tuple[int, ...] = (16, 4),
        mlp_context: int = 4,
        dim: int = 1024,
        n_rnn: int = 1,
        q_levels: int = 256,
        emb_dim: int = 256,
        frame_proj_dim: int | None = None,
        encoder_dim: int = 1024,
        encoder_layers: int = 1,
    ) -> None:
        super().__init__()
        if encoder not in ("frame", "seq", "flow"):
            raise ValueError(f"encoder must be 'frame', 'seq' or 'flow', got {encoder!r}")
        if encoder == "flow" and flow_dim <= 0:
            raise ValueError("the flow encoder needs flow_dim > 0")
        if encoder != "flow" and flow_dim:
            raise ValueError(f"flow_dim is only used by the flow encoder, got {flow_dim=} for {encoder!r}")
        self.encoder = encoder
        self.visual_dim, self.flow_dim = int(visual_dim), int(flow_dim)
        self.frame_encoder: FrameEncoder | None = None
        self.seq_encoder: SeqEncoder | FlowEncoder | None = None
        cond_dim = 0
        if encoder == "frame":
            self.frame_encoder = FrameEncoder(
                visual_dim=visual_dim,
                sample_rate=sample_rate,
                fps=fps,
                step_samples=frame_sizes[0],
                proj_dim=frame_proj_dim,
            )
            cond_dim = self.frame_encoder.out_dim
        elif encoder == "seq":
            self.seq_encoder = SeqEncoder(
                input_dim=visual_dim,
                hidden_dim=encoder_dim,
                num_layers=encoder_layers,
                out_layers=n_rnn,
                out_dim=dim,
            )
        else:
            self.seq_encoder = FlowEncoder(
                visual_dim=visual_dim,
                flow_dim=flow_dim,
                hidden_dim=encoder_dim,
                num_layers=encoder_layers,
                out_layers=n_rnn,
                out_dim=dim,
            )
        self.sample_rnn = SampleRNN(
            frame_sizes=frame_sizes,
            mlp_context=mlp_context,
            dim=dim,
            n_rnn=n_rnn,
            q_levels=q_levels,
            emb_dim=emb_dim,
            cond_dim=cond_dim,
            external_h0=encoder != "frame",
        )

    @property
    def lookback(self) -> int:
        return self.sample_rnn.lookback

    @property
    def silence(self) -> int:
        return self.sample_rnn.silence

    def _h0(self, visual: Tensor, flow: Tensor | None) -> Tensor:
        if isinstance(self.seq_encoder, FlowEncoder):
            if flow is None:
                raise ValueError("the flow encoder needs flow (B, T_video, flow_dim)")
            return self.seq_encoder(visual, flow)
        if flow is not None:
            raise ValueError(f"flow was given but the encoder is {self.encoder!r}")
        assert self.seq_encoder is not None
        return self.seq_encoder(visual)

    def forward(
        self,
        samples_q: Tensor,
        visual: Tensor,
        *,
        flow: Tensor | None = None,
        hidden: SampleRNNState | None = None,
        start_sample: int = 0,
    ) -> tuple[Tensor, SampleRNNState]:
        if visual.dim() != 3 or visual.shape[0] != samples_q.shape[0]:
            raise ValueError(
                f"visual must be (B={samples_q.shape[0]}, T_video, D), got {tuple(visual.shape)}"
            )
        if self.frame_encoder is not None:
            if flow is not None:
                raise ValueError("flow was given but the encoder is 'frame'")
            steps = (samples_q.shape[1] - self.lookback) // self.lookback
            cond = self.frame_encoder(visual, start_sample=start_sample, num_steps=steps)
            return self.sample_rnn(samples_q, hidden=hidden, cond=cond)
        h0 = self._h0(visual, flow) if hidden is None else None
        return self.sample_rnn(samples_q, hidden=hidden, h0_init=h0)

    # SoundModel (v2s_models.interface)
    def model_inputs(self) -> ModelInputs:
        """Appearance then flow columns (the flow encoder), one step per video frame; a waveform out."""
        return ModelInputs(
            visual_dim=self.visual_dim + self.flow_dim,
            flow_dim=self.flow_dim,
            output="waveform",
            samples_per_step=None if self.frame_encoder is None else self.frame_encoder.samples_per_frame,
        )

    def _generation_inputs(self, windows: Tensor) -> dict[str, Tensor | None]:
        """Windows (B, W, visual_dim + flow_dim) -> appearance and flow (the Flow encoder's columns)."""
        visual, flow = self.model_inputs().split_flow(windows)
        return {"visual": visual, "flow": flow}

    @torch.inference_mode()
    def generate(
        self,
        visual: Tensor,
        *,
        flow: Tensor | None = None,
        num_samples: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """visual (B, T_video, visual_dim) [, flow] -> samples (B, num_samples) long (256 linear levels)."""
        batch = visual.shape[0]
        if self.frame_encoder is not None:
            steps = -(-num_samples // self.lookback)
            cond = self.frame_encoder(visual, start_sample=0, num_steps=steps)
            return self.sample_rnn.generate(
                batch=batch, num_samples=num_samples, cond=cond, temperature=temperature, generator=generator
            )
        return self.sample_rnn.generate(
            batch=batch,
            num_samples=num_samples,
            h0_init=self._h0(visual, flow),
            temperature=temperature,
            generator=generator,
        )


# ----------------------------------------------------------------------------------------------------------
# Presets. Paper: dim 1024, 1 GRU layer per tier (the reference implementation's default and SampleRNN's best
# 3-tier model; the Zhou paper does not state n_rnn), 256 levels, 16 kHz / 15.6 fps (`settings.ZHOU`),
# VGG19 fc6 4096-d appearance and temporal-ConvNet fc6 4096-d flow features.


def _zhou(encoder: EncoderKind, *, debug: bool, **overrides: Any) -> VisualSampleRNN:
    """Preset keyword arguments of VisualSampleRNN, updated with `overrides` (its keyword arguments)."""
    if debug:
        kwargs: dict[str, Any] = dict(
            encoder=encoder,
            visual_dim=24,
            flow_dim=12 if encoder == "flow" else 0,
            sample_rate=ZHOU.sample_rate,
            fps=ZHOU.fps,
            dim=32,
            n_rnn=1,
            emb_dim=16,
            frame_proj_dim=8 if encoder == "frame" else None,
            encoder_dim=32,
        )
    else:
        kwargs = dict(
            encoder=encoder,
            visual_dim=4096,
            flow_dim=4096 if encoder == "flow" else 0,
            sample_rate=ZHOU.sample_rate,
            fps=ZHOU.fps,
            dim=1024,
            n_rnn=1,
            emb_dim=256,
            frame_proj_dim=None,
            encoder_dim=1024,
        )
    if "encoder" in overrides and overrides["encoder"] != encoder:
        raise ValueError(
            f"the zhou_{encoder}_* presets build the {encoder!r} encoder, got {overrides['encoder']=}"
        )
    return VisualSampleRNN(**{**kwargs, **overrides})


def zhou_frame_paper(**overrides: Any) -> VisualSampleRNN:
    return _zhou("frame", debug=False, **overrides)


def zhou_seq_paper(**overrides: Any) -> VisualSampleRNN:
    return _zhou("seq", debug=False, **overrides)


def zhou_flow_paper(**overrides: Any) -> VisualSampleRNN:
    return _zhou("flow", debug=False, **overrides)


def zhou_frame_debug(**overrides: Any) -> VisualSampleRNN:
    return _zhou("frame", debug=True, **overrides)


def zhou_seq_debug(**overrides: Any) -> VisualSampleRNN:
    return _zhou("seq", debug=True, **overrides)


def zhou_flow_debug(**overrides: Any) -> VisualSampleRNN:
    return _zhou("flow", debug=True, **overrides)
