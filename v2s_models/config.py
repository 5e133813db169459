"""Experiment configs: loading, validation with errors that name the key, and building components.

A config is a YAML mapping (see `experiments/configs/<model>/<variant>.yaml`):

    name: regnet_demo            # stable run name: resuming depends on it
    paradigm: gan_mel            # gan_mel | autoregressive | correlation | vocoder
    seed: 0
    model:                       # registered components (v2s_models.components), keyword arguments beside them
      generator: {_component_: v2s_models.builders.regnet_generator, preset: debug, visual_dim: 2560}
      discriminator: {_component_: v2s_models.builders.regnet_discriminator, preset: debug}
    data: {manifest: data/prepared/manifest.jsonl, preset: regnet, train_split: train, val_split: val}
    optim:                       # one optimiser per trained module
      generator: {name: adam, lr: 2.0e-4, betas: [0.5, 0.999]}
    schedule: {name: linear_decay, constant_epochs: 0}
    losses: {gan: 1.0, mel: 10000.0}   # weights, so sweeps change a number, not code
    batch_size: 8
    epochs: 10
    scaling: {num_workers: 1, use_gpu: false, cpus_per_worker: 1}
    train: {artifact_clips: 4}   # the paradigm's options (TRAIN_KEYS) and Ray Train's (RAY_TRAIN_KEYS)
    tracking: {experiment: regnet}
    init_from: {model: "models:/regnet@champion", freeze: [generator.visual_encoder]}   # optional (fine-tuning)

`validate` checks every key at every level against what the code reads (the tables below; component arguments
against the builder's signature; gan_mel's `losses` against the `loss_keys` of the generator's GanSystem): an unknown key is a ConfigError naming the file, the key and the closest valid
key. `_component_` names resolve only through `v2s_models.components` (a registry; loading runs no code).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_type_hints

import torch
import yaml

from v2s_models import components
from v2s_models.training import gan_regnet, gan_varietysound
from v2s_models.training.gan_system import GanSystem, gan_system_for_class, gan_systems, no_gan_system

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
    "init_from": (dict, False),
}

# The keys each section accepts: what the code reads (`training/base.py`: optimisers and schedules; the solvers:
# data / train / losses, which the autoregressive, correlation and vocoder solvers import from here and
# tests/v2s_models/test_config_keys.py checks against gan_mel's; `ray_jobs/train.py`: scaling, tracking and the Ray
# Train options under `train`).
OPTIM_KEYS = ("name", "lr", "betas", "weight_decay", "eps")
SCHEDULE_KEYS: dict[str, tuple[str, ...]] = {
    "constant": ("name",),
    "linear_decay": ("name", "constant_epochs"),
    "exponential": ("name", "gamma"),
}
SCALING_KEYS = ("num_workers", "use_gpu", "cpus_per_worker")
TRACKING_KEYS = ("experiment",)
INIT_FROM_KEYS = ("model", "freeze")
RAY_TRAIN_KEYS = (
    "max_steps_per_epoch",
    "artifacts_every",
    "max_failures",
    "keep_checkpoints",
    "ddp_find_unused_parameters",
)
_FEATURE_DATA_KEYS = (
    "manifest",
    "preset",
    "train_split",
    "val_split",
    "visual_part",
    "max_clips",
    "categories",
)
DATA_KEYS: dict[str, tuple[str, ...]] = {
    "gan_mel": _FEATURE_DATA_KEYS,
    "autoregressive": _FEATURE_DATA_KEYS,
    "correlation": ("manifest", "train_split", "val_split", "max_clips"),
    "vocoder": (
        "manifest",
        "preset",
        "train_split",
        "val_split",
        "input_mel",
        "segment",
        "repeat",
        "max_clips",
        "val_max_clips",
    ),
}
TRAIN_KEYS: dict[str, tuple[str, ...]] = {
    "gan_mel": (
        "tdad_shift",
        "artifact_clips",
        "griffin_lim_iters",
        "val_seed",
        "val_background",
        "bn_recalibrate",
    ),
    "autoregressive": (
        "tbptt_chunk",
        "grad_clip",
        "grad_clip_kind",
        "max_seconds",
        "window",
        "val_max_seconds",
        "val_generate_clips",
        "val_generate_seconds",
        "artifact_clips",
        "artifact_seconds",
        "temperature",
        "val_seed",
    ),
    "correlation": ("min_shift", "val_seed", "grad_clip", "time_shift_negatives"),
    "vocoder": ("artifact_clips",),
}
# gan_mel's `train` keys are the paradigm's (above) and those of the generator's system (`GanSystem.train_keys`;
# VarietySound: mel_peak_window, background_input, pitch_shift_bins, temporal_warmup_epochs), refused for a
# generator whose system does not read them.
# gan_mel's weights are those of the generator's system (`training/gan_system.py`): a config's `losses` keys are
# checked against `loss_keys` of the GanSystem registered for the class its generator builds (REGNET: gan, mel,
# silence; VarietySound: mel, adv, mel_peak, event_shape; a user's system: its own). Importing the built-in systems registers them.
BUILTIN_GAN_SYSTEMS: tuple[type[GanSystem], ...] = (gan_regnet.RegnetGan, gan_varietysound.VarietySoundGan)
LOSS_KEYS: dict[str, tuple[str, ...]] = {
    "gan_mel": tuple(dict.fromkeys(k for system in BUILTIN_GAN_SYSTEMS for k in system.loss_keys)),
    "autoregressive": ("nll",),
    "correlation": ("bce",),
    "vocoder": ("adv", "fm", "mel"),
}


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


def _err(source: str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{source}: {key}: {msg}")


def _check_keys(source: str, where: str, given: Mapping[str, Any], known: Sequence[str]) -> None:
    """Refuses a key of `given` not in `known`, naming it, the file and the closest known key (difflib)."""
    for key in given:
        if key in known:
            continue
        close = components.closest(str(key), known)
        hint = f"did you mean {close!r}? " if close else ""
        raise _err(source, f"{where}{key}", f"unknown key ({hint}known: {', '.join(sorted(known))})")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate(cfg: Mapping[str, Any], source: str = "config") -> None:
    """Checks every key, type and value; raises ConfigError naming the file, the first bad key and, for an unknown
    key, the closest valid one. Components must be registered (`v2s_models.components`); their keyword arguments
    are checked against the builder's signature (and the module constructor it forwards to)."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(cfg).__name__}")
    _check_keys(source, "", cfg, list(_SCHEMA))
    for key, (kind, required) in _SCHEMA.items():
        if key not in cfg:
            if required:
                raise _err(source, key, "missing")
            continue
        value = cfg[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            raise _err(source, key, f"expected {getattr(kind, '__name__', kind)}, got {value!r}")
    paradigm = cfg["paradigm"]
    if paradigm not in PARADIGMS:
        raise _err(source, "paradigm", f"{paradigm!r} is not one of {', '.join(PARADIGMS)}")
    for key in ("batch_size", "epochs"):
        if cfg[key] < 1:
            raise _err(source, key, f"must be >= 1, got {cfg[key]}")
    _validate_model(cfg["model"], source)
    _check_keys(source, "data.", cfg["data"], DATA_KEYS[paradigm])
    if "manifest" not in cfg["data"]:
        raise _err(source, "data.manifest", "missing")
    _validate_optim(cfg, source)
    systems = _gan_mel_systems(cfg, source) if paradigm == "gan_mel" else ()
    _validate_losses(cfg, source, systems)
    _validate_schedule(cfg.get("schedule") or {}, source)
    _validate_scaling(cfg.get("scaling") or {}, source)
    train_keys = TRAIN_KEYS[paradigm]
    if paradigm == "gan_mel":
        train_keys = (*train_keys, *_system_keys(systems, "train_keys"))
    _check_keys(source, "train.", cfg.get("train") or {}, (*train_keys, *RAY_TRAIN_KEYS))
    _check_keys(source, "tracking.", cfg.get("tracking") or {}, TRACKING_KEYS)
    if "init_from" in cfg:
        _validate_init_from(cfg["init_from"], source)


def _validate_model(model: Mapping[str, Any], source: str) -> None:
    if not model:
        raise _err(source, "model", "names no component")
    for name, comp in model.items():
        where = f"model.{name}"
        if not isinstance(comp, Mapping) or not isinstance(comp.get("_component_"), str):
            raise _err(source, where, "expected a mapping with a '_component_' name")
        try:
            component = components.resolve(comp["_component_"], source=source, key=f"{where}._component_")
        except components.ComponentError as e:
            raise ConfigError(str(e)) from None
        accepted = component.accepted_keys()
        if accepted is not None:
            _check_keys(
                source, f"{where}.", {k: v for k, v in comp.items() if k != "_component_"}, sorted(accepted)
            )


def _validate_optim(cfg: Mapping[str, Any], source: str) -> None:
    for name, opt in cfg["optim"].items():
        where = f"optim.{name}"
        if name not in cfg["model"]:
            close = components.closest(str(name), cfg["model"])
            hint = f"did you mean {close!r}? " if close else ""
            raise _err(
                source,
                where,
                f"optimises {name!r}, which is not a model component ({hint}{', '.join(cfg['model'])})",
            )
        if not isinstance(opt, Mapping):
            raise _err(source, where, "expected a mapping")
        if "_component_" in opt:
            component = _component_of(components.OPTIMIZERS, "optimiser", opt["_component_"], source, where)
            _check_component_keys(source, where, opt, component)
        else:
            _check_keys(source, f"{where}.", opt, OPTIM_KEYS)
            if opt.get("name") not in OPTIMIZERS:
                raise _err(
                    source, f"{where}.name", f"{opt.get('name')!r} is not one of {', '.join(OPTIMIZERS)}"
                )
        lr = opt.get("lr")
        if not _number(lr) or not lr > 0:
            raise _err(source, f"{where}.lr", f"must be a positive number, got {lr!r}")
        betas = opt.get("betas", [0.9, 0.999])
        if not (
            isinstance(betas, list | tuple)
            and len(betas) == 2
            and all(_number(b) and 0 <= b < 1 for b in betas)
        ):
            raise _err(source, f"{where}.betas", f"must be two numbers in [0, 1), got {betas!r}")
        for key in ("weight_decay", "eps"):
            if key in opt and (not _number(opt[key]) or opt[key] < 0):
                raise _err(source, f"{where}.{key}", f"must be a number >= 0, got {opt[key]!r}")


def _validate_losses(cfg: Mapping[str, Any], source: str, systems: tuple[type[GanSystem], ...]) -> None:
    paradigm = cfg["paradigm"]
    known = _system_keys(systems, "loss_keys") if paradigm == "gan_mel" else LOSS_KEYS[paradigm]
    _check_keys(source, "losses.", cfg["losses"], known)
    for name, w in cfg["losses"].items():
        if not _number(w) or w < 0:
            raise _err(source, f"losses.{name}", f"must be a number >= 0, got {w!r}")


def _gan_mel_systems(cfg: Mapping[str, Any], source: str) -> tuple[type[GanSystem], ...]:
    """The GanSystem registered for the class `model.generator` builds, as a 1-tuple (resolving the component
    imports its module, which registers a user's system there).

    The class is the component's when it is a class, else the one its builder forwards to (the built-ins); a
    class with no system is refused. Failing those, a builder's return annotation is used when a system is
    registered for it. Otherwise (a builder function with no such annotation) every registered system: the keys
    some system reads are accepted here, and the generator's own system narrows them when the solver starts.
    """
    spec = cfg["model"].get("generator")
    if spec is not None:  # _validate_model checked the spec and that it resolves
        key = "model.generator._component_"
        component = components.resolve(spec["_component_"], source=source, key=key)
        built = next((c for c in (component.builder, component.forwards_to) if isinstance(c, type)), None)
        if built is not None:
            system = gan_system_for_class(built)
            if system is None:
                raise _err(source, "model.generator", no_gan_system(built))
            return (system,)
        annotated = _return_class(component.builder)
        system = gan_system_for_class(annotated) if annotated is not None else None
        if system is not None:
            return (system,)
    return tuple(gan_systems().values())


def _system_keys(systems: tuple[type[GanSystem], ...], attr: str) -> tuple[str, ...]:
    """The `loss_keys` or `train_keys` (`attr`) of `systems`, in order, without repeats."""
    return tuple(dict.fromkeys(k for system in systems for k in getattr(system, attr)))


def _return_class(builder: Any) -> type | None:
    """The class a builder's return annotation names, or None (no annotation, not a class, or not evaluable)."""
    try:
        returned = get_type_hints(builder).get("return")
    except (NameError, TypeError, AttributeError):  # an annotation that does not evaluate here
        return None
    return returned if isinstance(returned, type) else None


def _validate_schedule(sched: Mapping[str, Any], source: str) -> None:
    if "_component_" in sched:
        component = _component_of(components.SCHEDULES, "schedule", sched["_component_"], source, "schedule")
        _check_component_keys(source, "schedule", sched, component)
        return
    name = sched.get("name", "constant")
    if name not in SCHEDULES:
        close = components.closest(str(name), SCHEDULES)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise _err(source, "schedule.name", f"{name!r} is not one of {', '.join(SCHEDULES)}{hint}")
    _check_keys(source, "schedule.", sched, SCHEDULE_KEYS[name])
    for key in ("constant_epochs", "gamma"):
        if key in sched and (not _number(sched[key]) or sched[key] < 0):
            raise _err(source, f"schedule.{key}", f"must be a number >= 0, got {sched[key]!r}")


def _component_of(
    table: dict[str, components.Component], what: str, name: Any, source: str, where: str
) -> components.Component:
    try:
        return components.resolve_in(table, what, name, source=source, key=f"{where}._component_")
    except components.ComponentError as e:
        raise ConfigError(str(e)) from None


def _check_component_keys(
    source: str, where: str, spec: Mapping[str, Any], component: components.Component
) -> None:
    """The keys of an optimiser / schedule entry against its signature; required arguments must be there."""
    given = {k: v for k, v in spec.items() if k != "_component_"}
    _check_keys(source, f"{where}.", given, sorted(component.accepted_keys() or ()))
    for param in inspect.signature(component.builder).parameters.values():
        required = param.default is inspect.Parameter.empty and param.kind is not param.VAR_KEYWORD
        if required and param.kind is not param.VAR_POSITIONAL and param.name not in components.SUPPLIED:
            if param.name not in given:
                raise _err(source, f"{where}.{param.name}", f"missing (required by {component.name})")


def _validate_scaling(scaling: Mapping[str, Any], source: str) -> None:
    _check_keys(source, "scaling.", scaling, SCALING_KEYS)
    nw = scaling.get("num_workers", 1)
    if not isinstance(nw, int) or isinstance(nw, bool) or nw < 1:
        raise _err(source, "scaling.num_workers", f"must be an integer >= 1, got {nw!r}")
    if not isinstance(scaling.get("use_gpu", False), bool):
        raise _err(source, "scaling.use_gpu", f"must be true or false, got {scaling.get('use_gpu')!r}")
    cpus = scaling.get("cpus_per_worker", 1)
    if not _number(cpus) or not cpus > 0:
        raise _err(source, "scaling.cpus_per_worker", f"must be a positive number, got {cpus!r}")


def _validate_init_from(init: Mapping[str, Any], source: str) -> None:
    """`init_from: {model: models:/NAME@ALIAS | package folder | run id, freeze: [parameter-name prefixes]}`."""
    _check_keys(source, "init_from.", init, INIT_FROM_KEYS)
    model = init.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _err(
            source,
            "init_from.model",
            f"must name a model (models:/NAME@ALIAS, a package folder, a run id), got {model!r}",
        )
    freeze = init.get("freeze", [])
    if not isinstance(freeze, list) or not all(isinstance(p, str) and p for p in freeze):
        raise _err(source, "init_from.freeze", f"must be a list of parameter-name prefixes, got {freeze!r}")


def build_component(
    spec: Mapping[str, Any],
    *,
    source: str = "config",
    key: str = "model",
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """Builds a registered component: `spec['_component_']` called with the other keys (and `extra`).

    The name resolves only through `v2s_models.components` (nothing else is imported or called) and the keyword
    arguments are checked first; errors name `source` (the file) and `key` (e.g. `model.generator`).
    """
    if not isinstance(spec, Mapping) or "_component_" not in spec:
        raise _err(source, key, "expected a mapping with a '_component_' name")
    component = components.resolve(spec["_component_"], source=source, key=f"{key}._component_")
    kwargs = {k: v for k, v in spec.items() if k != "_component_"}
    kwargs.update(extra or {})
    accepted = component.accepted_keys()
    if accepted is not None:
        _check_keys(source, f"{key}.", kwargs, sorted(accepted))
    return component.builder(**kwargs)


OLD_OPTIMIZERS = {"adam": "torch.optim.Adam", "adamw": "torch.optim.AdamW"}  # `optim.<m>.name` -> component
OLD_SCHEDULES = {name: f"v2s_models.components.{name}" for name in SCHEDULES}  # `schedule.name` -> component


def build_optimizer(
    spec: Mapping[str, Any], params: Any, *, source: str = "config", key: str = "optim"
) -> torch.optim.Optimizer:
    """The optimiser of one `optim.<module>` entry over `params`: `{_component_: torch.optim.AdamW, lr: ...}` or
    the older `{name: adam | adamw, lr, betas, weight_decay, eps}`; numbers are read as floats, betas as a tuple."""
    if "_component_" in spec:
        component = components.resolve_in(
            components.OPTIMIZERS, "optimiser", spec["_component_"], source=source, key=f"{key}._component_"
        )
        kwargs = {k: v for k, v in spec.items() if k != "_component_"}
    else:
        if spec.get("name") not in OLD_OPTIMIZERS:
            raise _err(
                source, f"{key}.name", f"{spec.get('name')!r} is not one of {', '.join(OLD_OPTIMIZERS)}"
            )
        component = components.OPTIMIZERS[OLD_OPTIMIZERS[spec["name"]]]
        kwargs = {k: spec[k] for k in ("lr", "betas", "weight_decay", "eps") if k in spec}
    for name in ("lr", "weight_decay", "eps"):
        if name in kwargs:
            kwargs[name] = float(kwargs[name])
    if "betas" in kwargs:
        kwargs["betas"] = tuple(float(b) for b in kwargs["betas"])
    return component.builder(params, **kwargs)


def build_lr_schedule(
    spec: Mapping[str, Any] | None, optimizer: torch.optim.Optimizer, *, epochs: int, source: str = "config"
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch schedule of `schedule`: `{_component_: ..., <arguments>}` or the older
    `{name: constant | linear_decay | exponential, constant_epochs, gamma}`; absent: constant."""
    spec = dict(spec or {})
    if "_component_" in spec:
        component = components.resolve_in(
            components.SCHEDULES,
            "schedule",
            spec.pop("_component_"),
            source=source,
            key="schedule._component_",
        )
    else:
        name = spec.pop("name", "constant")
        if name not in OLD_SCHEDULES:
            raise _err(source, "schedule.name", f"unknown schedule {name!r}")
        component = components.SCHEDULES[OLD_SCHEDULES[name]]
    if "epochs" in inspect.signature(component.builder).parameters:
        spec["epochs"] = int(epochs)
    return component.builder(optimizer, **spec)


def instantiate(spec: Mapping[str, Any], **extra: Any) -> Any:
    """Calls the registered component `spec['_component_']` with the other keys (and `extra`) as keyword
    arguments (see `build_component`)."""
    return build_component(spec, extra=extra)


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
    """Returns a copy of `cfg` with each dotted key set. Intermediate mappings must exist (typos fail, naming the
    closest key), except an optional top-level section (`schedule`, `scaling`, `train`, `tracking`, `init_from`),
    which is created; the leaf key itself is checked by `validate`."""
    out = copy.deepcopy(dict(cfg))
    for dotted, value in overrides.items():
        node: Any = out
        *parents, leaf = dotted.split(".")
        for i, k in enumerate(parents):
            if (
                i == 0
                and isinstance(node, dict)
                and k not in node
                and _SCHEMA.get(k, (None, True)) == (dict, False)
            ):
                node[k] = {}
            if not isinstance(node, dict) or k not in node:
                close = components.closest(k, node if isinstance(node, dict) else [])
                hint = f" (did you mean {close!r}?)" if close else ""
                raise _err(
                    source,
                    ".".join(parents[: i + 1]),
                    f"override {dotted!r} names a key that does not exist{hint}",
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
