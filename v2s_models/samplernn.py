"""SampleRNN (Mehri et al. 2017) and the Visual-to-Sound models of Zhou et al. 2018 (CVPR).

Sources: ../shared/PAPERS.md section 2, papers/visual_to_sound_zhou2018.txt, and the public PyTorch SampleRNN
implementation for the values the paper leaves out (dim 1024, GRU, learned h0, learned upsampling, 1024-sample
truncated BPTT, an embedding of the quantised samples in the sample-level MLP).

Architecture (three tiers, as in the paper):
- Frame-level tier i (coarsest first) steps every `frame_sizes[i]` samples; its input is the previous
  `frame_sizes[i]` samples, linearly dequantised to [-1, 1] (the `audio.dequantize_linear` convention),
  through a Linear to `dim`, plus the upsampled output of the tier above (or, for the coarsest tier, the
  projected visual conditioning), then a GRU (`n_rnn` layers, learned h0). Its outputs are upsampled to the
  next tier's rate by a learned per-position Linear (`dim -> ratio * dim`, the same map as the reference's
  ConvTranspose1d with kernel = stride = ratio).
- The sample-level MLP predicts each sample from an embedding of the previous `mlp_context` = k = 4 quantised
  samples (Linear over the k concatenated embeddings, i.e. the reference's Conv1d(kernel=k)) plus the finest
  tier's upsampled output -> ReLU -> Linear -> ReLU -> Linear -> 256 logits.
- Frame sizes: we read "frame sizes 16 and 4" as the brief states: the coarsest tier steps every 16 samples
  with a 16-sample input, the middle tier every 4 samples with a 4-sample input; so the MLP's k = 4 (the
  paper's value) equals the finest frame, as in the reference where the MLP reads the finest tier's frame.
  (The reference's CLI `--frame_sizes 16 4` would instead give tiers of 16 and 64 samples; its MLP would then
  read 16 samples, contradicting the paper's k = 4, so we do not follow that reading.)
- Conditioning: `cond (B, T_coarse, C)` is concatenated to the coarsest tier's input per coarse frame. We
  implement Linear(cat[frame, cond]) as Linear(frame) + Linear_nobias(cond), which is the same map; it lets
  the visual projection be computed once per coarse step ahead of generation. `h0_init (n_rnn, B, dim)`
  replaces the coarsest tier's initial state (the Seq/Flow methods); with `external_h0=True` that tier has no
  learned h0.
- Not reproduced: the reference's weight normalisation and its custom initialisations (PyTorch defaults here).

Sequence layout. `forward(samples_q (B, lookback + L))` with lookback = frame_sizes[0] = 16: the first 16
samples are context only; logits[:, t] is the distribution of samples_q[:, lookback + t]. A clip's first chunk
is preceded by 16 samples of silence (level q_levels // 2 = 128), as in the reference data loader
(`tbptt_chunks` builds this). L must be a multiple of 16. Hidden states are carried across chunks in a
`SampleRNNState`; the caller detaches them (`state.detach()`) between optimiser steps.

Generation (`generate`) runs each tier only when its frame is due (coarsest every 16 samples, middle every 4,
MLP every sample), keeping every hidden state and the latest upsampled outputs, batched over clips: cost is
linear in length. The MLP's embedding + first Linear are fused into one lookup table per generation call
(embedding followed by a linear map is itself an embedding), which is exact up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def dequantize(samples_q: Tensor, q_levels: int) -> Tensor:
    """Integers 0..q_levels-1 -> [-1, 1] float32 (same map as `audio.dequantize_linear`)."""
    return samples_q.float() * (2.0 / (q_levels - 1)) - 1.0


def sample_from_logits(
    logits: Tensor, *, temperature: float = 1.0, generator: torch.Generator | None = None
) -> Tensor:
    """Inverse-CDF sampling of one category per row: logits (B, Q) -> (B,) long.

    Draws exactly one uniform number per row from `generator`, so a run can be replayed from saved logits.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = logits.float()
    probs = torch.softmax(logits if temperature == 1.0 else logits / temperature, dim=-1)
    u = torch.rand((logits.shape[0], 1), generator=generator, device=logits.device)
    # First index whose cumulative probability reaches u; clamp guards against a cdf ending just below 1.
    index = torch.searchsorted(probs.cumsum(dim=-1), u).squeeze(1)
    return index.clamp_(max=logits.shape[-1] - 1)


