"""The registry of model components: the only way a `_component_` name in a config or a model file becomes code.

Every `_component_` (experiment configs, `v2s_model.yaml` of model packages, `v2s_checkpoint.yaml` of checkpoint
folders, MLflow registry models, `--vocoder` packages) resolves here, and nowhere else, to one of:

1. the project's builders (`BUILTIN`: `v2s_models.builders.*`, plus the HiFi-GAN preset functions that older
   packages name);
2. a component registered in this process with `register(name, builder)` (a notebook, a test);
3. an installed entry point of the group `v2s.components` whose name is the component name (a package you
   installed declares it: `[project.entry-points."v2s.components"] "mylab.tiny" = "mylab.models:tiny"`);
4. a dotted path under a trusted module prefix, listed OUTSIDE any loaded file: the environment variable
   `V2S_TRUSTED_COMPONENTS` (comma-separated prefixes, e.g. `mylab.models,tests.toy`) and the user file
   `$XDG_CONFIG_HOME/v2s/components.yaml` (default `~/.config/v2s/components.yaml`) with
   `trusted_prefixes: [mylab.models]`. The builder must be defined under the prefix (its `__module__`), so a
   function the trusted module merely imports (`from os import system`) is not reachable. Standard-library and
   project packages cannot be trusted this way; trust only your own modules (a third-party library's prefix
   would expose every function it defines).

Anything else is refused with a `ComponentError` naming the file, the key and the name, before any import: the
name is checked as text (identifiers joined by single dots, no segment starting with `_`) and against the lists
above, and only a name that passes is imported.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import torch
import yaml

from v2s_models import builders
from v2s_models.correlation import CorrelationTower, Seq2SeqSampleRNN
from v2s_models.regnet import RegnetDiscriminator, RegnetGenerator
from v2s_models.varietysound import VarietySoundGenerator
from v2s_models.varietysound_discriminators import (
    MultiWindowMelDiscriminator,
    TimeDomainAlignmentDiscriminator,
)
from v2s_models.visual_samplernn import VisualSampleRNN
from v2s_models.vocoders import hifigan
from v2s_models.vocoders.hifigan_discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator

ENTRY_POINT_GROUP = "v2s.components"
TRUSTED_ENV = "V2S_TRUSTED_COMPONENTS"
USER_FILE = Path("v2s") / "components.yaml"  # under $XDG_CONFIG_HOME (default ~/.config)

# Identifiers joined by single dots; no segment may start with "_" (no dunders, no private helpers), so
# `v2s_models..x`, `.x`, `v2s_models.registry.__builtins__`, `../x` and `a/b` are all refused as text.
_PROJECT_PACKAGES = ("v2s_models", "dataprep", "ray_jobs", "experiments")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


class ComponentError(ValueError):
    """A `_component_` that is not a registered component; the message names the file, the key and the name."""


@dataclass(frozen=True)
class Component:
    """A builder and what its keyword arguments are checked against.

    forwards_to: the callable (usually a module class) that receives the builder's `**overrides`; its named
    parameters are valid keys too. None with a `**kwargs` builder means the keys cannot be checked statically.
    """

    name: str
    builder: Callable[..., Any]
    forwards_to: Callable[..., Any] | None = None

    def accepted_keys(self) -> frozenset[str] | None:
        """The keyword arguments a config may give this component, or None when any may be given."""
        keys, open_ = _parameters(self.builder)
        if open_:
            if self.forwards_to is None:
                return None
            forwarded, open_ = _parameters(self.forwards_to)
            if open_:
                return None
            keys |= forwarded
        return frozenset(keys)


# Arguments the code supplies, never a config: the parameters of an optimiser, the optimiser of a schedule, the
# run's epochs; `last_epoch` / `verbose` of torch's schedulers are left at their defaults (resuming restores state).
SUPPLIED = frozenset({"self", "params", "optimizer", "epochs", "last_epoch", "verbose"})


def _parameters(fn: Callable[..., Any]) -> tuple[set[str], bool]:
    """(named keyword parameters a config may set, takes **kwargs) of a function or a class's constructor."""
    sig = inspect.signature(fn)
    named = {
        p.name
        for p in sig.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in SUPPLIED
    }
    return named, any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())


