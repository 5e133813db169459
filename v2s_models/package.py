"""A trained model as a self-describing folder: what MLflow logs and what `v2s generate` loads.

    <dir>/v2s_model.yaml   paradigm, the experiment config, data settings (fps, sample rate, mel convention),
                           feature settings (extractor, image size, flow), inference module names
    <dir>/model.pt         {module name: state_dict} of the inference modules, read with weights_only=True

Modules are rebuilt from the config's `model.<name>._component_` entries, so loading needs no pickled classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from v2s_models.config import instantiate
from v2s_models.settings import DataSettings

META_FILE = "v2s_model.yaml"
WEIGHTS_FILE = "model.pt"


@dataclass
class ModelPackage:
    paradigm: str
    config: dict[str, Any]
    data_settings: DataSettings
    features: dict[str, Any]
    modules: dict[str, nn.Module] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def save_package(
    out_dir: str | Path,
    *,
    paradigm: str,
    config: Mapping[str, Any],
    data_settings: DataSettings,
    features: Mapping[str, Any],
    modules: Mapping[str, nn.Module],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Writes the two files (weights first, description last) and returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {name: {k: v.detach().cpu() for k, v in m.state_dict().items()} for name, m in modules.items()}
    tmp = out / (WEIGHTS_FILE + ".part")
    torch.save(state, tmp)
    tmp.replace(out / WEIGHTS_FILE)
    meta = {
        "paradigm": paradigm,
        "config": dict(config),
        "data_settings": data_settings.to_dict(),
        "features": dict(features),
        "modules": list(modules),
        "extra": dict(extra or {}),
    }
    (out / (META_FILE + ".part")).write_text(yaml.safe_dump(meta, sort_keys=False))
    (out / (META_FILE + ".part")).replace(out / META_FILE)
    return out


def load_package(path: str | Path, *, device: str | torch.device = "cpu") -> ModelPackage:
    """Rebuilds the inference modules (in eval mode) and reads their weights."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a v2s model folder (no {META_FILE})")
    meta = yaml.safe_load(meta_path.read_text())
    state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    modules: dict[str, nn.Module] = {}
    for name in meta["modules"]:
        module = instantiate(meta["config"]["model"][name])
        if isinstance(module, tuple):  # builders returning (generator, discriminator) pairs
            raise TypeError(f"model.{name} builds a tuple; configs must name one module per component")
        module.load_state_dict(state[name])
        modules[name] = module.to(device).eval()
    return ModelPackage(
        paradigm=meta["paradigm"],
        config=meta["config"],
        data_settings=DataSettings.from_dict(meta["data_settings"]),
        features=meta["features"],
        modules=modules,
        extra=meta.get("extra", {}),
    )
