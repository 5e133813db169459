"""Fine-tuning: a trained model's weights as the starting point of a new training run, with frozen parts.

An experiment config starts from another model with the top-level key

    init_from:
      model: models:/regnet@champion   # any reference `registry.resolve_model` reads: a registered version,
                                       # models:/m-<id>, an MLflow run id, a package or checkpoint folder
      freeze: [visual_encoder]         # parameter-name prefixes (or the part names below) that are not trained

The solver is built from the config as usual; then `initialise` copies the source's weights into the modules the
source holds (a model package holds the inference modules only, so a REGNET discriminator starts afresh), with
strict checks: the source's module names, parameter names and shapes must equal the new model's, or nothing is
loaded and the error names the first difference. Frozen parameters are those whose name `<module>.<parameter>`
(e.g. `generator.encoder.conv.0.weight`) equals a prefix or continues it after a dot. They stop receiving
gradients (`requires_grad` off) and sit in an optimiser group with learning rate 0, so they never move; in a
module whose every parameter is frozen (a frozen discriminator) gradients still flow, because its solver step
runs a backward pass through it, but the zero learning rate keeps its weights unchanged (batch-norm running
statistics, which are buffers, do still update in training mode).

Part names (`PARTS`) spare users the module layout: `visual_encoder` (REGNET's `generator.encoder`,
VarietySound's `generator.temporal_encoder`) and `discriminators` (every trained module but the generator).

Lineage: `lineage` describes the source (registered name and version, logged model id, training run) as MLflow
tags `v2s.init_from.*`; `lineage.describe_lineage` turns those tags into the sentence `v2s promote` writes into the new
model version's description. mlflow is imported lazily, only when a reference needs the tracking store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from v2s_models.lineage import TAG_PREFIX
from v2s_models.training.base import Solver, build_schedule

PARTS: dict[str, dict[str, str]] = {
    # part name -> {generator class name -> parameter-name prefix}
    "visual_encoder": {
        "RegnetGenerator": "generator.encoder",
        "VarietySoundGenerator": "generator.temporal_encoder",
    },
}
DISCRIMINATORS = "discriminators"


@dataclass(frozen=True)
class InitFrom:
    """The `init_from` entry of an experiment config."""

    model: str
    freeze: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: Any, source: str = "config") -> InitFrom | None:
        """Reads `cfg["init_from"]` (None when absent); errors name the key."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ValueError(
                f"{source}: init_from: expected a mapping with 'model' (and 'freeze'), got {value!r}"
            )
        unknown = sorted(set(value) - {"model", "freeze"})
        if unknown:
            raise ValueError(f"{source}: init_from.{unknown[0]}: unknown key (known: model, freeze)")
        model = value.get("model")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(
                f"{source}: init_from.model: expected a model reference (models:/<name>@<alias>, a run id, "
                f"a package folder), got {model!r}"
            )
        freeze = value.get("freeze") or []
        if not isinstance(freeze, list | tuple) or not all(isinstance(p, str) and p for p in freeze):
            raise ValueError(
                f"{source}: init_from.freeze: expected a list of parameter-name prefixes, got {freeze!r}"
            )
        return cls(model=model.strip(), freeze=tuple(freeze))

    def to_config(self) -> dict[str, Any]:
        return {"model": self.model, "freeze": list(self.freeze)}


@dataclass
class SourceWeights:
    """A source model's weights {module name: state_dict} and where they came from (MLflow tags)."""

    state: dict[str, dict[str, torch.Tensor]]
    config: dict[str, Any]
    features: dict[str, Any] = field(default_factory=dict)  # the feature settings its inputs were made with
    tags: dict[str, str] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- loading
def load_weights(
    modules: Mapping[str, nn.Module], source: Mapping[str, Mapping[str, torch.Tensor]]
) -> list[str]:
    """Copies `source[name]` into `modules[name]` for every module the source holds; returns their names.

    Strict: a source module missing from `modules`, a parameter or buffer name present on one side only, or a
    shape that differs raises ValueError naming it, before anything is copied.
    """
    for name, state in source.items():
        if name not in modules:
            raise ValueError(
                f"init_from: the source model has a module {name!r} that this config does not build "
                f"(it builds {', '.join(sorted(modules))})"
            )
        target = modules[name].state_dict()
        missing, extra = sorted(set(target) - set(state)), sorted(set(state) - set(target))
        if missing or extra:
            raise ValueError(
                f"init_from: module {name!r}: parameter names differ from the source's (missing in the source: "
                f"{missing[:3]}, only in the source: {extra[:3]}); build the model with the source's config"
            )
        for key, value in state.items():
            if tuple(value.shape) != tuple(target[key].shape):
                raise ValueError(
                    f"init_from: {name}.{key}: shape {tuple(value.shape)} in the source, "
                    f"{tuple(target[key].shape)} in this model; build the model with the source's config"
                )
    for name, state in source.items():
        modules[name].load_state_dict(state, strict=True)
    return list(source)


def expand_parts(prefixes: Sequence[str], modules: Mapping[str, nn.Module]) -> list[str]:
    """Part names (`visual_encoder`, `discriminators`) -> parameter-name prefixes; other entries unchanged."""
    out: list[str] = []
    for prefix in prefixes:
        if prefix == DISCRIMINATORS:
            found = [name for name in modules if name != "generator"]
            if "generator" not in modules or not found:
                raise ValueError(
                    f"init_from.freeze: {prefix!r}: this model has no generator / discriminator pair"
                )
            out.extend(found)
        elif prefix in PARTS:
            kind = type(modules["generator"]).__name__ if "generator" in modules else None
            if kind not in PARTS[prefix]:
                raise ValueError(
                    f"init_from.freeze: {prefix!r} is not defined for a {kind or 'generator-less'} model; "
                    f"name parameter prefixes instead (e.g. generator.encoder)"
                )
            out.append(PARTS[prefix][kind])
        else:
            out.append(prefix)
    return out


