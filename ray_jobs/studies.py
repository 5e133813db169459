"""Sweep and ablation-grid declarations (`experiments/sweeps/*.py`, `experiments/sweeps/ablations/*.py`): loading,
validation with errors that name the bad key or value, and the config of one trial.

A declaration is a small Python module of plain constants (no Ray import), whose docstring states the research
question. A **study** (a search) has a SPACE; an **ablation grid** has a GRID:

    BASE = "experiments/configs/regnet/demo.yaml"      # relative to the repository root
    SPACE = {                                           # dotted config keys -> a distribution
        "model.generator.aux_dim": {"choice": [2, 4, 8, 16, 32, 64, 128, 256]},
        "losses.mel": {"loguniform": [1000.0, 100000.0]},
    }                                                   # also {"uniform": [lo, hi]}, {"randint": [lo, hi]} (hi included)
    GRID = {                                            # label -> overrides (a grid instead of a SPACE)
        "proposed": {},
        "without_tdad": {"model.tdad": DELETE, "optim.tdad": DELETE},
        "seq": {"_base_": "experiments/configs/zhou/seq_demo.yaml"},   # an entry with its own base config
    }
    SET = {"epochs": 10}                                # overrides of every trial (optional)
    OBJECTIVE = {"metric": "val/onset_corr", "mode": "max"}   # a validation metric the solver reports
    # ... optionally "window": k: the objective is the metric's mean over a trial's last k epochs (noisy metrics)
    METRICS = ["val/energy_corr", "val/mel_l1"]        # more columns of the comparison table (optional)
    NUM_SAMPLES = 24                                    # trials of a study (a grid runs each entry once)
    ASHA = {"grace_period": 2, "reduction_factor": 3}   # study only; max_t = the config's epochs
    SEED = 0                                            # Optuna's TPE sampler seed
    SEARCH = {"n_startup_trials": 4, "multivariate": True}  # study only: TPE's random start-up trials, joint model
    REGISTER_AS = "regnet"                              # registered model of the best trial (alias candidate)
    SMOKE = {"base": ".../debug.yaml", "num_samples": 4, "set": {...}, "max_steps_per_epoch": 2,
             "bases": {"seq": ".../seq_debug.yaml"}, "entries": ["proposed", "seq"],
             "asha": {"grace_period": 1}}

`--smoke-test` swaps in SMOKE: its `base` (or, per grid entry, `bases[label]`) replaces the base config, its `set`
is applied after SET, `num_samples` and `entries` shrink the run, `max_steps_per_epoch` caps each epoch.

Metric names: the solvers report validation metrics as `val/<name>`; when the data has no validation split they
validate on the test split and report `val/test_split/<name>`. `resolve_metric` accepts either for a declared
`val/<name>`, so the declaration names the metric once.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ray_jobs.declare as helpers
from ray_jobs.declare import DELETE
from v2s_models.config import ConfigError, apply_overrides, instantiate, load_config, validate

REPO = Path(__file__).resolve().parents[1]
BASE_KEY = "_base_"
DISTRIBUTIONS = ("choice", "loguniform", "uniform", "randint")
MODES = ("max", "min")
KNOWN = {
    "BASE", "SPACE", "GRID", "SET", "OBJECTIVE", "METRICS", "NUM_SAMPLES", "ASHA", "SEED", "REGISTER_AS",
    "SMOKE", "TRIAL_CPU", "SEARCH",
}  # fmt: skip
SMOKE_KEYS = ("base", "bases", "set", "num_samples", "entries", "max_steps_per_epoch", "asha")
ASHA_KEYS = ("grace_period", "reduction_factor")
SEARCH_KEYS = ("n_startup_trials", "multivariate")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class StudyError(ValueError):
    """A declaration that cannot be run; the message names the file and the key or value."""


@dataclass(frozen=True)
class Objective:
    metric: str
    mode: str  # max | min
    window: int = 1  # the objective is the mean of the metric over a trial's last `window` epochs

    @property
    def label(self) -> str:
        """How tables and tags name the objective."""
        if self.window == 1:
            return self.metric
        return f"{self.metric}, mean of the last {self.window} epochs"


@dataclass
class Sweep:
    """A loaded, validated declaration (smoke variant applied when asked)."""

    name: str
    path: Path
    kind: str  # "study" | "grid"
    question: str
    base: str
    space: dict[str, dict[str, list[Any]]]
    grid: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    objective: Objective
    metrics: list[str]
    num_samples: int
    asha: dict[str, int]
    seed: int
    search: dict[str, Any]
    register_as: str | None
    trial_cpu: float
    max_steps_per_epoch: int | None = None
    smoke: bool = False
    bases: dict[str, str] = field(default_factory=dict)  # grid label -> base config (entries with their own)

    @property
    def labels(self) -> list[str]:
        return list(self.grid)

    def fingerprint(self) -> str:
        """Hash of everything that decides which trials run: re-submitting under the same name must match."""
        plan = {
            "kind": self.kind, "base": self.base, "space": self.space, "grid": self.grid, "fixed": self.fixed,
            "objective": [self.objective.metric, self.objective.mode]
            + ([self.objective.window] if self.objective.window != 1 else []), "num_samples": self.num_samples,
            "asha": self.asha, "seed": self.seed, "search": self.search, "smoke": self.smoke, "bases": self.bases,
            "max_steps_per_epoch": self.max_steps_per_epoch,
        }  # fmt: skip
        return hashlib.sha256(json.dumps(plan, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------- loading
def _module_constants(path: Path) -> tuple[dict[str, Any], str]:
    spec = importlib.util.spec_from_file_location(f"v2s_sweep_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise StudyError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 (any error in the declaration: say where)
        raise StudyError(f"{path}: cannot import the declaration: {type(e).__name__}: {e}") from e
    consts = {k: v for k, v in vars(module).items() if k.isupper() and not k.startswith("_")}
    return consts, (module.__doc__ or "").strip()


def resolve_declaration(study: str | Path) -> Path:
    """A path to a declaration, or a bare name looked up in experiments/sweeps/ and experiments/sweeps/ablations/."""
    p = Path(study)
    candidates = [p, REPO / p] if p.suffix == ".py" else []
    candidates += [
        REPO / "experiments/sweeps" / f"{p.name}.py",
        REPO / "experiments/sweeps/ablations" / f"{p.name}.py",
    ]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    raise StudyError(
        f"study {str(study)!r} not found (a path to experiments/sweeps/<name>.py or "
        f"experiments/sweeps/ablations/<name>.py, or one of those names; known: {', '.join(known_studies())})"
    )


def known_studies() -> list[str]:
    found = sorted((REPO / "experiments/sweeps").glob("*.py")) + sorted(
        (REPO / "experiments/sweeps/ablations").glob("*.py")
    )
    return [p.stem for p in found if not p.name.startswith("_")]


def config_path(ref: str) -> Path:
    """A base config path from a declaration: absolute, or relative to the repository root."""
    p = Path(ref)
    return p if p.is_absolute() else REPO / p


def load_sweep(study: str | Path, *, smoke: bool = False) -> Sweep:
    """Loads and validates a declaration; `smoke` applies its SMOKE variant. Raises StudyError."""
    path = resolve_declaration(study)
    c, doc = _module_constants(path)
    where = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)

    def err(key: str, msg: str) -> StudyError:
        return StudyError(f"{where}: {key}: {msg}")

    unknown = sorted(set(c) - KNOWN - {k for k in vars(helpers) if k.isupper()})
    if unknown:
        raise err(unknown[0], f"unknown setting (known: {', '.join(sorted(KNOWN))})")
    if not doc:
        raise err("docstring", "missing: state the research question the declaration answers")
    if ("SPACE" in c) == ("GRID" in c):
        raise err("SPACE/GRID", "declare exactly one: SPACE (a search) or GRID (an ablation grid)")
    kind = "study" if "SPACE" in c else "grid"
    for key in ("BASE", "OBJECTIVE"):
        if key not in c:
            raise err(key, "missing")
    base = _str(c["BASE"], err, "BASE")
    objective = _objective(c["OBJECTIVE"], err)
    metrics = c.get("METRICS", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) and m for m in metrics):
        raise err("METRICS", f"expected a list of metric names, got {metrics!r}")
    fixed = _overrides(c.get("SET", {}), err, "SET")
    space = _space(c["SPACE"], err) if kind == "study" else {}
    grid = _grid(c["GRID"], err) if kind == "grid" else {}
    num_samples = _int(c.get("NUM_SAMPLES", 1 if kind == "grid" else 8), err, "NUM_SAMPLES", 1)
    asha_in = c.get("ASHA", {})
    if not isinstance(asha_in, Mapping) or set(asha_in) - set(ASHA_KEYS):
        raise err("ASHA", f"expected a mapping with keys among {', '.join(ASHA_KEYS)}, got {asha_in!r}")
    if kind == "grid" and asha_in:
        raise err("ASHA", "an ablation grid runs every entry to completion: remove ASHA")
    asha = {"grace_period": _int(asha_in.get("grace_period", 1), err, "ASHA.grace_period", 1),
            "reduction_factor": _int(asha_in.get("reduction_factor", 2), err, "ASHA.reduction_factor", 2)}  # fmt: skip
    seed = _int(c.get("SEED", 0), err, "SEED", 0)
    search = _search(c.get("SEARCH", {}), kind, num_samples, err)
    register_as = c.get("REGISTER_AS")
    if register_as is not None and (not isinstance(register_as, str) or not _LABEL.match(register_as)):
        raise err(
            "REGISTER_AS", f"expected a registered model name (letters, digits, _ . -), got {register_as!r}"
        )
    trial_cpu = c.get("TRIAL_CPU", 0.1)
    if not isinstance(trial_cpu, int | float) or isinstance(trial_cpu, bool) or not 0 < trial_cpu <= 1:
        raise err(
            "TRIAL_CPU",
            f"expected a number in (0, 1] (CPUs reserved for a trial's driver), got {trial_cpu!r}",
        )

    sweep = Sweep(
        name=path.stem, path=path, kind=kind, question=doc, base=base, space=space, grid=grid, fixed=fixed,
        objective=objective, metrics=metrics, num_samples=num_samples if kind == "study" else 1, asha=asha,
        seed=seed, search=search, register_as=register_as, trial_cpu=float(trial_cpu),
        bases={k: v.pop(BASE_KEY) for k, v in grid.items() if BASE_KEY in v},
    )  # fmt: skip
    if smoke:
        _apply_smoke(sweep, c.get("SMOKE"), err)
    check(sweep, err)
    return sweep


def _apply_smoke(sweep: Sweep, smoke: Any, err: Any) -> None:
    if smoke is None:
        raise err("SMOKE", "missing: --smoke-test needs a SMOKE variant (debug base config, few trials)")
    if not isinstance(smoke, Mapping) or set(smoke) - set(SMOKE_KEYS):
        raise err("SMOKE", f"expected a mapping with keys among {', '.join(SMOKE_KEYS)}, got {smoke!r}")
    sweep.smoke = True
    if "base" in smoke:
        sweep.base = _str(smoke["base"], err, "SMOKE.base")
    bases = smoke.get("bases", {})
    if not isinstance(bases, Mapping):
        raise err("SMOKE.bases", f"expected a mapping grid label -> base config, got {bases!r}")
    for label, ref in bases.items():
        if label not in sweep.grid:
            raise err(f"SMOKE.bases.{label}", f"not a GRID entry ({', '.join(sweep.grid) or 'no GRID'})")
        sweep.bases[label] = _str(ref, err, f"SMOKE.bases.{label}")
    sweep.fixed.update(_overrides(smoke.get("set", {}), err, "SMOKE.set"))
    if "num_samples" in smoke:
        if sweep.kind == "grid":
            raise err("SMOKE.num_samples", "a grid runs each entry once: use SMOKE.entries to run fewer")
        sweep.num_samples = _int(smoke["num_samples"], err, "SMOKE.num_samples", 1)
    if "entries" in smoke:
        entries = smoke["entries"]
        if not isinstance(entries, list) or not entries or any(e not in sweep.grid for e in entries):
            raise err(
                "SMOKE.entries",
                f"expected a non-empty list of GRID labels ({', '.join(sweep.grid)}), got {entries!r}",
            )
        sweep.grid = {k: sweep.grid[k] for k in entries}
        sweep.bases = {k: v for k, v in sweep.bases.items() if k in sweep.grid}
    if "asha" in smoke:
        asha = smoke["asha"]
        if sweep.kind == "grid" or not isinstance(asha, Mapping) or set(asha) - set(ASHA_KEYS):
            raise err("SMOKE.asha", f"a study's ASHA settings ({', '.join(ASHA_KEYS)}), got {asha!r}")
        for k, v in asha.items():
            sweep.asha[k] = _int(v, err, f"SMOKE.asha.{k}", 1 if k == "grace_period" else 2)
    if "max_steps_per_epoch" in smoke:
        sweep.max_steps_per_epoch = _int(smoke["max_steps_per_epoch"], err, "SMOKE.max_steps_per_epoch", 1)
    sweep.name = f"{sweep.name}-smoke"


# ---------------------------------------------------------------------------------------------- validation
def _str(v: Any, err: Any, key: str) -> str:
    if not isinstance(v, str) or not v:
        raise err(key, f"expected a non-empty string, got {v!r}")
    return v


def _int(v: Any, err: Any, key: str, minimum: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise err(key, f"expected an integer >= {minimum}, got {v!r}")
    return v


def default_startup_trials(num_samples: int) -> int:
    """TPE's random start-up trials when the declaration does not say: a quarter of the study's trials, at least 2
    and at most 10 (Optuna's default). Optuna's 10 alone makes a study of 10 trials or fewer a random search;
    on the sweep benchmark's recorded grid (docs/benchmarks.md) 2 start-up trials in 8 reached the grid's best
    more often than 10."""
    return max(2, min(10, num_samples // 4))


def _search(v: Any, kind: str, num_samples: int, err: Any) -> dict[str, Any]:
    if not isinstance(v, Mapping) or set(v) - set(SEARCH_KEYS):
        raise err("SEARCH", f"expected a mapping with keys among {', '.join(SEARCH_KEYS)}, got {v!r}")
    if kind == "grid" and v:
        raise err("SEARCH", "an ablation grid samples nothing: remove SEARCH")
    startup = _int(
        v.get("n_startup_trials", default_startup_trials(num_samples)), err, "SEARCH.n_startup_trials", 1
    )
    multivariate = v.get("multivariate", False)
    if not isinstance(multivariate, bool):
        raise err("SEARCH.multivariate", f"expected True or False, got {multivariate!r}")
    return {"n_startup_trials": startup, "multivariate": multivariate}


def _objective(v: Any, err: Any) -> Objective:
    if not isinstance(v, Mapping) or not {"metric", "mode"} <= set(v) <= {"metric", "mode", "window"}:
        raise err(
            "OBJECTIVE",
            f"expected {{'metric': 'val/<name>', 'mode': 'max' | 'min'[, 'window': epochs]}}, got {v!r}",
        )
    metric, mode = v["metric"], v["mode"]
    if not isinstance(metric, str) or not metric.startswith("val/"):
        raise err(
            "OBJECTIVE.metric",
            f"must be a validation metric reported by the solver ('val/<name>'), got {metric!r}",
        )
    if mode not in MODES:
        raise err("OBJECTIVE.mode", f"must be 'max' or 'min', got {mode!r}")
    return Objective(metric, mode, _int(v.get("window", 1), err, "OBJECTIVE.window", 1))


def _overrides(v: Any, err: Any, key: str) -> dict[str, Any]:
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and k for k in v):
        raise err(key, f"expected a mapping of dotted config keys to values, got {v!r}")
    return copy.deepcopy(dict(v))


def _space(v: Any, err: Any) -> dict[str, dict[str, list[Any]]]:
    if not isinstance(v, Mapping) or not v:
        raise err("SPACE", "expected a non-empty mapping of dotted config keys to distributions")
    out: dict[str, dict[str, list[Any]]] = {}
    for key, dist in v.items():
        where = f"SPACE.{key}"
        if not isinstance(dist, Mapping) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
            raise err(
                where,
                f"expected one of {{{', '.join(f'{d!r}: [...]' for d in DISTRIBUTIONS)}}}, got {dist!r}",
            )
        ((name, args),) = dist.items()
        if not isinstance(args, list) or not args:
            raise err(f"{where}.{name}", f"expected a non-empty list, got {args!r}")
        if name == "choice":
            if len(set(map(repr, args))) != len(args):
                raise err(f"{where}.choice", f"repeated values in {args!r}")
        else:
            if len(args) != 2 or not all(
                isinstance(a, int | float) and not isinstance(a, bool) for a in args
            ):
                raise err(f"{where}.{name}", f"expected [low, high] numbers, got {args!r}")
            lo, hi = args
            if not lo < hi:
                raise err(f"{where}.{name}", f"low must be < high, got {args!r}")
            if name == "loguniform" and lo <= 0:
                raise err(f"{where}.loguniform", f"bounds must be > 0, got {args!r}")
            if name == "randint" and not all(isinstance(a, int) for a in args):
                raise err(f"{where}.randint", f"bounds must be integers, got {args!r}")
        out[key] = {name: list(args)}
    return out


def _grid(v: Any, err: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(v, Mapping) or not v:
        raise err("GRID", "expected a non-empty mapping of entry labels to overrides")
    out = {}
    for label, overrides in v.items():
        if not isinstance(label, str) or not _LABEL.match(label):
            raise err(f"GRID.{label}", "labels are folder names: letters, digits, _ . - (no '/', not hidden)")
        out[label] = _overrides(overrides, err, f"GRID.{label}")
        if BASE_KEY in out[label]:
            _str(out[label][BASE_KEY], err, f"GRID.{label}.{BASE_KEY}")
    return out


def space_points(space: Mapping[str, Mapping[str, list[Any]]]) -> list[dict[str, Any]]:
    """A few points that cover each dimension's extremes (every choice, both bounds), for `check`."""
    points = []
    for key, dist in space.items():
        ((name, args),) = dist.items()
        values = args if name == "choice" else [args[0], args[1]]
        points += [{key: value} for value in values]
    return points


def check(sweep: Sweep, err: Any = None) -> None:
    """Builds the config of every grid entry, and of every choice and bound of the space, and validates it, so a
    typo in a key fails before Ray starts, naming the declaration's key."""
    err = err or (lambda key, msg: StudyError(f"{sweep.path}: {key}: {msg}"))
    try:
        configs = {"BASE": load_config(config_path(sweep.base))}
        for label in sweep.grid:
            if label in sweep.bases:
                configs[label] = load_config(config_path(sweep.bases[label]))
    except ConfigError as e:
        raise err("BASE", str(e)) from None
    for key in (sweep.objective.metric,):
        if "/" not in key:
            raise err("OBJECTIVE.metric", f"{key!r} is not a 'val/<name>' metric")
    if sweep.kind == "study":
        for point in space_points(sweep.space) or [{}]:
            ((key, value),) = point.items()
            try:
                trial_config(sweep, point, build=True)
            except (ConfigError, StudyError) as e:
                raise err(f"SPACE.{key}", f"value {value!r}: {e}") from None
    for label in sweep.grid:
        try:
            trial_config(sweep, label=label, build=True)
        except (ConfigError, StudyError) as e:
            raise err(f"GRID.{label}", str(e)) from None
    if sweep.kind == "study":
        epochs = int(trial_config(sweep, space_points(sweep.space)[0])["epochs"])
        if sweep.asha["grace_period"] > epochs:
            raise err(
                "ASHA.grace_period", f"{sweep.asha['grace_period']} is more than the trials' {epochs} epochs"
            )


def _build_touched_components(cfg: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    """Builds each model component an override touches (`model.<name>.*`): an unknown constructor argument or a
    bad value (e.g. an odd `aux_dim` for `lstm_sample`) fails here, before any trial starts."""

    touched = {k.split(".")[1] for k in overrides if k.startswith("model.") and k.count(".") >= 2}
    for name in sorted(touched & set(cfg["model"])):
        try:
            instantiate(cfg["model"][name])
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model.{name}: cannot be built: {e}") from None


def _delete_keys(cfg: dict[str, Any], overrides: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Removes every dotted key whose override is DELETE (the key must exist); returns the other overrides."""
    rest = {}
    for dotted, value in overrides.items():
        if value != DELETE:
            rest[dotted] = value
            continue
        *parents, leaf = dotted.split(".")
        node: Any = cfg
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if not isinstance(node, dict) or leaf not in node:
            raise ConfigError(f"{source}: {dotted}: DELETE names a key that does not exist")
        del node[leaf]
    return rest


def trial_config(
    sweep: Sweep, params: Mapping[str, Any] | None = None, *, label: str | None = None, build: bool = False
) -> dict[str, Any]:
    """The validated config of one trial: the base (or the grid entry's own base), SET (and SMOKE.set), then the
    grid entry's overrides or the sampled `params`. DELETE removes a key (e.g. a discriminator and its optimiser).
    `build` also builds the model components the overrides touch (a check of their arguments)."""
    base = sweep.bases.get(label, sweep.base) if label is not None else sweep.base
    source = f"{base} ({sweep.path.name}{f' GRID.{label}' if label else ''})"
    cfg = load_config(config_path(base))
    overrides = {**sweep.fixed, **(sweep.grid[label] if label is not None else {}), **dict(params or {})}
    overrides.pop(BASE_KEY, None)
    cfg = copy.deepcopy(cfg)
    rest = _delete_keys(cfg, overrides, source)
    cfg = apply_overrides(cfg, rest, source=source)
    cfg["name"] = f"{sweep.name}-{label}" if label is not None else sweep.name
    validate(cfg, source)
    if build:
        _build_touched_components(cfg, rest)
    return cfg


def varying_keys(sweep: Sweep) -> list[str]:
    """The config keys the trials differ in (space keys, or every key a grid entry sets)."""
    if sweep.kind == "study":
        return list(sweep.space)
    keys: list[str] = []
    for overrides in sweep.grid.values():
        keys += [k for k in overrides if k not in keys]
    return keys


def resolve_metric(metrics: Mapping[str, Any], name: str) -> float:
    """`metrics[name]`, or for `val/<rest>` the `val/<split>_split/<rest>` a solver reports when it validated on
    another split (no validation split in the data). KeyError naming the metric and the reported ones otherwise."""
    return float(metrics[metric_key(metrics, name)])


def metric_key(metrics: Mapping[str, Any], name: str) -> str:
    """The key under which `metrics` holds the declared metric `name` (see `resolve_metric`)."""
    if name in metrics:
        return name
    head, _, rest = name.partition("/")
    fallback = [k for k in metrics if k.startswith(f"{head}/") and k.endswith(f"_split/{rest}")
                and k.count("/") == name.count("/") + 1]  # fmt: skip
    if len(fallback) == 1:
        return fallback[0]
    reported = sorted(k for k in metrics if k.startswith("val/"))
    raise KeyError(
        f"metric {name!r} not reported by the solver (validation metrics: {', '.join(reported) or 'none'})"
    )


def is_finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(float(x))


def describe(sweep: Sweep) -> str:
    """One paragraph for logs and the parent run's description."""
    # the question's first paragraph, unwrapped (its first line alone stopped mid-sentence)
    lines = [" ".join(sweep.question.split("\n\n")[0].split()), ""]
    if sweep.kind == "study":
        lines.append(
            f"{sweep.num_samples} trials of {sweep.base}; objective {sweep.objective.metric} ({sweep.objective.mode})"
        )
        lines += [f"- {k}: {d}" for k, d in sweep.space.items()]
    else:
        lines.append(
            f"ablation grid over {sweep.base}; objective {sweep.objective.metric} ({sweep.objective.mode})"
        )
        lines += [f"- {label}: {overrides or '(base)'}" for label, overrides in sweep.grid.items()]
    return "\n".join(lines)


__all__: Sequence[str] = [
    "DELETE", "Objective", "StudyError", "Sweep", "check", "load_sweep", "metric_key", "resolve_metric", "trial_config",
    "varying_keys",
]  # fmt: skip
