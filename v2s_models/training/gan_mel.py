"""The adversarial mel-generation paradigm: REGNET and VarietySound (and any registered mel generator)
trained by one solver.

visual features (B, T, D) -> mel (B, n_mels, kT) in the RegNet convention ([0, 1] log-mel), k mel frames per
video frame: the generator's `model_inputs().mel_frames_per_step` (4 for REGNET and VarietySound), which must
equal the data preset's `mel_frames_per_video_frame` (an error names both). The data preset (`data.preset`) is
the project's: `presets:` of params.yaml under the solver's root, else the built-in ones.
The architecture's own part (its components, loss weights, training step and vision-only generation) is a
`GanSystem` chosen by the generator class the config builds (`model.generator`):
`training/gan_regnet.py` (REGNET: `builders.regnet_generator` + `regnet_discriminator`) and
`training/gan_varietysound.py` (VarietySound: `varietysound_generator`, optional `tdad` and
`mel_discriminator`) say what one step does; each discriminator with its optimiser and loss is an `Adversary`
(`training/adversarial.py`). This module holds what they share.
Initial weights depend only on the config's `seed` (the modules are built under a forked, seeded RNG).
Discriminators are called on real and fake separately (their BatchNorm statistics never mix the two), as in
the authors' code; their gradients from the G step are discarded (zeroed before the next D step) instead of
toggling `requires_grad`, which DistributedDataParallel does not allow.

Validation (`validate`) uses vision only: modules in eval mode; REGNET is called without the real mel (its
regularizer's output is zero) and with a fixed-seed noise; VarietySound gets silence as background (unless
`train.val_background: real`) and, as
reference, the mel of ANOTHER clip of the same category in the loader (the next one in loader order, cyclic)
when the category has one there, else the clip's own mel; `ref_other_fraction` reports the share of clips
that got another clip's reference. The target mel is read only to score the output. Metrics (means over
clips): `mel_l1`, `mel_mse`; `energy_corr` (Pearson correlation of the frame-energy envelopes of generated
and real mel); `onset_corr` (Pearson correlation of the onset strength, the positive frame-energy flux
max-pooled to one value per video frame, the finest timing vision can give); `onset_corr_mismatched`, the
same against the real mel of a different clip (the next one in loader order), the chance level that
`onset_corr` must beat for the timing, not only the category's rhythm, to be learned; `mcd_db`, the
evaluation suite's mel-cepstral distortion (`v2s_models.metrics.mcd`) of the generated against the real mel
(for VarietySound with another clip's timbre, as above), and for VarietySound `mcd_own_reference_db`, the same
with each clip as its own timbre reference: the paper's "original pairs", the figure its Tables 7-8 (4.14 dB)
report. When the data has no
validation split the test split is used and every metric name starts with `test_split/`.

Mixed precision: when `self.amp_dtype` is set (the Ray loop sets bf16 on a GPU), forward passes run under
`torch.autocast`; losses are computed in float32 outside it (BCE is not autocast-safe). float16 would need
loss scaling, so it is refused.

Data (`cfg['data']`; an unknown key is an error naming it): manifest, preset (regnet), train_split, val_split,
visual_part (all | appearance | motion), max_clips (per split), categories (the papers train one model per
category). The generator's visual_dim / video_dim must equal the features' width (2560 on our data).

Solver-specific options (`cfg['train']`, all optional): `tdad_shift` [min, max] mel frames, `artifact_clips`
(default 4), `griffin_lim_iters` (default 32), `val_seed` (default 0: the noise / resampling draws of
validation and artifacts), `val_background` (VarietySound: `silence`, the default, or `real`: validation and
artifacts give the generator the clip's own mel as background, VarietySound's Table 8 "w Bi" row; the metrics
then no longer measure vision-only generation), `bn_recalibrate` (default false: true re-estimates the generator's
BatchNorm running statistics over the train split before every validation, and at the end of an epoch without
one, so validation, checkpoints and the package generate with statistics of the final weights;
`recalibrate_batchnorm`, `training/batchnorm.py`; not in the papers).

Artifacts (`write_artifacts`): for a few validation clips taken across categories, generated-vs-real mel PNGs,
Griffin-Lim wavs and mp4s with the generated soundtrack on the source video (`training/artifacts.py`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from v2s_models.config import TRAIN_KEYS as CONFIG_TRAIN_KEYS
from v2s_models.data import MelVisualDataset, collate_dicts, read_manifest
from v2s_models.interface import ModelInputs, is_sound_model
from v2s_models.metrics.mcd import mel_cepstral_distortion
from v2s_models.settings import DataSettings
from v2s_models.training import artifacts, gan_regnet, gan_varietysound
from v2s_models.training.base import Solver
from v2s_models.training.batchnorm import reestimating_batchnorm, set_batchnorm_train
from v2s_models.training.gan_system import GanSystem, GenerationInputs, gan_system_for
from v2s_models.vocoders.griffinlim import GriffinLimVocoder

log = logging.getLogger(__name__)

DATA_KEYS = ("manifest", "preset", "train_split", "val_split", "visual_part", "max_clips", "categories")
TRAIN_KEYS = CONFIG_TRAIN_KEYS["gan_mel"]  # the paradigm's own; each GanSystem adds its `train_keys`
FALLBACK_VAL_SPLIT = "test"
DEFAULT_TDAD_SHIFT = (22, 86)  # mel frames: about 0.26 s and 1 s at 86 frames/s
GAN_SYSTEMS = (gan_regnet.RegnetGan, gan_varietysound.VarietySoundGan)  # registered on import


# ------------------------------------------------------------------------------------------ alignment proxy


def frame_energy(mel: Tensor) -> Tensor:
    """Frame-energy envelope: mel (B, n_mels, L) -> (B, L), the mean over bins (log energy for RegNet mels)."""
    if mel.dim() != 3:
        raise ValueError(f"frame_energy expects a mel (B, n_mels, L), got shape {tuple(mel.shape)}")
    return mel.float().mean(dim=1)


def onset_strength(mel: Tensor, *, pool: int) -> Tensor:
    """Positive energy flux, max-pooled over `pool` mel frames: (B, n_mels, L) -> (B, ceil((L - 1) / pool)).

    Pooling to one value per video frame (`pool`: the generator's mel frames per visual step, 4 in the RegNet
    convention) scores timing at the resolution vision has.
    """
    flux = F.relu(torch.diff(frame_energy(mel), dim=1))  # (B, L - 1)
    return F.max_pool1d(flux.unsqueeze(1), pool, pool, ceil_mode=True).squeeze(1)


def pearson(a: Tensor, b: Tensor, *, eps: float = 1e-8) -> Tensor:
    """Row-wise Pearson correlation of (B, N) and (B, N) -> (B,); a constant row correlates 0 with anything."""
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(
            f"pearson needs two (B, N) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    return torch.where(denom > eps, (a * b).sum(dim=1) / denom.clamp_min(eps), torch.zeros_like(denom))


# ----------------------------------------------------------------------------------------------- the solver


class GanMelSolver(Solver):
    """REGNET or VarietySound training (see the module docstring); built from a validated config."""

    paradigm = "gan_mel"

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
        model = cfg["model"]
        if "generator" not in model:
            raise ValueError("model.generator: missing (the gan_mel paradigm needs a generator component)")
        # Initial weights are a function of the config's seed alone, whatever the global RNG did before.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg.get("seed", 0)))
            system = self._build_modules(model)
        for name in self.modules:
            if name not in cfg["optim"]:
                raise ValueError(f"optim.{name}: missing (every trained component needs an optimiser)")
        self.build_optimizers()

        train_opts = dict(cfg.get("train", {}))
        shift = train_opts.get("tdad_shift", DEFAULT_TDAD_SHIFT)
        if not (
            isinstance(shift, list | tuple) and len(shift) == 2 and all(isinstance(s, int) for s in shift)
        ):
            raise ValueError(f"train.tdad_shift: expected [min, max] mel frames (integers), got {shift!r}")
        self.tdad_shift = (int(shift[0]), int(shift[1]))
        self.artifact_clips = int(train_opts.get("artifact_clips", 4))
        self.griffin_lim_iters = int(train_opts.get("griffin_lim_iters", 32))
        self.val_seed = int(train_opts.get("val_seed", 0))
        self.val_background = str(train_opts.get("val_background", "silence"))
        if self.val_background not in ("silence", "real"):
            raise ValueError(
                f"train.val_background: expected 'silence' or 'real', got {self.val_background!r}"
            )
        self.bn_recalibrate = train_opts.get("bn_recalibrate", False)
        if not isinstance(self.bn_recalibrate, bool):
            raise ValueError(f"train.bn_recalibrate: expected true or false, got {self.bn_recalibrate!r}")
        self._recalibrated = False  # since the last training step
        self.gan: GanSystem = system(self)
        self.system = self.gan.name
        self.gan.check_components()
        self.gan.check_loss_weights(self.loss_weights)
        self.gan.check_train_keys(train_opts, TRAIN_KEYS)
        if self.val_background == "real" and not self.gan.has_background:
            raise ValueError(
                "train.val_background: 'real' needs a VarietySound generator with its background encoder "
                "(model.generator.use_background true)"
            )
        self.val_split_used: str | None = None
        self._val_set: Dataset | None = None
        self._train_set: Dataset | None = None

    def _build_modules(self, model: Mapping[str, Any]) -> type[GanSystem]:
        """Builds the generator, finds its `GanSystem`, checks `model`'s components against it and builds the
        rest; returns the system class (its object needs the train options)."""
        self.modules["generator"] = self.build_module("generator")
        generator = self.modules["generator"]
        system = gan_system_for(generator)
        if not is_sound_model(generator) or generator.model_inputs().output != "mel":
            raise ValueError(
                f"model.generator: builds a {type(generator).__name__}, which does not implement "
                "v2s_models.interface.SoundModel with a mel output (model_inputs, start_video, generate_windows)"
            )
        self.inputs: ModelInputs = generator.model_inputs()
        allowed = set(system.required) | set(system.optional)
        for name in model:
            if name not in allowed:
                raise ValueError(
                    f"model.{name}: not a {system.name} component (expected {', '.join(sorted(allowed))})"
                )
        for name in system.required:
            if name not in model:
                raise ValueError(f"model.{name}: missing (required for {system.name})")
        for name in model:
            if name != "generator":
                self.modules[name] = self.build_module(name)
        return system

    @property
    def visual_dim(self) -> int:
        return self.inputs.visual_dim

    # -------------------------------------------------------------------------------------------- data
    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """(train, validation) MelVisualDatasets; validation falls back to the test split when val is empty."""
        data = self.cfg["data"]
        for key in data:
            if key not in DATA_KEYS:
                raise ValueError(f"data.{key}: unknown key (known: {', '.join(DATA_KEYS)})")
        preset = str(data.get("preset", "regnet"))
        self._check_preset(preset)
        part = str(data.get("visual_part", "all"))
        max_clips = data.get("max_clips")
        categories = data.get("categories")  # the papers train one model per category: e.g. [dog]
        if categories is not None and not (
            isinstance(categories, list) and all(isinstance(c, str) for c in categories)
        ):
            raise ValueError(f"data.categories: expected a list of category names, got {categories!r}")
        select = {"root": self.root, "max_clips": max_clips, "categories": categories}
        rows = read_manifest(data["manifest"], split=data.get("train_split", "train"), **select)
        train = MelVisualDataset(rows, root=self.root, preset=preset, visual_part=part)
        self._check_data(train[0], preset, part)
        self._train_set = train

        val_split = data.get("val_split", "val")
        val: Dataset | None = None
        self.val_split_used = None
        for split in (val_split, FALLBACK_VAL_SPLIT) if val_split else ():
            try:
                vrows = read_manifest(data["manifest"], split=split, **select)
            except ValueError:
                continue  # no usable clip in this split
            val = MelVisualDataset(vrows, root=self.root, preset=preset, visual_part=part)
            self.val_split_used = split
            if split != val_split:
                log.warning("no clips in split %r: validating on the %r split", val_split, split)
            break
        self._val_set = val
        return train, val

    @property
    def mel_frames_per_step(self) -> int:
        """Mel frames the generator writes per visual step (its `model_inputs().mel_frames_per_step`)."""
        assert self.inputs.mel_frames_per_step is not None, "a mel model says mel_frames_per_step"
        return self.inputs.mel_frames_per_step

    def _check_preset(self, preset: str) -> DataSettings:
        """The project's data preset `preset` (`Solver.data_settings`), checked against the generator's mel rate."""
        settings = self.data_settings(preset)
        if settings.mel_frames_per_video_frame != self.mel_frames_per_step:
            raise ValueError(
                f"model.generator: {type(self.unwrapped('generator')).__name__} writes "
                f"{self.mel_frames_per_step} mel frames per video frame (model_inputs().mel_frames_per_step) but "
                f"data preset {preset!r} has {settings.mel_frames_per_video_frame} "
                f"(mel_frames_per_video_frame: round(sample_rate / mel.hop / fps) = "
                f"round({settings.sample_rate} / {settings.mel.hop} / {settings.fps}))"
            )
        return settings

    def _check_data(self, item: Mapping[str, Any], preset: str, part: str) -> None:
        visual, mel = item["visual"], item["mel"]
        key = self.gan.visual_dim_key
        if visual.shape[1] != self.visual_dim:
            raise ValueError(
                f"model.generator.{key} is {self.visual_dim} but the {preset!r} visual features "
                f"(data.visual_part={part!r}) of clip {item['clip_id']} are {visual.shape[1]}-d: set "
                f"model.generator.{key}: {visual.shape[1]} (and the discriminators' {key} alike)"
            )
        n_mels = self.inputs.n_mels
        if mel.shape[0] != n_mels:
            raise ValueError(
                f"model.generator.n_mels is {n_mels} but the {preset!r} mels of clip {item['clip_id']} have "
                f"{mel.shape[0]} bins: set model.generator.n_mels (and the discriminators') to {mel.shape[0]}"
            )
        if mel.shape[1] != self.mel_frames_per_step * visual.shape[0]:
            raise ValueError(
                f"clip {item['clip_id']}: mel of {mel.shape[1]} frames for {visual.shape[0]} video frames; "
                f"the generator needs {self.mel_frames_per_step} mel frames per video frame "
                f"(data.preset={preset!r})"
            )

    def collate_fn(self) -> Any:
        return collate_dicts

    # ---------------------------------------------------------------------------------------- training
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """torch.autocast when `amp_dtype` is set, else a no-op."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        if self.amp_dtype == torch.float16:
            raise ValueError("amp_dtype float16 needs loss scaling, which gan_mel does not do: use bfloat16")
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _batch(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        visual = batch["visual"].to(self.device, non_blocking=True)
        mel = batch["mel"].to(self.device, non_blocking=True)
        assert visual.dim() == 3 and visual.shape[2] == self.visual_dim, f"{visual.shape=}"
        assert mel.shape[2] == self.mel_frames_per_step * visual.shape[1], f"{mel.shape=} {visual.shape=}"
        return visual, mel

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        visual, mel = self._batch(batch)
        self._recalibrated = False
        return self.gan.train_step(visual, mel)

    def end_epoch(self) -> None:
        if self.bn_recalibrate and not self._recalibrated:  # no validation this epoch
            self.recalibrate_batchnorm()
        super().end_epoch()

    def recalibrate_batchnorm(self) -> dict[str, Any]:
        """Re-estimates the generator's BatchNorm running statistics (`training/batchnorm.py`): vision-only
        generation as in `validate` (eval mode, seeded noise / references), BatchNorm layers in train mode with
        a cumulative average, over the train split in order, in batches of `batch_size`. Returns
        {"layers": BatchNorm layers re-estimated (0: nothing changed), "clips": clips seen, "split"}."""
        train = self._train_set if self._train_set is not None else self.datasets()[0]
        loader = DataLoader(train, batch_size=int(self.cfg["batch_size"]), collate_fn=collate_dicts)
        clips = 0
        with reestimating_batchnorm(self.unwrapped("generator")) as layers:
            if layers:
                for out in self.generate_batches(loader, batchnorm_train=True):
                    clips += len(out["clip_id"])
        self._recalibrated = True
        split = self.cfg["data"].get("train_split", "train")
        return {"layers": len(layers), "clips": clips, "split": split}

    # -------------------------------------------------------------------------------------- generation
    @contextlib.contextmanager
    def _eval_mode(self, *, batchnorm_train: bool = False) -> Iterator[None]:
        """Eval mode without gradients (the generator's BatchNorm layers in train mode when `batchnorm_train`);
        the modules' modes come back on exit."""
        modes = {k: m.training for k, m in self.modules.items()}
        self.train(False)
        if batchnorm_train:
            set_batchnorm_train(self.unwrapped("generator"))
        try:
            with torch.no_grad():
                yield
        finally:
            for k, m in self.modules.items():
                m.train(modes[k])

    def _references(self, loader: DataLoader) -> tuple[dict[str, str], dict[str, Tensor]]:
        """VarietySound's validation references: {clip: reference clip} and the reference mels (CPU).

        Another clip of the same category from the loader (the next one in loader order, cyclic), or the
        clip itself when its category has no other clip there.
        """
        order: dict[str, list[str]] = {}
        mels: dict[str, Tensor] = {}
        for batch in loader:
            for cid, cat, m in zip(batch["clip_id"], batch["category"], batch["mel"], strict=True):
                order.setdefault(cat, []).append(cid)
                mels[cid] = m
        refs = {ids[i]: ids[(i + 1) % len(ids)] for ids in order.values() for i in range(len(ids))}
        return refs, mels

    def generate_batches(
        self,
        loader: DataLoader,
        *,
        clip_ids: Collection[str] | None = None,
        own_reference: bool = False,
        batchnorm_train: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Vision-only generation over `loader` (only the clips in `clip_ids` when given), batch by batch, in
        eval mode without gradients.

        Yields {"clip_id": [...], "category": [...], "reference": [reference clip id or None per clip],
        "generated": (B, n_mels, kT) float32 CPU, "real": (B, n_mels, kT) float32 CPU (for scoring only)},
        k = `mel_frames_per_step`.
        VarietySound's references are drawn from the whole loader, whatever `clip_ids` selects. Noise (REGNET)
        and random resampling (VarietySound) come from a generator seeded by `train.val_seed`, so the output
        is a function of the weights, the loader and the selection alone. own_reference (VarietySound): also
        yield "generated_own_reference", each clip generated with its own mel as the timbre reference (the
        paper's "original pairs", Tables 7-8), drawn from a second generator with the same seed so that
        "generated" is unchanged. batchnorm_train: the generator's BatchNorm layers run in train mode (batch
        statistics, updating the running ones: `recalibrate_batchnorm`).
        """
        rng = torch.Generator().manual_seed(self.val_seed)
        rng_own = torch.Generator().manual_seed(self.val_seed)
        own_reference = own_reference and self.gan.takes_reference
        refs, ref_mels = self._references(loader) if self.gan.takes_reference else ({}, {})
        with self._eval_mode(batchnorm_train=batchnorm_train):
            for batch in loader:
                keep = [i for i, c in enumerate(batch["clip_id"]) if clip_ids is None or c in clip_ids]
                if not keep:
                    continue
                ids = [batch["clip_id"][i] for i in keep]
                visual = batch["visual"][keep].to(self.device)
                with self.autocast():
                    out = self.gan.generate(
                        GenerationInputs(
                            visual=visual,
                            clip_ids=ids,
                            real_mel=batch["mel"][keep].to(self.device),
                            references=refs,
                            reference_mels=ref_mels,
                            rng=rng,
                            rng_own=rng_own,
                            own_reference=own_reference,
                        )
                    )
                extra = {"generated_own_reference": out.own_reference} if own_reference else {}
                yield {
                    **extra,
                    "clip_id": ids,
                    "category": [batch["category"][i] for i in keep],
                    "reference": out.reference,
                    "generated": out.mel.float().cpu(),
                    "real": batch["mel"][keep].float().cpu(),
                }

    def artifact_selection(self, loader: DataLoader) -> list[str] | None:
        """`train.artifact_clips` clip ids of the loader's data set, taking the categories in turn (the first
        clip of each, then the second, ...), so that the files show several categories; None when the data
        set does not list its rows (then the first clips are taken)."""
        rows = getattr(loader.dataset, "rows", None)
        if rows is None:
            return None
        by_category: dict[str, list[str]] = {}
        for r in rows:
            by_category.setdefault(r["category"], []).append(r["clip_id"])
        picked: list[str] = []
        for rank in range(max(len(v) for v in by_category.values()) if by_category else 0):
            for ids in by_category.values():
                if rank < len(ids) and len(picked) < self.artifact_clips:
                    picked.append(ids[rank])
        return picked

    # -------------------------------------------------------------------------------------- validation
    def validate(self, loader: DataLoader) -> dict[str, float]:
        """Vision-only metrics over `loader` (see the module docstring for their meaning); with
        `train.bn_recalibrate` the BatchNorm statistics are re-estimated first."""
        if self.bn_recalibrate:
            self.recalibrate_batchnorm()

        sums = {"mel_l1": 0.0, "mel_mse": 0.0, "energy_corr": 0.0, "onset_corr": 0.0, "mcd_db": 0.0}
        own_reference = self.gan.takes_reference
        if own_reference:
            sums["mcd_own_reference_db"] = 0.0
        onsets_generated: list[Tensor] = []
        onsets_real: list[Tensor] = []
        n = other = 0
        for out in self.generate_batches(loader, own_reference=own_reference):
            gen, real = out["generated"], out["real"]
            sums["mel_l1"] += (gen - real).abs().mean(dim=(1, 2)).sum().item()
            sums["mel_mse"] += (gen - real).pow(2).mean(dim=(1, 2)).sum().item()
            sums["energy_corr"] += pearson(frame_energy(gen), frame_energy(real)).sum().item()
            og = onset_strength(gen, pool=self.mel_frames_per_step)
            orr = onset_strength(real, pool=self.mel_frames_per_step)
            sums["onset_corr"] += pearson(og, orr).sum().item()
            g_np, r_np = gen.float().cpu().numpy(), real.float().cpu().numpy()
            sums["mcd_db"] += sum(mel_cepstral_distortion(a, b) for a, b in zip(g_np, r_np, strict=True))
            if own_reference:  # each clip its own timbre reference: what VarietySound's 4.14 dB measures
                own = out["generated_own_reference"].numpy()
                sums["mcd_own_reference_db"] += sum(
                    mel_cepstral_distortion(a, b) for a, b in zip(own, r_np, strict=True)
                )
            onsets_generated.append(og)
            onsets_real.append(orr)
            n += len(out["clip_id"])
            other += sum(
                r is not None and r != c for r, c in zip(out["reference"], out["clip_id"], strict=True)
            )
        if n == 0:
            raise ValueError("validate: the loader yielded no clips")
        metrics = {k: v / n for k, v in sums.items()}
        if n > 1:
            og, orr = torch.cat(onsets_generated), torch.cat(onsets_real)
            metrics["onset_corr_mismatched"] = pearson(og, orr.roll(-1, dims=0)).mean().item()
        if self.gan.takes_reference:
            metrics["ref_other_fraction"] = other / n
        if self.val_split_used is not None and self.val_split_used != self.cfg["data"].get(
            "val_split", "val"
        ):
            metrics = {f"{self.val_split_used}_split/{k}": v for k, v in metrics.items()}
        return metrics

    # --------------------------------------------------------------------------------------- artifacts
    def write_artifacts(self, out_dir: Path, loader: DataLoader | None) -> list[Path]:
        """For `train.artifact_clips` clips of `loader` (default: the validation set), taken across categories
        (`artifact_selection`): a PNG of the generated vs real mel, the generated mel voiced by Griffin-Lim
        (wav), and the source video with the generated soundtrack (mp4; skipped with a warning when the source
        video is missing). Generation is vision-only, as in `validate`. Returns the files written."""

        if loader is None:
            if self._val_set is None:
                self.datasets()
            if self._val_set is None or len(self._val_set) == 0:
                return []
            loader = DataLoader(
                self._val_set, batch_size=min(4, self.artifact_clips), collate_fn=collate_dicts
            )
        settings = self._check_preset(str(self.cfg["data"].get("preset", "regnet")))
        vocoder = GriffinLimVocoder(
            convention="regnet",
            sample_rate=settings.sample_rate,
            n_iter=self.griffin_lim_iters,
            seed=self.val_seed,
        )
        rows = {r["clip_id"]: r for r in getattr(loader.dataset, "rows", [])}
        out_dir = Path(out_dir)
        written: list[Path] = []
        selection = self.artifact_selection(loader)
        done = 0
        for out in self.generate_batches(loader, clip_ids=selection):
            if done >= self.artifact_clips:
                break
            out = {k: v[: self.artifact_clips - done] for k, v in out.items()}
            done += len(out["clip_id"])
            for i, cid in enumerate(out["clip_id"]):
                row = rows.get(cid, {})
                src = row.get("source_path")
                video = None
                if src is not None:
                    video = Path(src) if Path(src).is_absolute() else self.root / src
                    if not video.is_file():
                        log.warning("source video %s of clip %s not found: no mp4", video, cid)
                        video = None
                ref = out["reference"][i]
                title = f"{self.system} {cid}" + (f" (reference {ref})" if ref is not None else "")
                written += artifacts.write_clip_artifacts(
                    out_dir,
                    cid,
                    generated_mel=out["generated"][i].clamp(0.0, 1.0),
                    real_mel=out["real"][i],
                    vocoder=vocoder,
                    sample_rate=settings.sample_rate,
                    hop=settings.mel.hop,
                    video_path=video,
                    title=title,
                )
        return written

    def inference_modules(self) -> list[str]:
        return ["generator"]
