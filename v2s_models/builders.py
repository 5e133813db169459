"""Component builders for experiment configs: `_component_: v2s_models.builders.<name>`, `preset` + overrides.

Each builder returns one nn.Module, so a config names every trained network separately. Overrides are the
module constructor's keyword arguments; an unknown one fails with the constructor's TypeError.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from v2s_models import regnet, varietysound


def _regnet_kwargs(preset: str, part: str) -> dict[str, Any]:
    name = preset if preset.startswith("regnet_") else f"regnet_{preset}"
    try:
        return dict(regnet.PRESETS[name]()[part])
    except KeyError:
        known = sorted(p.removeprefix("regnet_") for p in regnet.PRESETS)
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
    return varietysound.build_tdad(preset, **overrides)


def varietysound_mel_discriminator(preset: str = "paper", **overrides: Any) -> nn.Module:
    return varietysound.build_mel_discriminator(preset, **overrides)
