"""A trained model as a self-describing folder: what MLflow logs and what `v2s generate` loads.

    <dir>/v2s_model.yaml   paradigm, the experiment config, data settings (fps, sample rate, mel convention),
                           feature settings (extractor, image size, flow), inference module names
    <dir>/model.pt         {module name: state_dict} of the inference modules, read with weights_only=True

Modules are rebuilt from the config's `model.<name>._component_` entries, so loading needs no pickled classes.
Those names resolve only to registered components (`v2s_models.components`): a package naming anything else
(`subprocess.getoutput`, a module outside the registry) is refused, naming the file and the key, before any
import or any read of the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from v2s_models import components
from v2s_models.config import build_component
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


def check_components(config: Any, names: Any, *, source: str) -> None:
    """Refuses (ComponentError, naming `source` and the key) a model description whose `config.model` is not a
    mapping of registered components, or whose module `names` are not among them; imports nothing it names."""
    model = config.get("model") if isinstance(config, Mapping) else None
    if not isinstance(model, Mapping) or not model:
        raise components.ComponentError(f"{source}: config.model: expected a mapping of components")
    for name, spec in model.items():
        key = f"config.model.{name}._component_"
        if not isinstance(spec, Mapping):
            raise components.ComponentError(f"{source}: config.model.{name}: expected a mapping")
        components.check(spec.get("_component_"), source=source, key=key)
    if not isinstance(names, list) or not all(isinstance(n, str) and n in model for n in names):
        raise components.ComponentError(
            f"{source}: modules: expected a list of names from config.model ({', '.join(map(str, model))}), "
            f"got {names!r}"
        )


def load_package(
    path: str | Path, *, device: str | torch.device = "cpu", source: str | None = None
) -> ModelPackage:
    """Rebuilds the inference modules (in eval mode) and reads their weights.

    Every `_component_` of the description is checked against the registry first (see the module docstring);
    `source` names the model in errors (default: the description file's path; e.g. a `models:/` URI).
    """
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path} is not a v2s model folder (no {META_FILE})")
    where = str(meta_path) if source is None else f"{source} ({meta_path.name})"
    meta = yaml.safe_load(meta_path.read_text())
    if not isinstance(meta, Mapping):
        raise ValueError(f"{where}: expected a mapping")
    check_components(meta.get("config"), meta.get("modules"), source=where)
    state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    modules: dict[str, nn.Module] = {}
    for name in meta["modules"]:
        module = build_component(meta["config"]["model"][name], source=where, key=f"config.model.{name}")
        if not isinstance(
            module, nn.Module
        ):  # builders returning (generator, discriminator) pairs, or not a module
            raise TypeError(
                f"{where}: config.model.{name} builds a {type(module).__name__}, not one nn.Module"
            )
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
