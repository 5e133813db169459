"""The autoregressive sample-generation paradigm: Zhou et al.'s SampleRNN models and the seq2seq SampleRNN.

quantised waveform (B, N) in 0..255, visual features -> per-sample logits (B, N, 256). The module the config
builds as `model.model` is any `v2s_models.interface.SoundModel` with a waveform output and the autoregressive
forward: `model(samples_q (B, lookback + L), visual (B, T, appearance_dim), flow=(B, T, flow_dim) [only when its
model_inputs().flow_dim > 0], hidden=None | state, start_sample=int) -> logits (B, L, 256), state` (a state with
`.detach()`), and `lookback` / `silence` (the samples of context before the first predicted one, and the
quantised value of silence). The solver reads everything else from `model_inputs()`: one visual step per video
frame, or per second (`per_second`: the per-second appearance features); appearance and flow (`flow_dim` > 0:
`data.visual_part: all`, split by `ModelInputs.split_flow`); the widths the data are checked against; and
`samples_per_step` when the model relies on one. The shipped models:

Zhou et al. 2018 (`v2s_models.builders.zhou`, a VisualSampleRNN), WaveformDataset over the `zhou` preset
(16 kHz, 15.6 fps, 10 s: wav_q (160000,), visual (156, 2560) = EfficientNet-Lite0 appearance 1280 + motion
1280 per frame):
    - Frame / Seq: `visual` is the appearance half (`data.visual_part: appearance`, the default; the paper
      uses VGG19 fc6 of the RGB frame, 4096-d, here 1280-d, so `visual_dim: 1280` in the configs);
    - Flow: `data.visual_part` must be `all`; the appearance half is passed as `visual` and the motion half
      (the same image network on rendered DIS/TV-L1 optical flow, standing in for the temporal-ConvNet
      fc6) as `flow` (`flow_dim: 1280`).
Correlation-filtered seq2seq (`v2s_models.builders.seq2seq`, a Seq2SeqSampleRNN): `PerSecondWaveformDataset`
joins the per-second appearance features (S = 10, 1280-d) with wav_q of the `zhou` preset (both cover the same
10 s looped clip); `data.manifest` may point to a correlation-filtered subset (`v2s_models.correlation_filter`).

One `train_step(batch)`:
    1. a window of `train.max_seconds` of every clip (null: the whole clip). `train.window: random` (default)
       starts it at a random video step (frame for Zhou, second for seq2seq) drawn from torch's global
       generator (seeded and checkpointed by the loop); `start` uses the clip's beginning. The visual
       features are cropped to the steps the window covers, so the Seq/Flow/seq2seq encoders summarise the
       excerpt whose audio follows their state and the Frame method's frame index stays exact. This makes
       short-window training (the demo) consistent with generation, which starts from the video's own start.
    2. truncated BPTT (the reference SampleRNN's): the window is preceded by 16 samples of silence and cut
       into `train.tbptt_chunk` (1024) sample chunks; each chunk is one Adam step (cross-entropy in nats,
       times `losses.nll`) with gradient clipping (`train.grad_clip`, by value as in the reference
       implementation, or by norm with `train.grad_clip_kind: norm`); the hidden state is carried to the
       next chunk and detached. Seq/Flow/seq2seq encoders (and the learned initial states of the tiers) set
       the state on the first chunk only, so they are trained through that chunk (see VisualSampleRNN). A train_step is therefore several
       optimiser steps; it returns the mean NLL of its chunks in nats (`nll`) and bits (`nll_bits`).
    Under DistributedDataParallel the encoder is unused on later chunks: wrap with
    `find_unused_parameters=True`.

Validation (`validate`): the average negative log-likelihood per sample of the real audio given the video,
in nats (`nll`) and bits (`nll_bits` = nats / ln 2), over the first `train.val_max_seconds` of every clip
(null: whole clips), computed with teacher forcing exactly like training. The real audio is only the sequence
being scored (each sample's probability given the video and the previous real samples): this is Zhou et al.'s
Table 1 metric (2.6-2.7 on VEGAS; the paper does not state the unit, the reference SampleRNN code reports
nats, so compare with `nll`). No sound is generated from it. With `train.val_generate_clips` > 0 the first
clips of the loader also get `train.val_generate_seconds` of audio generated from vision alone, scored by
`gen_envelope_corr` (Pearson correlation of 20 ms RMS envelopes with the real audio, the timing proxy) and
`gen_rms_ratio` (generated / real RMS). Without a validation split the test split is used and every metric
name starts with `test_split/`.

Artifacts (`write_artifacts`): for the first `train.artifact_clips` clips, `train.artifact_seconds` of audio
generated from vision alone (from the clip's start, sampled with a generator seeded by `train.val_seed`):
`<clip>.wav` (16-bit PCM at the data's sample rate), `<clip>_real.wav` (the same excerpt of the real audio) and
`<clip>_waveform.png` (generated vs real waveforms and RMS envelopes; matplotlib Agg).

Data keys (`cfg['data']`): manifest, preset (zhou), train_split, val_split, visual_part, max_clips, categories
(a list; Zhou et al. train one model per category). Loss weights: exactly {nll: w}.
Options (`cfg['train']`, all optional): tbptt_chunk (1024), grad_clip (1.0; 0 or null: off), grad_clip_kind
(value | norm), max_seconds (null), window (random | start), val_max_seconds (null), val_generate_clips (0),
val_generate_seconds (0.5), artifact_clips (2), artifact_seconds (1.0), temperature (1.0), val_seed (0).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from v2s_models.audio import dequantize_linear
from v2s_models.config import DATA_KEYS as CONFIG_DATA_KEYS
from v2s_models.config import LOSS_KEYS as CONFIG_LOSS_KEYS
from v2s_models.config import TRAIN_KEYS as CONFIG_TRAIN_KEYS
from v2s_models.correlation import sequence_nll
from v2s_models.data import PerSecondDataset, WaveformDataset, collate_dicts, feature_dir, read_manifest
from v2s_models.interface import ModelInputs, is_sound_model
from v2s_models.modules.video_encoders import samples_per_video_frame
from v2s_models.samplernn import SampleRNNState, tbptt_chunks
from v2s_models.settings import DataSettings
from v2s_models.training.artifacts import safe_name, write_wav
from v2s_models.training.base import Solver
from v2s_models.training.options import train_option_int

log = logging.getLogger(__name__)

# The keys this paradigm reads: one list, in v2s_models.config, which validate() checks every config against.
DATA_KEYS = CONFIG_DATA_KEYS["autoregressive"]
TRAIN_KEYS = CONFIG_TRAIN_KEYS["autoregressive"]
LOSS_KEYS = CONFIG_LOSS_KEYS["autoregressive"]
FALLBACK_VAL_SPLIT = "test"
ENVELOPE_SECONDS = 0.02  # RMS envelope window of the generation metrics and plots
WAV_Q_LEVELS = 256  # the prepared wav_q: the waveform linearly quantised to 256 levels


# -------------------------------------------------------------------------------------------------- data


class PerSecondWaveformDataset(Dataset):
    """Seq2seq items: wav_q (N,) int64 in 0..255 of the `preset` features and visual (S, Dv) float32, the
    per-second appearance features of the same clip (PerSecondDataset's `appearance`)."""

    def __init__(
        self, rows: Sequence[dict[str, Any]], *, root: str | Path = ".", preset: str = "zhou"
    ) -> None:
        self.rows, self.root, self.preset = list(rows), Path(root), preset
        self._per_second = PerSecondDataset(self.rows, root=root)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.rows[i]
        wav_q = np.load(feature_dir(r, self.preset, self.root) / "wav_q.npy").astype(np.int64)
        item = self._per_second[i]
        return {
            "wav_q": torch.from_numpy(wav_q),
            "visual": item["appearance"],
            "clip_id": r["clip_id"],
            "category": r["category"],
        }


# --------------------------------------------------------------------------------------------- metrics


def nats_to_bits(nats: float | Tensor) -> float | Tensor:
    """Cross-entropy in nats -> bits (divide by ln 2)."""
    return nats / math.log(2.0)


def rms_envelope(wav: Tensor, window: int) -> Tensor:
    """RMS over consecutive windows: (B, N) float -> (B, N // window)."""
    if wav.dim() != 2 or window <= 0 or wav.shape[1] < window:
        raise ValueError(f"rms_envelope needs (B, N >= {window}) audio, got {tuple(wav.shape)}")
    n = wav.shape[1] // window * window
    return wav[:, :n].reshape(wav.shape[0], -1, window).pow(2).mean(dim=2).sqrt()


def _pearson(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Row-wise Pearson correlation (B, N), (B, N) -> (B,); a constant row gives 0."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(denom > eps, (a * b).sum(dim=1) / denom.clamp_min(eps), torch.zeros_like(denom))


def plot_waveforms(
    path: str | Path, generated: np.ndarray, real: np.ndarray | None, *, sample_rate: int, title: str = ""
) -> Path:
    """PNG of a generated waveform (N,) [and the real one (N,)] with their 20 ms RMS envelopes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("generated", np.asarray(generated, np.float32))]
    if real is not None:
        panels.append(("real", np.asarray(real, np.float32)))
    fig = Figure(figsize=(10, 2.0 * (len(panels) + 1)), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels) + 1, 1, sharex=True)
    window = max(1, int(ENVELOPE_SECONDS * sample_rate))
    for ax, (label, wav) in zip(axes, panels, strict=False):
        ax.plot(np.arange(wav.shape[0]) / sample_rate, wav, linewidth=0.4)
        ax.set_ylim(-1.05, 1.05)
        ax.set_ylabel(label)
    for label, wav in panels:
        env = rms_envelope(torch.from_numpy(wav)[None], window)[0].numpy()
        axes[-1].plot((np.arange(env.shape[0]) + 0.5) * window / sample_rate, env, label=label, linewidth=0.9)
    axes[-1].set_ylabel("RMS (20 ms)")
    axes[-1].set_xlabel("time (s)")
    axes[-1].legend(loc="upper right", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


# ----------------------------------------------------------------------------------------------- solver


def _opt_float(opts: Mapping[str, Any], key: str, default: float | None) -> float | None:
    value = opts.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"train.{key}: expected a number >= 0 or null, got {value!r}")
    return float(value)


class AutoregressiveSolver(Solver):
    """SampleRNN training with truncated BPTT for Zhou's Frame/Seq/Flow and the seq2seq system.

    See the module docstring for the data, the step, the metrics and the options.
    """

    paradigm = "autoregressive"

    def __init__(
        self,
        cfg: Mapping[str, Any],
        *,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        root: Path | str = ".",
    ) -> None:
        super().__init__(cfg, device=device, rank=rank, world_size=world_size, root=root)
        if set(cfg["model"]) != {"model"}:
            raise ValueError(
                f"model: the autoregressive paradigm takes exactly one component named 'model' "
                f"(builders.zhou or builders.seq2seq), got {sorted(cfg['model'])}"
            )
        if set(cfg["optim"]) != {"model"}:
            raise ValueError(f"optim: expected exactly one entry 'model', got {sorted(cfg['optim'])}")
        if set(self.loss_weights) != set(LOSS_KEYS):
            raise ValueError(
                f"losses: the autoregressive paradigm takes exactly {{nll: w}}, got {cfg['losses']}"
            )
        self.modules["model"] = self.build_module("model")
        model = self.modules["model"]
        if not is_sound_model(model) or model.model_inputs().output != "waveform":
            raise ValueError(
                f"model.model: builds a {type(model).__name__}; the autoregressive paradigm trains "
                "VisualSampleRNN (builders.zhou) or Seq2SeqSampleRNN (builders.seq2seq), or any "
                "v2s_models.interface.SoundModel with a waveform output and the autoregressive forward"
            )
        self.inputs: ModelInputs = model.model_inputs()
        self.build_optimizers()

        data = cfg["data"]
        for key in data:
            if key not in DATA_KEYS:
                raise ValueError(f"data.{key}: unknown key (known: {', '.join(DATA_KEYS)})")
        self.preset = str(data.get("preset", "zhou"))
        self.settings: DataSettings = self.data_settings(self.preset)
        default_part = "all" if self.inputs.flow_dim else "appearance"
        self.visual_part = str(data.get("visual_part", default_part))
        if self.inputs.flow_dim and self.visual_part != "all":
            raise ValueError(
                "data.visual_part: the flow encoder (a model with flow_dim > 0) reads appearance and motion "
                f"(visual_part: all), got {self.visual_part!r}"
            )
        if self.inputs.per_second and self.visual_part != "appearance":
            raise ValueError(
                "data.visual_part: seq2seq (a per-second model) reads the per-second appearance features, "
                f"got {self.visual_part!r}"
            )
        # Samples per visual step: a video frame (Zhou, s = ceil(sr / fps)) or one second (per-second features).
        if self.inputs.per_second:
            self.visual_hop = int(self.settings.sample_rate)
        else:
            self.visual_hop = samples_per_video_frame(self.settings.sample_rate, self.settings.fps)
        step = self.inputs.samples_per_step
        if step is not None and step != self.visual_hop:
            raise ValueError(
                f"model.model: the model (Zhou's Frame encoder) steps {step} samples per visual step but data "
                f"preset {self.preset!r} has {self.visual_hop}: set sample_rate / fps to the preset's"
            )

        opts = dict(cfg.get("train", {}))
        for key in opts:
            if key not in TRAIN_KEYS:
                raise ValueError(f"train.{key}: unknown key (known: {', '.join(TRAIN_KEYS)})")
        lookback = model.lookback
        self.chunk_len = train_option_int(opts, "tbptt_chunk", 1024, minimum=1)
        if self.chunk_len % lookback:
            raise ValueError(f"train.tbptt_chunk: must be a multiple of {lookback}, got {self.chunk_len}")
        self.grad_clip = _opt_float(opts, "grad_clip", 1.0)
        self.grad_clip_kind = str(opts.get("grad_clip_kind", "value"))
        if self.grad_clip_kind not in ("value", "norm"):
            raise ValueError(f"train.grad_clip_kind: 'value' or 'norm', got {self.grad_clip_kind!r}")
        self.max_seconds = _opt_float(opts, "max_seconds", None)
        self.window = str(opts.get("window", "random"))
        if self.window not in ("random", "start"):
            raise ValueError(f"train.window: 'random' or 'start', got {self.window!r}")
        self.val_max_seconds = _opt_float(opts, "val_max_seconds", None)
        self.val_generate_clips = train_option_int(opts, "val_generate_clips", 0)
        self.val_generate_seconds = _opt_float(opts, "val_generate_seconds", 0.5) or 0.0
        self.artifact_clips = train_option_int(opts, "artifact_clips", 2)
        self.artifact_seconds = _opt_float(opts, "artifact_seconds", 1.0) or 0.0
        self.temperature = _opt_float(opts, "temperature", 1.0) or 0.0
        if self.temperature <= 0:
            raise ValueError(f"train.temperature: must be > 0, got {opts.get('temperature')!r}")
        self.val_seed = train_option_int(opts, "val_seed", 0)
        for key, seconds in (("max_seconds", self.max_seconds), ("val_max_seconds", self.val_max_seconds)):
            if seconds is not None and self._window_samples(seconds, 10**12) < lookback:
                raise ValueError(f"train.{key}: {seconds} s is shorter than one {lookback}-sample frame")
        self.val_split_used: str | None = None
        self._val_set: Dataset | None = None

    # -------------------------------------------------------------------------------------------- data
    def _dataset(self, rows: list[dict[str, Any]]) -> Dataset:
        if self.inputs.per_second:
            return PerSecondWaveformDataset(rows, root=self.root, preset=self.preset)
        return WaveformDataset(rows, root=self.root, preset=self.preset, visual_part=self.visual_part)

    def _rows(self, split: str) -> list[dict[str, Any]]:
        data = self.cfg["data"]
        try:
            return read_manifest(
                data["manifest"],
                split=split,
                root=self.root,
                max_clips=data.get("max_clips"),
                categories=data.get("categories"),  # Zhou et al. train one model per category
            )
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"{e} (data.manifest; a correlation-filtered subset is written by `python -m "
                "v2s_models.correlation_filter --checkpoint ... --manifest ... --out ...`)"
            ) from None

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """(train, validation) data sets; validation falls back to the test split when val is empty."""
        data = self.cfg["data"]
        train = self._dataset(self._rows(str(data.get("train_split", "train"))))
        self._check_item(train[0])
        val_split = data.get("val_split", "val")
        val: Dataset | None = None
        self.val_split_used = None
        for split in (val_split, FALLBACK_VAL_SPLIT) if val_split else ():
            try:
                rows = self._rows(str(split))
            except ValueError:
                continue  # no usable clip in this split
            val = self._dataset(rows)
            self.val_split_used = str(split)
            if split != val_split:
                log.warning("no clips in split %r: validating on the %r split", val_split, split)
            break
        self._val_set = val
        return train, val

    def _check_item(self, item: Mapping[str, Any]) -> None:
        model = self.unwrapped("model")
        visual, wav = item["visual"], item["wav_q"]
        where = f"clip {item['clip_id']}"
        width = visual.shape[1]
        if self.inputs.flow_dim:  # visual_part all: the appearance half, then the motion half
            parts = {
                "visual_dim": (self.inputs.appearance_dim, width // 2),
                "flow_dim": (self.inputs.flow_dim, width - width // 2),
            }
        else:
            parts = {"visual_dim": (self.inputs.visual_dim, width)}
        for field, (want, have) in parts.items():
            if want == have:
                continue
            key = self._width_key(field, want)
            if key is None:
                raise ValueError(
                    f"model.model: {type(model).__name__} reads {want} features per visual step "
                    f"(model_inputs().{field}) but the {self.preset!r} features of {where} "
                    f"(data.visual_part={self.visual_part!r}) give {have}: set its width to {have}"
                )
            raise ValueError(
                f"model.model.{key} is {want} but the {self.preset!r} features of {where} "
                f"(data.visual_part={self.visual_part!r}) give {have}: set model.model.{key}: {have}"
            )
        if wav.dim() != 1 or wav.shape[0] < model.lookback:
            raise ValueError(f"{where}: wav_q must be (N >= {model.lookback},), got {tuple(wav.shape)}")
        if visual.shape[0] * self.visual_hop < wav.shape[0] // model.lookback * model.lookback:
            raise ValueError(
                f"{where}: {visual.shape[0]} visual steps x {self.visual_hop} samples do not cover the "
                f"{wav.shape[0]} audio samples"
            )

    def _width_key(self, field: str, width: int) -> str | None:
        """The `model.model` argument of the config that set a width of `model_inputs()` (`field`: visual_dim
        or flow_dim): the argument of that name, else the only `*_dim` argument equal to it (seq2seq's
        video_dim); None when the config does not set it."""
        spec = self.cfg["model"]["model"]
        if field in spec:
            return field
        named = [k for k, v in spec.items() if k.endswith("_dim") and v == width]
        return named[0] if len(named) == 1 else None

    def collate_fn(self) -> Any:
        return collate_dicts

    # -------------------------------------------------------------------------------------- windowing
    def _window_samples(self, seconds: float | None, total: int) -> int:
        """Samples of a window of `seconds` (null: all), a whole number of coarsest frames, <= total."""
        lookback = self.unwrapped("model").lookback
        n = total if seconds is None else min(total, int(seconds * self.settings.sample_rate))
        return n // lookback * lookback

    def _inputs(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        wav = batch["wav_q"].to(self.device, non_blocking=True).long()  # (B, N)
        visual = batch["visual"].to(self.device, non_blocking=True).float()  # (B, T, D)
        assert wav.dim() == 2 and visual.dim() == 3 and wav.shape[0] == visual.shape[0], (
            f"{wav.shape=} {visual.shape=}"
        )
        return wav, visual

    def crop(
        self, wav: Tensor, visual: Tensor, *, seconds: float | None, random: bool
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """A window per clip: wav (B, N), visual (B, T, D) -> wav (B, n), visual (B, t, D'), {"flow": ...}.

        `window`, then the flow columns (`model_inputs().flow_dim`) split off into the extra keyword arguments
        of the model's forward.
        """
        wav_w, visual_w = self.window_of(wav, visual, seconds=seconds, random=random)
        visual_w, flow = self.inputs.split_flow(visual_w)
        return wav_w, visual_w, {} if flow is None else {"flow": flow}

    def window_of(
        self, wav: Tensor, visual: Tensor, *, seconds: float | None, random: bool
    ) -> tuple[Tensor, Tensor]:
        """A window per clip: wav (B, N), visual (B, T, D) -> wav (B, n), visual (B, t, D).

        The window starts on the visual-step grid (random steps from torch's global generator, or 0), so the
        cropped visual features are exactly those of the window.
        """
        batch, total = wav.shape
        n = self._window_samples(seconds, total)
        if n <= 0:
            raise ValueError(f"clips of {total} samples are shorter than one coarsest frame")
        steps = visual.shape[1]
        last = min((total - n) // self.visual_hop, steps - 1)
        if random and last > 0:
            starts = torch.randint(0, last + 1, (batch,)).tolist()
        else:
            starts = [0] * batch
        width = -(-n // self.visual_hop)
        wavs, visuals = [], []
        for b, s in enumerate(starts):
            s0 = s * self.visual_hop
            wavs.append(wav[b, s0 : s0 + n])
            visuals.append(visual[b, s : min(steps, s + width)])
        wav_w, visual_w = torch.stack(wavs), torch.stack(visuals)
        assert wav_w.shape == (batch, n), f"{wav_w.shape=}"
        return wav_w, visual_w

    # ---------------------------------------------------------------------------------------- training
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """torch.autocast when `amp_dtype` is set (bf16 on a GPU), else a no-op."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        if self.amp_dtype == torch.float16:
            raise ValueError(
                "amp_dtype float16 needs loss scaling, which this solver does not do: use bfloat16"
            )
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        """One TBPTT pass over a window of every clip: one Adam step per chunk; mean NLL (nats, bits)."""
        wav, visual = self._inputs(batch)
        wav, visual, extra = self.crop(wav, visual, seconds=self.max_seconds, random=self.window == "random")
        model, optimizer = self.modules["model"], self.optimizers["model"]
        inner = self.unwrapped("model")
        params = [p for p in model.parameters() if p.requires_grad]
        weight = self.loss_weights["nll"]
        hidden: SampleRNNState | None = None
        nll_sum, count = 0.0, 0
        for start, chunk in tbptt_chunks(
            wav, chunk_len=self.chunk_len, lookback=inner.lookback, silence=inner.silence
        ):
            with self.autocast():
                logits, hidden = model(chunk, visual, hidden=hidden, start_sample=start, **extra)
            target = chunk[:, inner.lookback :]
            nll = F.cross_entropy(logits.float().transpose(1, 2), target)  # nats per sample
            optimizer.zero_grad(set_to_none=True)
            (weight * nll).backward()
            if self.grad_clip:
                if self.grad_clip_kind == "value":
                    torch.nn.utils.clip_grad_value_(params, self.grad_clip)
                else:
                    torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
            optimizer.step()
            hidden = hidden.detach()  # truncated BPTT: the state carries on, its gradient does not
            nll_sum += nll.item() * target.numel()
            count += target.numel()
        mean = nll_sum / count
        return {"nll": mean, "nll_bits": float(nats_to_bits(mean))}

    # -------------------------------------------------------------------------------------- validation
    def _prefix(self, metrics: dict[str, float]) -> dict[str, float]:
        if self.val_split_used is not None and self.val_split_used != self.cfg["data"].get(
            "val_split", "val"
        ):
            return {f"{self.val_split_used}_split/{k}": v for k, v in metrics.items()}
        return metrics

    @contextlib.contextmanager
    def _eval_mode(self) -> Any:
        modes = {k: m.training for k, m in self.modules.items()}
        self.train(False)
        try:
            with torch.no_grad():
                yield
        finally:
            for k, m in self.modules.items():
                m.train(modes[k])

    def validate(self, loader: DataLoader) -> dict[str, float]:
        """NLL per sample (nats, bits) by teacher forcing; optional vision-only generation scores."""
        model = self.unwrapped("model")
        nll_sum, count = 0.0, 0
        with self._eval_mode():
            for batch in loader:
                wav, visual = self._inputs(batch)
                wav, visual, extra = self.crop(wav, visual, seconds=self.val_max_seconds, random=False)
                chunk = min(self.chunk_len, wav.shape[1])
                per_clip = sequence_nll(model, wav, visual, chunk_len=chunk, **extra)  # (B,) nats per sample
                nll_sum += per_clip.sum().item() * wav.shape[1]
                count += per_clip.numel() * wav.shape[1]
        if count == 0:
            raise ValueError("validate: the loader yielded no clips")
        metrics = {"nll": nll_sum / count, "nll_bits": float(nats_to_bits(nll_sum / count))}
        if self.val_generate_clips > 0 and self.val_generate_seconds > 0:
            generated = self.generate_clips(loader, self.val_generate_clips, self.val_generate_seconds)
            if generated is not None:
                gen, real = generated["generated"], generated["real"]
                window = max(1, int(ENVELOPE_SECONDS * self.settings.sample_rate))
                env_g, env_r = rms_envelope(gen, window), rms_envelope(real, window)
                metrics["gen_envelope_corr"] = _pearson(env_g, env_r).mean().item()
                rms_r = real.pow(2).mean().sqrt().item()
                metrics["gen_rms_ratio"] = gen.pow(2).mean().sqrt().item() / max(rms_r, 1e-8)
        return self._prefix(metrics)

    # -------------------------------------------------------------------------------------- generation
    def generate_clips(
        self, loader: Iterable[Mapping[str, Any]], max_clips: int, seconds: float
    ) -> dict[str, Any] | None:
        """Vision-only generation for the first `max_clips` clips of `loader` (batches), from each clip's start.

        Returns {"clip_id": [...], "generated": (B, n) float in [-1, 1], "real": (B, n) float (for scoring and
        plots only)} on the CPU, or None when the loader is empty. Sampling uses a generator seeded by
        `train.val_seed`, so the output depends only on the weights and the loader.
        """
        wavs, visuals, ids = [], [], []
        for batch in loader:
            for i, cid in enumerate(batch["clip_id"]):
                if len(ids) < max_clips:
                    wavs.append(batch["wav_q"][i])
                    visuals.append(batch["visual"][i])
                    ids.append(cid)
            if len(ids) >= max_clips:
                break
        if not ids:
            return None
        model = self.unwrapped("model")
        wav, visual = self._inputs({"wav_q": torch.stack(wavs), "visual": torch.stack(visuals)})
        wav, visual = self.window_of(wav, visual, seconds=seconds, random=False)
        rng = torch.Generator(device=self.device).manual_seed(self.val_seed)
        with self._eval_mode():  # SoundModel: the clips' windows from their start, as `v2s generate` does
            context = model.start_video(generator=rng, temperature=self.temperature)
            generated = model.generate_windows(visual, context, num_samples=wav.shape[1])
        real = torch.from_numpy(dequantize_linear(wav.cpu().numpy(), WAV_Q_LEVELS))
        return {"clip_id": ids, "generated": generated.float().cpu(), "real": real}

    def write_artifacts(self, out_dir: Path, loader: DataLoader | None) -> list[Path]:
        """`<clip>.wav`, `<clip>_real.wav`, `<clip>_waveform.png` for the first `train.artifact_clips` clips."""

        if self.artifact_clips <= 0 or self.artifact_seconds <= 0:
            return []
        if loader is None:
            if self._val_set is None:
                self.datasets()
            if self._val_set is None or len(self._val_set) == 0:
                return []
            loader = DataLoader(self._val_set, batch_size=self.artifact_clips, collate_fn=collate_dicts)
        out = self.generate_clips(loader, self.artifact_clips, self.artifact_seconds)
        if out is None:
            return []
        out_dir = Path(out_dir)
        sr = int(self.settings.sample_rate)
        written: list[Path] = []
        for i, cid in enumerate(out["clip_id"]):
            stem = safe_name(cid)
            gen, real = out["generated"][i].numpy(), out["real"][i].numpy()
            written.append(write_wav(out_dir / f"{stem}.wav", gen, sr))
            written.append(write_wav(out_dir / f"{stem}_real.wav", real, sr))
            title = f"{self.cfg['name']}: {cid}, generated from vision vs real"
            written.append(
                plot_waveforms(out_dir / f"{stem}_waveform.png", gen, real, sample_rate=sr, title=title)
            )
        return written

    def inference_modules(self) -> list[str]:
        return ["model"]
