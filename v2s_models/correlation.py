"""Correlation-filtered seq2seq (PAPERS.md section 3; papers/correlation_filtered_seq2seq_project.txt).

1. `CorrelationTower`: a cross-modal Transformer that scores whether per-second video features (B, S,
   video_dim) and audio features (B, S, audio_dim) belong together. The project page names the parts
   (cross-modal Transformer, "correlation tower", cross-entropy on positive and negative pairs) but gives no
   sizes; ours:
   - each modality: LayerNorm -> Linear to d_model, plus a learned modality embedding and the same sinusoidal
     encoding of the second index for both modalities (so attention can compare video second t with audio
     second t, which a time-shifted negative breaks);
   - one Transformer encoder (pre-norm, GELU) over [CLS, video_1..S, audio_1..S] (joint self-attention rather
     than separate cross-attention blocks: one stack lets every token attend within and across modalities, and
     is the simpler of the two choices);
   - the correlation tower: an MLP on the CLS output -> one logit per pair (the CLS token is the pooling).
   Paper sizes are ours: d_model 512, 8 heads, 4 layers, feed-forward 2048, up to 300 seconds.
   The paper's 1024-d RGB + 128-d audio are YouTube-8M/AudioSet features; this project's pipeline gives 1280-d
   EfficientNet-Lite0 appearance features, so `video_dim` is an argument of every preset.
2. `correlation_loss`: binary cross-entropy (the two-class cross-entropy) with `make_pairs` building positives
   (same clip, same time) and negatives (another clip of the batch; the same clip shifted in time).
3. `Seq2SeqSampleRNN`: a GRU video encoder over per-second appearance features whose final state (projected)
   initialises the coarsest SampleRNN tier (`SeqEncoder` + `SampleRNN`, see samplernn.py).
4. `sequence_nll`: per-clip average negative log-likelihood (nats per sample) of quantised audio under a
   visually conditioned SampleRNN, for the retrieval experiment (rank candidate audios by likelihood).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from v2s_models.interface import ModelInputs
from v2s_models.modules.video_encoders import SeqEncoder
from v2s_models.samplernn import SampleRNN, SampleRNNState, tbptt_chunks
from v2s_models.visual_samplernn import SampleRNNSampling, VisualSampleRNN


def sinusoidal_encoding(length: int, dim: int) -> Tensor:
    """(length, dim) sine/cosine position encoding (Vaswani et al. 2017)."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return pe


