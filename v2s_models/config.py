"""Experiment configs: loading, validation with errors that name the key, and building components.

A config is a YAML mapping (see `experiments/configs/<model>/<variant>.yaml`):

    name: regnet_demo            # stable run name: resuming depends on it
    paradigm: gan_mel            # gan_mel | autoregressive | correlation | vocoder
    seed: 0
    model:                       # components by dotted path, keyword arguments beside them
      generator: {_component_: v2s_models.regnet.build_regnet_generator, preset: debug, visual_dim: 2560}
      discriminator: {_component_: v2s_models.regnet.build_regnet_discriminator, preset: debug}
    data: {manifest: data/prepared/manifest.jsonl, preset: regnet, train_split: train, val_split: val}
    optim:                       # one optimiser per trained module
      generator: {name: adam, lr: 2.0e-4, betas: [0.5, 0.999]}
    schedule: {name: constant, constant_epochs: 0}
    losses: {gan: 1.0, mel: 10000.0}   # weights, so sweeps change a number, not code
    batch_size: 8
    epochs: 10
    scaling: {num_workers: 1, use_gpu: false, cpus_per_worker: 1}
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PARADIGMS = ("gan_mel", "autoregressive", "correlation", "vocoder")
OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("constant", "linear_decay", "exponential")

_SCHEMA: dict[str, tuple[type | tuple[type, ...], bool]] = {
    # key: (type, required)
    "name": (str, True),
    "paradigm": (str, True),
    "seed": (int, False),
    "description": (str, False),
    "model": (dict, True),
    "data": (dict, True),
    "optim": (dict, True),
    "schedule": (dict, False),
    "losses": (dict, True),
    "batch_size": (int, True),
    "epochs": (int, True),
    "scaling": (dict, False),
    "train": (dict, False),
    "tracking": (dict, False),
}


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


def _err(source: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {msg}")


def validate(cfg: Mapping[str, Any], source: str = "config") -> None:
    """Checks keys, types and values; raises ConfigError naming the first bad key."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(_SCHEMA))
    if unknown:
        raise _err(source, unknown[0], f"unknown key (known: {', '.join(sorted(_SCHEMA))})")
    for key, (kind, required) in _SCHEMA.items():
        if key not in cfg:
            if required:
                raise _err(source, key, "missing")
            continue
        value = cfg[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise _err(source, key, f"expected {getattr(kind, '__name__', kind)}, got {value!r}")
    if cfg["paradigm"] not in PARADIGMS:
        raise _err(source, "paradigm", f"{cfg['paradigm']!r} is not one of {', '.join(PARADIGMS)}")
    for key in ("batch_size", "epochs"):
        if cfg[key] < 1:
            raise _err(source, key, f"must be >= 1, got {cfg[key]}")
    for name, comp in cfg["model"].items():
        if not isinstance(comp, Mapping) or not isinstance(comp.get("_component_"), str):
            raise _err(source, f"model.{name}", "expected a mapping with a '_component_' dotted path")
        _resolve(comp["_component_"], source, f"model.{name}._component_")
    if "manifest" not in cfg["data"]:
        raise _err(source, "data.manifest", "missing")
    for name, opt in cfg["optim"].items():
        where = f"optim.{name}"
        if name not in cfg["model"]:
            raise _err(
                source,
                where,
                f"optimises {name!r}, which is not a model component ({', '.join(cfg['model'])})",
            )
        if not isinstance(opt, Mapping):
            raise _err(source, where, "expected a mapping")
        if opt.get("name") not in OPTIMIZERS:
            raise _err(source, f"{where}.name", f"{opt.get('name')!r} is not one of {', '.join(OPTIMIZERS)}")
        lr = opt.get("lr")
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not lr > 0:
            raise _err(source, f"{where}.lr", f"must be a positive number, got {lr!r}")
    for name, w in cfg["losses"].items():
        if not isinstance(w, int | float) or isinstance(w, bool) or w < 0:
            raise _err(source, f"losses.{name}", f"must be a number >= 0, got {w!r}")
    sched = cfg.get("schedule", {})
    if sched and sched.get("name", "constant") not in SCHEDULES:
        raise _err(source, "schedule.name", f"{sched.get('name')!r} is not one of {', '.join(SCHEDULES)}")
    scaling = cfg.get("scaling", {})
    nw = scaling.get("num_workers", 1)
    if not isinstance(nw, int) or isinstance(nw, bool) or nw < 1:
        raise _err(source, "scaling.num_workers", f"must be an integer >= 1, got {nw!r}")
    if not isinstance(scaling.get("use_gpu", False), bool):
        raise _err(source, "scaling.use_gpu", f"must be true or false, got {scaling.get('use_gpu')!r}")


def _resolve(dotted: str, source: str = "config", key: str = "_component_") -> Any:
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise _err(source, key, f"{dotted!r} is not a dotted path (package.module.function)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise _err(source, key, f"cannot import {module_name!r}: {e}") from None
    if not hasattr(module, attr):
        raise _err(source, key, f"{module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


def instantiate(spec: Mapping[str, Any], **extra: Any) -> Any:
    """Calls spec['_component_'] with the other keys (and `extra`) as keyword arguments."""
    kwargs = {k: v for k, v in spec.items() if k != "_component_"}
    kwargs.update(extra)
    return _resolve(spec["_component_"])(**kwargs)


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Reads a YAML config, applies dotted overrides (`{"losses.mel": 100}`), validates it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    with open(path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    cfg = apply_overrides(cfg or {}, overrides or {}, source=str(path))
    validate(cfg, str(path))
    return cfg


def apply_overrides(
    cfg: Mapping[str, Any], overrides: Mapping[str, Any], source: str = "config"
) -> dict[str, Any]:
    """Returns a copy of `cfg` with each dotted key set; intermediate mappings must exist (typos fail)."""
    out = copy.deepcopy(dict(cfg))
    for dotted, value in overrides.items():
        node: Any = out
        *parents, leaf = dotted.split(".")
        for i, k in enumerate(parents):
            if not isinstance(node, dict) or k not in node:
                raise _err(
                    source, ".".join(parents[: i + 1]), f"override {dotted!r} names a key that does not exist"
                )
            node = node[k]
        if not isinstance(node, dict):
            raise _err(source, dotted, "override target is not inside a mapping")
        node[leaf] = value
    return out


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become JSON strings (for MLflow params)."""
    flat: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            flat.update(flatten(v, key + "."))
        elif isinstance(v, list | tuple):
            flat[key] = json.dumps(v)
        else:
            flat[key] = v
    return flat


def config_hash(cfg: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]