def _builtin() -> dict[str, Component]:
    b = builders
    hifi = hifigan.HifiganGenerator
    table: list[tuple[str, Callable[..., Any], Callable[..., Any] | None]] = [
        ("v2s_models.builders.regnet_generator", b.regnet_generator, RegnetGenerator),
        ("v2s_models.builders.regnet_discriminator", b.regnet_discriminator, RegnetDiscriminator),
        ("v2s_models.builders.varietysound_generator", b.varietysound_generator, VarietySoundGenerator),
        ("v2s_models.builders.varietysound_tdad", b.varietysound_tdad, TimeDomainAlignmentDiscriminator),
        (
            "v2s_models.builders.varietysound_mel_discriminator",
            b.varietysound_mel_discriminator,
            MultiWindowMelDiscriminator,
        ),
        ("v2s_models.builders.zhou", b.zhou, VisualSampleRNN),
        ("v2s_models.builders.seq2seq", b.seq2seq, Seq2SeqSampleRNN),
        ("v2s_models.builders.correlation_tower", b.correlation_tower, CorrelationTower),
        ("v2s_models.builders.hifigan_generator", b.hifigan_generator, hifi),
        ("v2s_models.builders.hifigan_mpd", b.hifigan_mpd, MultiPeriodDiscriminator),
        ("v2s_models.builders.hifigan_msd", b.hifigan_msd, MultiScaleDiscriminator),
        ("v2s_models.builders.hifigan_pretrained", b.hifigan_pretrained, None),
        # HiFi-GAN presets by their module path, as vocoder packages written before builders.hifigan_* name them
        ("v2s_models.vocoders.hifigan.hifigan_v1", hifigan.hifigan_v1, hifi),
        ("v2s_models.vocoders.hifigan.hifigan_v2", hifigan.hifigan_v2, hifi),
        ("v2s_models.vocoders.hifigan.hifigan_v3", hifigan.hifigan_v3, hifi),
        ("v2s_models.vocoders.hifigan.hifigan_debug", hifigan.hifigan_debug, hifi),
    ]
    return {name: Component(name, fn, target) for name, fn, target in table}


BUILTIN: dict[str, Component] = _builtin()
_REGISTERED: dict[str, Component] = {}


# --------------------------------------------------------------------- optimisers and learning-rate schedules
# `optim.<module>: {_component_: torch.optim.AdamW, lr: ..., ...}` and `schedule: {_component_: ..., ...}` name
# these (torchtune's recipes); the older `{name: adam, ...}` / `{name: linear_decay, ...}` forms map onto them.
# Only these tables resolve: a config cannot reach any other callable through an optimiser or a schedule.
LRScheduler = torch.optim.lr_scheduler.LRScheduler


def constant(optimizer: torch.optim.Optimizer, *, epochs: int) -> LRScheduler:
    """The learning rate as given, every epoch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)


def linear_decay(optimizer: torch.optim.Optimizer, *, epochs: int, constant_epochs: int = 0) -> LRScheduler:
    """REGNET: constant for `constant_epochs`, then linear to 0 at `epochs` (per epoch)."""
    hold = int(constant_epochs)
    span = max(1, int(epochs) - hold)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda e: 1.0 if e < hold else max(0.0, 1 - (e - hold) / span)
    )


def exponential(optimizer: torch.optim.Optimizer, *, epochs: int, gamma: float = 0.999) -> LRScheduler:
    """HiFi-GAN: times `gamma` per epoch."""
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=float(gamma))


OPTIMIZERS: dict[str, Component] = {
    f"torch.optim.{cls.__name__}": Component(f"torch.optim.{cls.__name__}", cls)
    for cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD, torch.optim.RMSprop)
}
SCHEDULES: dict[str, Component] = {
    **{
        f"v2s_models.components.{fn.__name__}": Component(f"v2s_models.components.{fn.__name__}", fn)
        for fn in (constant, linear_decay, exponential)
    },  # fmt: skip
    **{
        f"torch.optim.lr_scheduler.{cls.__name__}": Component(f"torch.optim.lr_scheduler.{cls.__name__}", cls)
        for cls in (
            torch.optim.lr_scheduler.StepLR,
            torch.optim.lr_scheduler.MultiStepLR,
            torch.optim.lr_scheduler.CosineAnnealingLR,
        )
    },  # fmt: skip
}


def closest(word: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The candidate nearest `word` (difflib, ignoring case; an exact case-insensitive match first), or None."""
    by_lower = {c.lower(): c for c in candidates}
    if word.lower() in by_lower:
        return by_lower[word.lower()]
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def resolve_in(table: dict[str, Component], what: str, name: Any, *, source: str, key: str) -> Component:
    """`table[name]` (OPTIMIZERS or SCHEDULES); ComponentError naming the file, the key and the closest name."""
    if isinstance(name, str) and name in table:
        return table[name]
    close = closest(str(name), list(table), cutoff=0.8)
    hint = f"did you mean {close!r}? " if close else ""
    raise ComponentError(
        f"{source}: {key}: {name!r} is not a registered {what} ({hint}known: {', '.join(table)})"
    )


def register(
    name: str, builder: Callable[..., Any], *, forwards_to: Callable[..., Any] | None = None
) -> None:
    """Registers `builder` under `name` for this process (a notebook, a test); `forwards_to` as in `Component`.

    Processes started elsewhere (Ray workers on other machines) do not see it: use the entry point group or the
    trusted prefixes there.
    """
    if not _NAME.match(name):
        raise ComponentError(f"register: {name!r} is not a component name (identifiers joined by dots)")
    if name in BUILTIN:
        raise ComponentError(f"register: {name!r} is a built-in component")
    if not callable(builder):
        raise ComponentError(f"register: the builder of {name!r} is not callable")
    _REGISTERED[name] = Component(name, builder, forwards_to)


