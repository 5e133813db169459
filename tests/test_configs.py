"""Every shipped experiment config (experiments/configs/**/*.yaml) loads, validates and builds every model
component; bad keys give errors that name them.

Paper-size configs build networks of tens of millions of parameters (seconds each), so they are marked slow;
they still run in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from v2s_models.config import ConfigError, instantiate, load_config, validate

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "experiments" / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def _param(path: Path) -> Any:
    rel = path.relative_to(CONFIG_DIR).as_posix()
    marks = [pytest.mark.slow] if path.stem == "paper" else []
    return pytest.param(path, id=rel, marks=marks)


def test_configs_are_shipped() -> None:
    assert CONFIGS, f"no configs under {CONFIG_DIR}"


@pytest.mark.parametrize("path", [_param(p) for p in CONFIGS])
def test_config_loads_validates_and_instantiates(path: Path) -> None:
    torch.set_num_threads(1)
    cfg = load_config(path)
    validate(cfg, str(path))
    for name, spec in cfg["model"].items():
        module = instantiate(spec)
        assert isinstance(module, nn.Module), f"{path}: model.{name} built a {type(module).__name__}"
        assert sum(p.numel() for p in module.parameters()) > 0, f"{path}: model.{name} has no parameters"
        del module


def test_config_names_are_unique() -> None:
    """Runs resume by name, so two configs must never share one."""
    seen: dict[str, Path] = {}
    for path in CONFIGS:
        name = yaml.safe_load(path.read_text())["name"]
        assert name not in seen, f"{path} and {seen[name]} are both named {name!r}"
        seen[name] = path


def _debug_config() -> Path:
    debug = [p for p in CONFIGS if p.stem == "debug"]
    if not debug:
        pytest.skip("no debug config shipped")
    return debug[0]


def test_unknown_top_level_key_is_named(tmp_path: Path) -> None:
    cfg = yaml.safe_load(_debug_config().read_text())
    cfg["epohcs"] = 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"epohcs: unknown key"):
        load_config(bad)


def test_bad_values_and_overrides_are_named(tmp_path: Path) -> None:
    path = _debug_config()
    with pytest.raises(ConfigError, match=r"batch_size: must be >= 1"):
        load_config(path, {"batch_size": 0})
    with pytest.raises(ConfigError, match=r"losses\.mel: must be a number >= 0"):
        load_config(path, {"losses.mel": -1})
    with pytest.raises(ConfigError, match=r"modle: override"):
        load_config(path, {"modle.generator.preset": "paper"})
    cfg = yaml.safe_load(path.read_text())
    first = next(iter(cfg["model"]))
    cfg["model"][first]["_component_"] = "v2s_models.builders.no_such_builder"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        ConfigError, match=rf"model\.{first}\._component_: .*no_such_builder. is not a registered"
    ):
        load_config(bad)


def test_unknown_component_argument_is_named() -> None:
    cfg = load_config(_debug_config())
    name, spec = next(iter(cfg["model"].items()))
    with pytest.raises((TypeError, ValueError), match="hidden_sizee"):
        instantiate({**spec, "hidden_sizee": 3})
