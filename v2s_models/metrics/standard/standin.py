"""Test-sized stand-in weights for the standard networks, so CI and `dvc repro` run every code path without
the official checkpoints: a narrow model of each architecture (`panns.cnn14_16k_standin`,
`vggish.vggish_standin`, `passt.passt_standin`) with seeded random weights (He-normal, `randomise`), saved in the official
key names, each with a `<file>.standin.json` sidecar that labels it. Their figures are never comparable to
published ones; tables mark them "stand-in, not comparable".

    python -m v2s_models.metrics.standard.standin OUT_DIR [--seed N]     # the DVC stage standard_standin
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

from v2s_models.metrics.standard import panns, passt, vggish
from v2s_models.metrics.standard.weights import STANDIN_FILES, STANDIN_SUFFIX

# Cnn14's bn0 normalises the log mel (dB) per band; a stand-in has no trained statistics, so it gets a typical
# level of clip log mels (-20 dB, spread 20 dB) instead of (0, 1), which would leave the random net blind to
# the spectrum (every clip mapped to nearly the same embedding).
STANDIN_LOGMEL_MEAN_DB, STANDIN_LOGMEL_STD_DB = -20.0, 20.0

BUILDERS = {"panns": panns.cnn14_16k_standin, "passt": passt.passt_standin, "vggish": vggish.vggish_standin}


def randomise(model: nn.Module) -> nn.Module:
    """He-normal weights and zero biases for every learned convolution and linear layer (the frozen STFT
    convolutions of Cnn14 are kept), so activations keep their scale through the random layers."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    bn0 = getattr(model, "bn0", None)
    if isinstance(bn0, nn.BatchNorm2d):
        bn0.running_mean.fill_(STANDIN_LOGMEL_MEAN_DB)
        bn0.running_var.fill_(STANDIN_LOGMEL_STD_DB**2)
    return model


def write_standins(out_dir: Path, *, seed: int = 0) -> dict[str, Path]:
    """Write `<network>_standin.pt` and its sidecar for every implemented network; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for offset, (network, build) in enumerate(sorted(BUILDERS.items())):
        torch.manual_seed(seed + offset)
        model = randomise(build())
        path = out_dir / STANDIN_FILES[network]
        torch.save(model.state_dict(), path)
        n_params = sum(p.numel() for p in model.parameters())
        note = f"seeded random weights (seed {seed + offset}), test-sized {network} with {n_params} parameters, not trained"
        sidecar = {"network": network, "seed": seed + offset, "parameters": n_params, "note": note}
        path.with_name(path.name + STANDIN_SUFFIX).write_text(json.dumps(sidecar, indent=2) + "\n")
        written[network] = path
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for network, path in write_standins(args.out_dir, seed=args.seed).items():
        print(f"{network}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