@dataclass
class SampleRNNState:
    """Hidden states of the frame-level tiers, coarsest first, each (n_rnn, B, dim)."""

    tiers: tuple[Tensor, ...]

    def detach(self) -> SampleRNNState:
        return SampleRNNState(tuple(h.detach() for h in self.tiers))

    @property
    def batch_size(self) -> int:
        return self.tiers[0].shape[1]


class FrameTier(nn.Module):
    """A frame-level tier: Linear(frame) [+ conditioning] -> GRU -> learned upsampling by `ratio`.

    frames (B, T, frame_size) float, extra (B, T, dim) | None, h (n_rnn, B, dim)
    -> upsampled (B, T * ratio, dim), h.
    """

    def __init__(self, *, frame_size: int, ratio: int, dim: int, n_rnn: int, learn_h0: bool = True) -> None:
        super().__init__()
        self.frame_size = frame_size
        self.ratio = ratio
        self.dim = dim
        self.n_rnn = n_rnn
        self.input_expand = nn.Linear(frame_size, dim)
        self.rnn = nn.GRU(dim, dim, n_rnn, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(n_rnn, dim)) if learn_h0 else None
        self.upsample = nn.Linear(dim, ratio * dim)

    def forward(self, frames: Tensor, extra: Tensor | None, h: Tensor) -> tuple[Tensor, Tensor]:
        batch, steps, _ = frames.shape
        x = self.input_expand(frames)  # (B, T, dim)
        if extra is not None:
            x = x + extra
        out, h = self.rnn(x, h)  # (B, T, dim)
        return self.upsample(out).view(batch, steps * self.ratio, self.dim), h

    def step(self, frame: Tensor, extra: Tensor | None, h: Tensor) -> tuple[Tensor, Tensor]:
        """One frame: frame (B, frame_size), extra (B, dim) | None -> (B, ratio, dim), h."""
        x = self.input_expand(frame)
        if extra is not None:
            x = x + extra
        # One time step through the stacked GRU with the same weights; torch.gru_cell avoids nn.GRU's per-call
        # overhead, which dominates at one step (no dropout between layers, so the two are the same map).
        layers = []
        for layer in range(self.n_rnn):
            x = torch.gru_cell(
                x,
                h[layer],
                getattr(self.rnn, f"weight_ih_l{layer}"),
                getattr(self.rnn, f"weight_hh_l{layer}"),
                getattr(self.rnn, f"bias_ih_l{layer}"),
                getattr(self.rnn, f"bias_hh_l{layer}"),
            )
            layers.append(x)
        return self.upsample(x).view(frame.shape[0], self.ratio, self.dim), torch.stack(layers)


class SampleLevelMLP(nn.Module):
    """Sample-level MLP: embedded previous k samples + finest-tier conditioning -> logits.

    windows (B, L, k) long, upper (B, L, dim) -> logits (B, L, q_levels).
    """

    def __init__(self, *, k: int, dim: int, q_levels: int, emb_dim: int) -> None:
        super().__init__()
        self.k = k
        self.q_levels = q_levels
        self.embedding = nn.Embedding(q_levels, emb_dim)
        self.input = nn.Linear(k * emb_dim, dim, bias=False)  # the reference's Conv1d(emb, dim, kernel=k)
        self.hidden = nn.Linear(dim, dim)
        self.output = nn.Linear(dim, q_levels)

    def forward(self, windows: Tensor, upper: Tensor) -> Tensor:
        x = self.input(self.embedding(windows).flatten(-2)) + upper
        x = F.relu(self.hidden(F.relu(x)))
        return self.output(x)

    def fused_table(self) -> Tensor:
        """Embedding fused with the first Linear: (k * q_levels, dim); row i * q + v is W_i @ emb(v)."""
        dim = self.input.out_features
        w = self.input.weight.view(dim, self.k, -1).permute(1, 2, 0)  # (k, emb, dim)
        return torch.matmul(self.embedding.weight.unsqueeze(0), w).reshape(self.k * self.q_levels, dim)

    def window_offsets(self, device: torch.device) -> Tensor:
        """(k,) row offsets of each window position in `fused_table`."""
        return torch.arange(self.k, device=device) * self.q_levels

    def step(self, window: Tensor, upper: Tensor, table: Tensor, offsets: Tensor) -> Tensor:
        """One sample: window (B, k) long, upper (B, dim), `fused_table`, `window_offsets` -> (B, q)."""
        x = table[window + offsets].sum(dim=1).add_(upper).relu_()  # (B, dim)
        x = self.hidden(x).relu_()
        return self.output(x)