def unregister(name: str) -> None:
    """Forgets a component registered with `register` (no error when absent)."""
    _REGISTERED.pop(name, None)


def _parse_prefixes(values: Iterable[Any], where: str) -> list[str]:
    out = []
    for v in values:
        p = str(v).strip()
        if not p:
            continue
        if not _NAME.match(p):
            raise ComponentError(
                f"{where}: trusted prefix {p!r} is not a module path (identifiers joined by dots)"
            )
        top = p.split(".")[0]
        if top in sys.stdlib_module_names or top in sys.builtin_module_names or top in _PROJECT_PACKAGES:
            kind = "a project" if top in _PROJECT_PACKAGES else "a standard-library"
            raise ComponentError(
                f"{where}: trusted prefix {p!r} is {kind} package; trust only the modules of your own components "
                "(the project's builders are registered already)"
            )
        out.append(p)
    return out


def user_file() -> Path:
    """`$XDG_CONFIG_HOME/v2s/components.yaml` (default `~/.config/v2s/components.yaml`)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / USER_FILE


def trusted_prefixes() -> list[str]:
    """The trusted module prefixes: `V2S_TRUSTED_COMPONENTS` (comma-separated), then the user file's
    `trusted_prefixes` list. Both are read on every call (a changed variable applies at once)."""
    prefixes = _parse_prefixes(os.environ.get(TRUSTED_ENV, "").split(","), TRUSTED_ENV)
    path = user_file()
    if path.is_file():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        listed = data.get("trusted_prefixes", []) if isinstance(data, dict) else None
        if not isinstance(listed, list):
            raise ComponentError(f"{path}: expected a mapping with a list 'trusted_prefixes'")
        prefixes += _parse_prefixes(listed, str(path))
    return prefixes


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _refuse(source: str, key: str, name: Any, why: str) -> ComponentError:
    return ComponentError(
        f"{source}: {key}: {name!r} {why}; components resolve only to the registered ones "
        f"(v2s_models.builders.*, `register`, entry points '{ENTRY_POINT_GROUP}', or a module under a prefix in "
        f"{TRUSTED_ENV} / {user_file()}): see docs/reliability.md"
    )


def is_known(name: str) -> bool:
    """True when `name` resolves without an import: built in or registered in this process."""
    return name in BUILTIN or name in _REGISTERED


def check(name: Any, *, source: str = "config", key: str = "_component_") -> None:
    """Refuses (ComponentError) a name that `resolve` would not resolve, without importing anything it names."""
    _plan(name, source, key)


def _plan(name: Any, source: str, key: str) -> tuple[str, Any]:
    """How `name` resolves: ("known", Component) | ("entry_point", EntryPoint) | ("prefix", prefix)."""
    if not isinstance(name, str):
        raise _refuse(source, key, name, "is not a component name")
    if not _NAME.match(name):
        raise _refuse(
            source, key, name, "is not a component name (identifiers joined by single dots, none private)"
        )
    if name in BUILTIN:
        return "known", BUILTIN[name]
    if name in _REGISTERED:
        return "known", _REGISTERED[name]
    eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if eps:
        return "entry_point", eps[0]
    for prefix in trusted_prefixes():
        if _under(name.rpartition(".")[0], prefix):
            return "prefix", prefix
    close = closest(name, [*BUILTIN, *_REGISTERED], cutoff=0.85)
    hint = f" (did you mean {close!r}?)" if close else ""
    raise _refuse(source, key, name, f"is not a registered component{hint}")


def resolve(name: Any, *, source: str = "config", key: str = "_component_") -> Component:
    """The registered component called `name`; ComponentError naming `source` and `key` otherwise.

    Only names that pass the checks of the module docstring are imported (an entry point's or a trusted prefix's
    module); built-in and registered names import nothing.
    """
    how, what = _plan(name, source, key)
    if how == "known":
        return what
    if how == "entry_point":
        builder = what.load()
        if not callable(builder):
            raise _refuse(source, key, name, f"is entry point {what.value!r}, which is not callable")
        return Component(name, builder)
    module_name, _, attr = name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise _refuse(
            source, key, name, f"is under trusted prefix {what!r} but cannot be imported: {e}"
        ) from None
    builder = module.__dict__.get(attr)
    if builder is None:
        raise ComponentError(f"{source}: {key}: {module_name!r} has no attribute {attr!r}")
    defined_in = getattr(builder, "__module__", None) or ""
    if not callable(builder) or not _under(defined_in, what):
        raise _refuse(
            source,
            key,
            name,
            f"is not a builder defined under trusted prefix {what!r} (defined in {defined_in!r})",
        )
    return Component(name, builder)