def frozen_names(modules: Mapping[str, nn.Module], prefixes: Sequence[str]) -> list[str]:
    """Full names `<module>.<parameter>` of the parameters matched by `prefixes` (parts expanded).

    Every prefix must match at least one parameter (a typo would otherwise train what it meant to freeze).
    """
    names = [f"{m}.{p}" for m, module in modules.items() for p, _ in module.named_parameters()]
    matched: list[str] = []
    for prefix in expand_parts(prefixes, modules):
        hits = [n for n in names if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            tops = sorted({".".join(n.split(".")[:2]) for n in names})
            raise ValueError(
                f"init_from.freeze: {prefix!r} matches no parameter; prefixes of this model: {', '.join(tops)}"
            )
        matched.extend(n for n in hits if n not in matched)
    return matched


def freeze(solver: Solver, prefixes: Sequence[str]) -> list[str]:
    """Freezes the matched parameters of `solver` (see the module docstring) and rebuilds its optimisers and
    schedules (call before any step, and before restoring a checkpoint). Returns the frozen names."""
    frozen = set(frozen_names({k: solver.unwrapped(k) for k in solver.modules}, prefixes))
    if not frozen:
        return []
    for name, optimizer in list(solver.optimizers.items()):
        module = solver.unwrapped(name)
        params = list(module.named_parameters())
        trainable = [p for n, p in params if f"{name}.{n}" not in frozen]
        fixed = [p for n, p in params if f"{name}.{n}" in frozen]
        if not fixed:
            continue
        groups: list[dict[str, Any]] = []
        if trainable:
            groups.append({"params": trainable})
            for p in fixed:
                p.requires_grad_(False)
        groups.append({"params": fixed, "lr": 0.0, "weight_decay": 0.0})
        solver.optimizers[name] = type(optimizer)(groups, **optimizer.defaults)
        solver.schedulers[name] = build_schedule(
            solver.optimizers[name], solver.cfg.get("schedule", {}), epochs=int(solver.cfg["epochs"])
        )
    for module_name in solver.modules:
        if module_name not in solver.optimizers:  # an auxiliary module nobody optimises: just stop its grads
            for n, p in solver.unwrapped(module_name).named_parameters():
                if f"{module_name}.{n}" in frozen:
                    p.requires_grad_(False)
    return sorted(frozen)


def initialise(
    solver: Solver, state: Mapping[str, Mapping[str, torch.Tensor]], prefixes: Sequence[str]
) -> dict[str, list[str]]:
    """Loads the source weights into a freshly built solver and freezes `prefixes`.

    Returns {"loaded": module names, "fresh": modules left at their initial weights, "frozen": parameter names}.
    """
    modules = {k: solver.unwrapped(k) for k in solver.modules}
    loaded = load_weights(modules, state)
    frozen = freeze(solver, prefixes)
    return {"loaded": loaded, "fresh": [k for k in modules if k not in loaded], "frozen": frozen}


# ------------------------------------------------------------------------------------------- sources
def source_weights(ref: str, *, tracking_uri: str | None = None) -> SourceWeights:
    """The weights of model `ref` (anything `registry.resolve_model` reads) and its lineage tags."""
    from v2s_models import registry  # lazy: MLflow, which training without a source model never loads

    package = registry.resolve_model(ref, tracking_uri=tracking_uri)
    state = {
        name: {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
        for name, m in package.modules.items()
    }
    tags = lineage(ref, tracking_uri=tracking_uri, package_extra=package.extra)
    return SourceWeights(state=state, config=dict(package.config), features=dict(package.features), tags=tags)


def lineage(
    ref: str, *, tracking_uri: str | None = None, package_extra: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """MLflow tags naming the source of a fine-tuning run: `v2s.init_from` (the reference as given) and, where
    known, `.model_name`, `.model_version`, `.model_id` (logged model), `.run_id` (the source's training run)."""
    tags = {TAG_PREFIX: ref}
    extra = dict(package_extra or {})
    if extra.get("mlflow_run_id"):
        tags[f"{TAG_PREFIX}.run_id"] = str(extra["mlflow_run_id"])
    if "://" not in ref and Path(ref).exists():
        tags[f"{TAG_PREFIX}.path"] = str(Path(ref).resolve())
        return tags
    from mlflow import MlflowClient

    from v2s_models import registry  # lazy: MLflow

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if ref.startswith("models:/") and not ref.startswith("models:/m-"):
        body = ref.removeprefix("models:/")
        if "@" in body:
            name, alias = body.split("@", 1)
            mv = client.get_model_version_by_alias(name, alias)
            tags[f"{TAG_PREFIX}.alias"] = alias
        else:
            name, version = body.rsplit("/", 1)
            mv = client.get_model_version(name, version)
        tags[f"{TAG_PREFIX}.model_name"] = mv.name
        tags[f"{TAG_PREFIX}.model_version"] = str(mv.version)
        if getattr(mv, "model_id", None):
            tags[f"{TAG_PREFIX}.model_id"] = str(mv.model_id)
        if mv.run_id:
            tags[f"{TAG_PREFIX}.run_id"] = str(mv.run_id)
        return tags
    model_id = registry.model_uri(ref, tracking_uri=tracking_uri).removeprefix("models:/")
    tags[f"{TAG_PREFIX}.model_id"] = model_id
    logged = client.get_logged_model(model_id)
    if logged.source_run_id:
        tags[f"{TAG_PREFIX}.run_id"] = str(logged.source_run_id)
    return tags