class SampleRNN(nn.Module):
    """Hierarchical SampleRNN with optional coarse-tier conditioning.

    forward: samples_q (B, lookback + L) long -> logits (B, L, q_levels), SampleRNNState.
    generate: -> samples (B, num_samples) long.
    """

    def __init__(
        self,
        *,
        frame_sizes: tuple[int, ...] = (16, 4),
        mlp_context: int = 4,
        dim: int = 1024,
        n_rnn: int = 1,
        q_levels: int = 256,
        emb_dim: int = 256,
        cond_dim: int = 0,
        external_h0: bool = False,
    ) -> None:
        super().__init__()
        frame_sizes = tuple(int(f) for f in frame_sizes)
        if not frame_sizes or any(f <= 0 for f in frame_sizes):
            raise ValueError(f"frame_sizes must be positive sample counts, coarsest first, got {frame_sizes}")
        for upper, lower in zip(frame_sizes, frame_sizes[1:], strict=False):
            if upper % lower != 0 or upper == lower:
                raise ValueError(
                    f"each frame size must be a multiple (> 1x) of the next one, got {frame_sizes}"
                )
        if not 1 <= mlp_context <= frame_sizes[0]:
            raise ValueError(f"mlp_context must be in [1, {frame_sizes[0]}], got {mlp_context}")
        if min(dim, n_rnn, emb_dim) <= 0 or q_levels < 2 or cond_dim < 0:
            raise ValueError(f"bad sizes: {dim=}, {n_rnn=}, {emb_dim=}, {q_levels=}, {cond_dim=}")
        self.frame_sizes = frame_sizes
        self.mlp_context = mlp_context
        self.dim = dim
        self.n_rnn = n_rnn
        self.q_levels = q_levels
        self.cond_dim = cond_dim
        self.external_h0 = external_h0
        ratios = [u // lower for u, lower in zip(frame_sizes, frame_sizes[1:], strict=False)] + [
            frame_sizes[-1]
        ]
        self.tiers = nn.ModuleList(
            FrameTier(frame_size=f, ratio=r, dim=dim, n_rnn=n_rnn, learn_h0=not (external_h0 and i == 0))
            for i, (f, r) in enumerate(zip(frame_sizes, ratios, strict=True))
        )
        self.cond_expand = nn.Linear(cond_dim, dim, bias=False) if cond_dim > 0 else None
        self.mlp = SampleLevelMLP(k=mlp_context, dim=dim, q_levels=q_levels, emb_dim=emb_dim)

    @property
    def lookback(self) -> int:
        """Context samples at the start of every chunk (the coarsest frame)."""
        return self.frame_sizes[0]

    @property
    def silence(self) -> int:
        """The quantised level of 0.0 (the reference's q_zero), used as the initial context."""
        return self.q_levels // 2

    def initial_state(self, batch: int, *, h0_init: Tensor | None = None) -> SampleRNNState:
        """Learned h0 per tier; the coarsest tier's replaced by h0_init (n_rnn, B, dim) when given."""
        device = self.mlp.output.weight.device
        states = []
        for i, tier in enumerate(self.tiers):
            if i == 0 and h0_init is not None:
                expected = (self.n_rnn, batch, self.dim)
                if tuple(h0_init.shape) != expected:
                    raise ValueError(
                        f"h0_init must be (n_rnn, B, dim) = {expected}, got {tuple(h0_init.shape)}"
                    )
                states.append(h0_init)
            elif tier.h0 is None:
                raise ValueError(
                    "this SampleRNN takes its coarsest initial state from h0_init; none was given"
                )
            else:
                states.append(tier.h0.unsqueeze(1).expand(-1, batch, -1).contiguous())
        return SampleRNNState(tuple(s.to(device) for s in states))

    def _check_cond(self, cond: Tensor | None, batch: int, steps: int, *, exact: bool) -> Tensor | None:
        """Projected conditioning (B, steps, dim) or None; cond covers exactly (or at least) `steps` steps."""
        if self.cond_expand is None:
            if cond is not None:
                raise ValueError("cond was given but this SampleRNN has cond_dim=0")
            return None
        if cond is None:
            raise ValueError(f"this SampleRNN needs cond (B, T_coarse, {self.cond_dim})")
        short = cond.dim() != 3 or cond.shape[1] < steps or (exact and cond.shape[1] != steps)
        if short or cond.shape[0] != batch or cond.shape[2] != self.cond_dim:
            need = f"{steps}" if exact else f">={steps}"
            raise ValueError(
                f"cond must be (B={batch}, T_coarse={need}, {self.cond_dim}), got {tuple(cond.shape)}"
            )
        return self.cond_expand(cond[:, :steps])

    def _check_samples(self, samples_q: Tensor) -> None:
        if samples_q.dim() != 2 or samples_q.dtype not in (torch.int64, torch.int32, torch.uint8):
            raise ValueError(
                f"samples_q must be integer (B, N), got {samples_q.dtype} {tuple(samples_q.shape)}"
            )
        if samples_q.numel() and (int(samples_q.min()) < 0 or int(samples_q.max()) >= self.q_levels):
            raise ValueError(f"samples_q must lie in [0, {self.q_levels - 1}]")

    def forward(
        self,
        samples_q: Tensor,
        *,
        hidden: SampleRNNState | None = None,
        cond: Tensor | None = None,
        h0_init: Tensor | None = None,
    ) -> tuple[Tensor, SampleRNNState]:
        """Teacher-forced chunk: samples_q (B, lookback + L) -> logits (B, L, q_levels), new state.

        cond (B, L // lookback, cond_dim) per coarse frame of this chunk; h0_init only when hidden is None.
        """
        self._check_samples(samples_q)
        samples_q = samples_q.long()
        batch, total = samples_q.shape
        lookback = self.lookback
        length = total - lookback
        if length <= 0 or length % lookback != 0:
            raise ValueError(
                f"samples_q must hold {lookback} context samples plus a positive multiple of {lookback}, "
                f"got {total} samples"
            )
        if hidden is not None and h0_init is not None:
            raise ValueError("give either hidden (a carried state) or h0_init (a fresh one), not both")
        state = hidden if hidden is not None else self.initial_state(batch, h0_init=h0_init)
        if state.batch_size != batch or len(state.tiers) != len(self.tiers):
            raise ValueError(f"hidden state is for batch {state.batch_size}, samples for batch {batch}")
        upper = self._check_cond(cond, batch, length // lookback, exact=True)
        new_states = []
        for tier, h in zip(self.tiers, state.tiers, strict=True):
            size = tier.frame_size
            # Step m reads samples [lookback - size + m*size, + size) and predicts the next `size` samples.
            frames = dequantize(samples_q[:, lookback - size : lookback - size + length], self.q_levels)
            upper, h = tier(frames.view(batch, length // size, size), upper, h)
            new_states.append(h)
        k = self.mlp_context
        windows = samples_q[:, lookback - k : total - 1].unfold(1, k, 1)  # (B, L, k)
        logits = self.mlp(windows, upper)
        assert logits.shape == (batch, length, self.q_levels), f"{logits.shape=}"
        return logits, SampleRNNState(tuple(new_states))

    def _incremental(
        self,
        *,
        batch: int,
        num_samples: int,
        cond: Tensor | None,
        h0_init: Tensor | None,
        forced: Tensor | None,
        temperature: float,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor | None]:
        """The step-by-step path: samples (B, N), and logits (B, N, q) when teacher-forced."""
        lookback, k = self.lookback, self.mlp_context
        device = self.mlp.output.weight.device
        coarse_steps = -(-num_samples // lookback)
        cond_proj = self._check_cond(cond, batch, coarse_steps, exact=False)  # (B, coarse_steps, dim) | None
        hs = list(self.initial_state(batch, h0_init=h0_init).tiers)
        if forced is not None:
            seq = forced.to(device=device, dtype=torch.long)
            logits_out = torch.empty(batch, num_samples, self.q_levels, device=device)
        else:
            seq = torch.full((batch, lookback + num_samples), self.silence, dtype=torch.long, device=device)
            logits_out = None
        table = self.mlp.fused_table()
        offsets = self.mlp.window_offsets(device)
        ups: list[Tensor] = [torch.empty(0)] * len(self.tiers)  # latest upsampled output of each tier
        for t in range(num_samples):
            p = lookback + t
            for i, tier in enumerate(self.tiers):
                size = tier.frame_size
                if t % size:
                    continue
                frame = dequantize(seq[:, p - size : p], self.q_levels)
                if i == 0:
                    extra = None if cond_proj is None else cond_proj[:, t // size]
                else:
                    extra = ups[i - 1][:, (t % self.frame_sizes[i - 1]) // size]
                ups[i], hs[i] = tier.step(frame, extra, hs[i])
            logits = self.mlp.step(seq[:, p - k : p], ups[-1][:, t % self.frame_sizes[-1]], table, offsets)
            if logits_out is not None:
                logits_out[:, t] = logits
            else:
                seq[:, p] = sample_from_logits(logits, temperature=temperature, generator=generator)
        return seq[:, lookback:], logits_out

    @torch.inference_mode()
    def generate(
        self,
        *,
        batch: int,
        num_samples: int,
        cond: Tensor | None = None,
        h0_init: Tensor | None = None,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Samples (B, num_samples) long, from `lookback` samples of silence.

        cond (B, >= ceil(num_samples / lookback), cond_dim); h0_init (n_rnn, B, dim).
        """
        if batch <= 0 or num_samples <= 0:
            raise ValueError(f"batch and num_samples must be positive, got {batch=}, {num_samples=}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        samples, _ = self._incremental(
            batch=batch,
            num_samples=num_samples,
            cond=cond,
            h0_init=h0_init,
            forced=None,
            temperature=temperature,
            generator=generator,
        )
        return samples

    @torch.inference_mode()
    def incremental_logits(
        self, samples_q: Tensor, *, cond: Tensor | None = None, h0_init: Tensor | None = None
    ) -> Tensor:
        """The generation path, teacher-forced: samples_q (B, lookback + N) -> logits (B, N, q_levels).

        Must equal `forward(samples_q, cond=cond, h0_init=h0_init)[0]`; exists to test that.
        """
        self._check_samples(samples_q)
        batch, total = samples_q.shape
        _, logits = self._incremental(
            batch=batch,
            num_samples=total - self.lookback,
            cond=cond,
            h0_init=h0_init,
            forced=samples_q,
            temperature=1.0,
            generator=None,
        )
        assert logits is not None
        return logits


def tbptt_chunks(
    samples_q: Tensor, *, chunk_len: int, lookback: int, silence: int
) -> Iterator[tuple[int, Tensor]]:
    """Splits clips (B, N) into TBPTT chunks: yields (start_sample, chunk (B, lookback + L)).

    The clip is preceded by `lookback` samples of `silence`; chunk c predicts samples [start, start + L) and
    carries the `lookback` samples before them as context. L = chunk_len except possibly the last chunk.
    """
    if samples_q.dim() != 2 or chunk_len <= 0 or lookback <= 0:
        raise ValueError(
            f"need samples_q (B, N), chunk_len > 0, lookback > 0; got {tuple(samples_q.shape)}, "
            f"{chunk_len=}, {lookback=}"
        )
    pad = torch.full((samples_q.shape[0], lookback), silence, dtype=samples_q.dtype, device=samples_q.device)
    padded = torch.cat([pad, samples_q], dim=1)
    for start in range(0, samples_q.shape[1], chunk_len):
        end = min(start + chunk_len, samples_q.shape[1])
        yield start, padded[:, start : end + lookback]


# ----------------------------------------------------------------------------------------------------------
# Presets. Paper: dim 1024, 1 GRU layer per tier (the reference implementation's default and SampleRNN's best
# 3-tier model; the Zhou paper does not state n_rnn), 256 levels, 16 kHz / 15.6 fps (`settings.ZHOU`),
# VGG19 fc6 4096-d appearance and temporal-ConvNet fc6 4096-d flow features.


def samplernn_paper(**overrides: Any) -> SampleRNN:
    """Unconditional SampleRNN at the paper's size; `overrides` are SampleRNN keyword arguments."""
    kwargs: dict[str, Any] = dict(
        frame_sizes=(16, 4), mlp_context=4, dim=1024, n_rnn=1, q_levels=256, emb_dim=256
    )
    return SampleRNN(**{**kwargs, **overrides})


def samplernn_debug(**overrides: Any) -> SampleRNN:
    kwargs: dict[str, Any] = dict(
        frame_sizes=(16, 4), mlp_context=4, dim=32, n_rnn=1, q_levels=256, emb_dim=16
    )
    return SampleRNN(**{**kwargs, **overrides})