class CorrelationTower(nn.Module):
    """Cross-modal Transformer with a correlation tower: (video, audio) per-second features -> one logit.

    video (B, S, video_dim), audio (B, S, audio_dim), lengths (B,) valid seconds or None -> logits (B,).
    """

    def __init__(
        self,
        *,
        video_dim: int = 1024,
        audio_dim: int = 128,
        d_model: int = 512,
        n_heads: int = 8,
        n_layers: int = 4,
        ff_dim: int = 2048,
        tower_dim: int = 256,
        dropout: float = 0.1,
        max_seconds: int = 300,
    ) -> None:
        super().__init__()
        if d_model % n_heads or d_model % 2:
            raise ValueError(f"d_model must be even and divisible by n_heads, got {d_model=}, {n_heads=}")
        self.video_dim = video_dim
        self.audio_dim = audio_dim
        self.max_seconds = max_seconds
        self.video_proj = nn.Sequential(nn.LayerNorm(video_dim), nn.Linear(video_dim, d_model))
        self.audio_proj = nn.Sequential(nn.LayerNorm(audio_dim), nn.Linear(audio_dim, d_model))
        self.modality = nn.Embedding(2, d_model)  # 0 video, 1 audio
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.register_buffer("position", sinusoidal_encoding(max_seconds, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, ff_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.tower = nn.Sequential(nn.Linear(d_model, tower_dim), nn.GELU(), nn.Linear(tower_dim, 1))

    def forward(self, video: Tensor, audio: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        if video.dim() != 3 or video.shape[-1] != self.video_dim:
            raise ValueError(f"video must be (B, S, {self.video_dim}), got {tuple(video.shape)}")
        if audio.dim() != 3 or audio.shape[-1] != self.audio_dim:
            raise ValueError(f"audio must be (B, S, {self.audio_dim}), got {tuple(audio.shape)}")
        if video.shape[:2] != audio.shape[:2]:
            raise ValueError(
                f"video and audio must share (B, S): {tuple(video.shape)} vs {tuple(audio.shape)}"
            )
        batch, seconds = video.shape[:2]
        if not 0 < seconds <= self.max_seconds:
            raise ValueError(f"S must be in [1, {self.max_seconds}] seconds, got {seconds}")
        pos = self.position[:seconds]  # (S, d)
        v = self.video_proj(video) + pos + self.modality.weight[0]  # (B, S, d)
        a = self.audio_proj(audio) + pos + self.modality.weight[1]  # (B, S, d)
        tokens = torch.cat([self.cls.expand(batch, -1, -1), v, a], dim=1)  # (B, 1 + 2S, d)
        mask = None
        if lengths is not None:
            if lengths.shape != (batch,):
                raise ValueError(f"lengths must be (B={batch},), got {tuple(lengths.shape)}")
            pad = torch.arange(seconds, device=video.device).unsqueeze(0) >= lengths.to(
                video.device
            ).unsqueeze(1)
            mask = torch.cat([pad.new_zeros(batch, 1), pad, pad], dim=1)  # True = ignore; CLS always kept
        out = self.encoder(tokens, src_key_padding_mask=mask)
        logits = self.tower(self.norm(out[:, 0])).squeeze(-1)
        assert logits.shape == (batch,), f"{logits.shape=}"
        return logits

    @torch.inference_mode()
    def score(self, video: Tensor, audio: Tensor, *, lengths: Tensor | None = None) -> Tensor:
        """Probability (B,) that each pair corresponds. Call `.eval()` first (dropout is otherwise on)."""
        return torch.sigmoid(self(video, audio, lengths=lengths))


def correlation_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy between pair logits (N,) and labels (N,) in {0, 1}; mean over pairs."""
    if logits.shape != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and labels {tuple(labels.shape)} must match")
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def make_pairs(
    video: Tensor, audio: Tensor, *, generator: torch.Generator | None = None, min_shift: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """Positive and negative pairs from a batch of matched clips.

    video (B, S, Dv), audio (B, S, Da) -> video (N, S, Dv), audio (N, S, Da), labels (N,) float.
    The first B pairs are the matched ones (label 1); then B pairs with the audio of another clip (the batch
    rolled by a random offset in [1, B-1]; needs B >= 2); then B pairs with each clip's own audio circularly
    shifted by a random [min_shift, S - min_shift] seconds (needs S >= 2 * min_shift). N = 3B when both apply.
    """
    if video.dim() != 3 or audio.dim() != 3 or video.shape[:2] != audio.shape[:2]:
        raise ValueError(
            f"video (B, S, Dv) and audio (B, S, Da) must share (B, S): "
            f"{tuple(video.shape)} vs {tuple(audio.shape)}"
        )
    if min_shift < 1:
        raise ValueError(f"min_shift must be >= 1, got {min_shift}")
    batch, seconds = video.shape[:2]
    videos, audios = [video], [audio]
    labels = [torch.ones(batch)]
    if batch >= 2:
        offset = int(torch.randint(1, batch, (1,), generator=generator))
        videos.append(video)
        audios.append(audio.roll(offset, dims=0))
        labels.append(torch.zeros(batch))
    if seconds >= 2 * min_shift:
        shift = torch.randint(min_shift, seconds - min_shift + 1, (batch, 1), generator=generator)
        index = (torch.arange(seconds).unsqueeze(0) - shift) % seconds  # (B, S)
        index = index.to(audio.device).unsqueeze(-1).expand(-1, -1, audio.shape[-1])
        videos.append(video)
        audios.append(audio.gather(1, index))
        labels.append(torch.zeros(batch))
    if len(labels) == 1:
        raise ValueError(
            f"no negatives possible from B={batch}, S={seconds} (need B >= 2 or S >= 2*min_shift)"
        )
    return torch.cat(videos), torch.cat(audios), torch.cat(labels).to(video.device)


class Seq2SeqSampleRNN(SampleRNNSampling, nn.Module):
    """Seq2seq sound generator: GRU over per-second appearance features -> coarsest SampleRNN tier's h0.

    forward: samples_q (B, lookback + L), visual (B, S, video_dim) -> logits (B, L, q_levels), SampleRNNState.
    The encoder runs when `hidden` is None (a clip's first chunk); `start_sample` is accepted for a common
    interface with VisualSampleRNN and unused (the visual features only set the initial state).
    """

    def __init__(
        self,
        *,
        video_dim: int = 1024,
        encoder_dim: int = 1024,
        encoder_layers: int = 1,
        frame_sizes: tuple[int, ...] = (16, 4),
        mlp_context: int = 4,
        dim: int = 1024,
        n_rnn: int = 1,
        q_levels: int = 256,
        emb_dim: int = 256,
    ) -> None:
        super().__init__()
        self.video_dim = int(video_dim)
        self.encoder = SeqEncoder(
            input_dim=video_dim,
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
            external_h0=True,
        )

    @property
    def lookback(self) -> int:
        return self.sample_rnn.lookback

    @property
    def silence(self) -> int:
        return self.sample_rnn.silence

    def forward(
        self,
        samples_q: Tensor,
        visual: Tensor,
        *,
        hidden: SampleRNNState | None = None,
        start_sample: int = 0,
    ) -> tuple[Tensor, SampleRNNState]:
        del start_sample  # the state carries time; see the class docstring
        if visual.dim() != 3 or visual.shape[0] != samples_q.shape[0]:
            raise ValueError(f"visual must be (B={samples_q.shape[0]}, S, D), got {tuple(visual.shape)}")
        h0 = self.encoder(visual) if hidden is None else None
        return self.sample_rnn(samples_q, hidden=hidden, h0_init=h0)

    # SoundModel (v2s_models.interface)
    def model_inputs(self) -> ModelInputs:
        """Per-second appearance features in; a waveform out."""
        return ModelInputs(visual_dim=self.video_dim, per_second=True, output="waveform")

    @torch.inference_mode()
    def generate(
        self,
        visual: Tensor,
        *,
        num_samples: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """visual (B, S, video_dim) -> samples (B, num_samples) long."""
        return self.sample_rnn.generate(
            batch=visual.shape[0],
            num_samples=num_samples,
            h0_init=self.encoder(visual),
            temperature=temperature,
            generator=generator,
        )


@torch.inference_mode()
def sequence_nll(
    model: VisualSampleRNN | Seq2SeqSampleRNN,
    samples_q: Tensor,
    visual: Tensor,
    *,
    flow: Tensor | None = None,
    chunk_len: int = 1024,
) -> Tensor:
    """Average negative log-likelihood per sample, in nats: samples_q (B, N) long, visual (B, T, D) -> (B,).

    Runs the model over the whole clip in `chunk_len` chunks (the TBPTT layout, starting from silence),
    carrying the hidden state, so it scores exactly the training objective. N must be a multiple of the
    model's coarsest frame (16). For retrieval, repeat `visual` against every candidate audio and rank by
    this value (lower is more likely).
    """
    if samples_q.dim() != 2 or samples_q.shape[0] != visual.shape[0]:
        raise ValueError(f"samples_q must be (B={visual.shape[0]}, N), got {tuple(samples_q.shape)}")
    if samples_q.shape[1] % model.lookback or chunk_len % model.lookback:
        raise ValueError(
            f"N ({samples_q.shape[1]}) and chunk_len ({chunk_len}) must be multiples of {model.lookback}"
        )
    extra = {} if flow is None else {"flow": flow}
    total = torch.zeros(samples_q.shape[0], device=samples_q.device)
    hidden: SampleRNNState | None = None
    for start, chunk in tbptt_chunks(
        samples_q, chunk_len=chunk_len, lookback=model.lookback, silence=model.silence
    ):
        logits, hidden = model(chunk, visual, hidden=hidden, start_sample=start, **extra)
        target = chunk[:, model.lookback :].long()
        nll = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")  # (B, L)
        total += nll.sum(dim=1)
    return total / samples_q.shape[1]


# ----------------------------------------------------------------------------------------------------------
# Presets. The project page gives no model sizes; the paper presets use the SampleRNN paper size
# (samplernn.py) and a mid-size Transformer. video_dim: 1024 (YouTube-8M RGB, the page's features) or 1280
# (our EfficientNet-Lite0 features).


def correlation_paper(**overrides: Any) -> CorrelationTower:
    """`overrides`: CorrelationTower keyword arguments (e.g. video_dim=1280 for our features)."""
    kwargs: dict[str, Any] = dict(
        video_dim=1024,
        audio_dim=128,
        d_model=512,
        n_heads=8,
        n_layers=4,
        ff_dim=2048,
        tower_dim=256,
        dropout=0.1,
        max_seconds=300,
    )
    return CorrelationTower(**{**kwargs, **overrides})


def correlation_debug(**overrides: Any) -> CorrelationTower:
    kwargs: dict[str, Any] = dict(
        video_dim=24,
        audio_dim=8,
        d_model=32,
        n_heads=2,
        n_layers=1,
        ff_dim=64,
        tower_dim=32,
        dropout=0.0,
        max_seconds=300,
    )
    return CorrelationTower(**{**kwargs, **overrides})


def seq2seq_paper(**overrides: Any) -> Seq2SeqSampleRNN:
    """`overrides`: Seq2SeqSampleRNN keyword arguments."""
    kwargs: dict[str, Any] = dict(video_dim=1024, encoder_dim=1024, encoder_layers=1, dim=1024, n_rnn=1)
    return Seq2SeqSampleRNN(**{**kwargs, **overrides})


def seq2seq_debug(**overrides: Any) -> Seq2SeqSampleRNN:
    kwargs: dict[str, Any] = dict(video_dim=24, encoder_dim=32, encoder_layers=1, dim=32, n_rnn=1, emb_dim=16)
    return Seq2SeqSampleRNN(**{**kwargs, **overrides})
