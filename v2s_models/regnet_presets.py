"""REGNET's presets: the authors' shipped sizes (`regnet_paper`) and a tiny one for tests (`regnet_debug`), and
`build_regnet` (generator and discriminator from a preset). The networks are in `v2s_models.regnet`."""

from __future__ import annotations

from typing import Any

from torch import nn

from v2s_models.regnet import RegnetDiscriminator, RegnetGenerator

PAPER_PARAMETER_COUNTS = {"generator": 94_095_184, "discriminator": 11_420_545}


def regnet_paper() -> dict[str, dict[str, Any]]:
    """The authors' shipped configuration (dog_opts.yml): 2048-d RGB + flow features, aux lstm_last of 32."""
    return {
        "generator": dict(
            visual_dim=2048,
            noise_dim=512,
            encoder_channels=2048,
            encoder_convs=3,
            lstm_hidden=512,
            encoder_out=1024,
            aux_type="lstm_last",
            aux_dim=32,
            n_mels=80,
            decoder_channels=512,
            postnet_channels=512,
            postnet_convs=5,
            dropout=0.5,
            num_frames=215,
            mel_frames=860,
        ),
        "discriminator": dict(visual_dim=2048, n_mels=80, visual_hidden=1024, branch_channels=64),
    }


def regnet_debug() -> dict[str, dict[str, Any]]:
    """A tiny REGNET for tests: milliseconds per step on one CPU core."""
    return {
        "generator": dict(
            visual_dim=16,
            noise_dim=8,
            encoder_channels=32,
            encoder_convs=2,
            lstm_hidden=16,
            encoder_out=32,
            aux_type="lstm_last",
            aux_dim=8,
            aux_sample_rate=8,
            n_mels=16,
            decoder_channels=32,
            postnet_channels=32,
            postnet_convs=3,
            dropout=0.5,
            num_frames=8,
            mel_frames=32,
        ),
        "discriminator": dict(
            visual_dim=16, n_mels=16, visual_hidden=32, branch_channels=16, channels=(32, 32, 32)
        ),
    }


PRESETS = {"regnet_paper": regnet_paper, "regnet_debug": regnet_debug}

# Overrides that concern both networks go to both; the rest go to the generator only, unless prefixed.
_SHARED_KEYS = ("visual_dim", "n_mels")


def build_regnet(preset: str, **overrides: Any) -> tuple[RegnetGenerator, RegnetDiscriminator]:
    """Build (generator, discriminator) from a named preset.

    Overrides: `visual_dim` and `n_mels` apply to both networks; `d_<name>` to the discriminator's `<name>`;
    any other key to the generator (e.g. `aux_type="conv"`, `aux_dim=64`). Unknown keys raise a TypeError from
    the constructor.
    """
    try:
        config = PRESETS[preset]()
    except KeyError:
        raise ValueError(f"unknown REGNET preset {preset!r}; known: {sorted(PRESETS)}") from None
    g_kwargs, d_kwargs = config["generator"], config["discriminator"]
    for key, value in overrides.items():
        if key in _SHARED_KEYS:
            g_kwargs[key] = value
            d_kwargs[key] = value
        elif key.startswith("d_"):
            d_kwargs[key[2:]] = value
        else:
            g_kwargs[key] = value
    return RegnetGenerator(**g_kwargs), RegnetDiscriminator(**d_kwargs)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
