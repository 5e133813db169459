"""Finding and strictly, safely loading the local checkpoints of the standard embedding networks.

Nothing is downloaded: a network's weights are a file the user names, looked up in this order:

1. `settings[<network>]`: an explicit path (params.yaml `standard_metrics.panns`, ...);
2. `$V2S_WEIGHTS_DIR/<official file name>`, then `settings["weights_dir"]/<official file name>`;
3. `settings["standin_dir"]/<stand-in file name>`: the test-sized stand-in the `standard_weights` DVC stage
   makes (a small model of the same architecture with seeded random weights).

A file is a stand-in when a `<file>.standin.json` sidecar lies next to it (the stage writes one); its figures
are labelled "stand-in, not comparable" everywhere. Any other file is taken as the official checkpoint.

Loading is `torch.load(..., weights_only=True)` (no pickled code runs) and strict: every tensor of the file
must be a tensor of the network (no unused key), every tensor of the network must be in the file, and every
shape must match; the error names the file and the offending keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

NETWORKS: tuple[str, ...] = ("panns", "vggish", "passt")
# The file names the reference implementations download (PANNs: Zenodo 3987831; torchvggish's release v0.1;
# hear21passt's release v0.0.1-audioset), so a directory of official downloads is found as it is.
OFFICIAL_FILES: dict[str, str] = {
    "panns": "Cnn14_16k_mAP=0.438.pth",
    "vggish": "vggish-10086976.pth",
    "passt": "passt-s-f128-p16-s10-ap.476-swa.pt",
}
STANDIN_FILES: dict[str, str] = {network: f"{network}_standin.pt" for network in NETWORKS}
STANDIN_SUFFIX = ".standin.json"
OFFICIAL, STANDIN, MISSING = "official", "stand-in", "missing"


@dataclass(frozen=True)
class WeightsInfo:
    """Where a network's weights were found and what they are: `kind` is "official", "stand-in" or "missing"."""

    network: str
    kind: str
    path: Path | None
    note: str = ""

    @property
    def comparable(self) -> bool:
        """Figures from these weights may be set beside published ones (official weights only)."""
        return self.kind == OFFICIAL

    def label(self) -> str:
        """The table label: `official`, `stand-in, not comparable` or `missing`."""
        return "stand-in, not comparable" if self.kind == STANDIN else self.kind


def _standin_note(path: Path) -> str | None:
    sidecar = path.with_name(path.name + STANDIN_SUFFIX)
    if not sidecar.is_file():
        return None
    return str(json.loads(sidecar.read_text()).get("note", "seeded random weights"))


def _info(network: str, path: Path) -> WeightsInfo:
    note = _standin_note(path)
    return WeightsInfo(network, OFFICIAL if note is None else STANDIN, path, note or "")


def find_weights(network: str, settings: Mapping | None = None) -> WeightsInfo:
    """The weights file of `network` ("panns", "vggish", "passt") by the lookup order above."""
    if network not in NETWORKS:
        raise ValueError(f"unknown network {network!r}; expected one of {NETWORKS}")
    settings = settings or {}
    explicit = settings.get(network)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"standard_metrics.{network}: weights file {path} does not exist")
        return _info(network, path)
    for root in (os.environ.get("V2S_WEIGHTS_DIR"), settings.get("weights_dir")):
        if root and (Path(root).expanduser() / OFFICIAL_FILES[network]).is_file():
            return _info(network, Path(root).expanduser() / OFFICIAL_FILES[network])
    standin_dir = settings.get("standin_dir")
    if standin_dir and (Path(standin_dir) / STANDIN_FILES[network]).is_file():
        return _info(network, Path(standin_dir) / STANDIN_FILES[network])
    return WeightsInfo(network, MISSING, None, f"no {OFFICIAL_FILES[network]} found")


def weights_status(settings: Mapping | None = None) -> dict[str, WeightsInfo]:
    """`{network: WeightsInfo}` for every network, so tables can mark which figures are comparable."""
    return {network: find_weights(network, settings) for network in NETWORKS}


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, loaded with `weights_only=True`; a `{"model": {...}}` wrapper (PANNs'
    training checkpoints) is unwrapped, and non-tensor entries beside it are ignored."""
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}"
        )
    return {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_strict(module: nn.Module, state: Mapping[str, torch.Tensor], *, source: str) -> nn.Module:
    """Copy `state` into `module`, requiring the same key set and every shape equal; returns `module` in eval mode."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unused = sorted(set(state) - set(expected))
    if missing or unused:
        raise ValueError(
            f"{source}: {len(missing)} tensors missing {missing[:8]}, {len(unused)} unused {unused[:8]}"
        )
    wrong = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(v.shape)}"
        for k, v in expected.items()
        if tuple(state[k].shape) != tuple(v.shape)
    ]
    if wrong:
        raise ValueError(f"{source}: {len(wrong)} shapes differ: {wrong[:8]}")
    module.load_state_dict(dict(state), strict=True)
    return module.eval()
