"""Data presets: one definition (v2s_models.settings.PRESETS), params.yaml as a project's source, and the
trainers' resolution of `data.preset` through the project's params.yaml (v2s_models.params,
v2s_models.training.base.Solver.data_settings)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from v2s_models.config import load_config
from v2s_models.params import DEFAULT_PARAMS, data_settings, load_params, preset_params, project_data_settings
from v2s_models.settings import PRESETS, REGNET, ZHOU
from v2s_models.training.loop import build_solver

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs"


def _project(tmp_path: Path, **extra: dict[str, Any]) -> Path:
    """A project folder whose params.yaml holds the repository's presets plus `extra`."""
    params = load_params(REPO / "params.yaml")
    params["presets"].update(extra)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def _mine(**changes: Any) -> dict[str, Any]:
    """A user's preset: the regnet one with some fields changed."""
    return {**copy.deepcopy(load_params(REPO / "params.yaml")["presets"]["regnet"]), **changes}


def test_builtin_presets_are_the_papers_and_the_repository_params() -> None:
    assert PRESETS == {"regnet": REGNET, "zhou": ZHOU}
    assert (REGNET.num_frames, REGNET.num_samples, REGNET.num_mel_frames) == (215, 220500, 860)
    assert (ZHOU.num_frames, ZHOU.num_samples) == (156, 160000)
    shipped = load_params(REPO / "params.yaml")
    for name, settings in PRESETS.items():
        # the fallback without a params.yaml is built from PRESETS and reads back to the same settings
        assert data_settings(DEFAULT_PARAMS, name) == settings, name
        # the shipped params.yaml holds the papers' values (a user may edit it; this repository does not)
        assert data_settings(shipped, name) == settings, name
        assert shipped["presets"][name] == preset_params(settings), name


def test_project_presets_come_from_params_yaml(tmp_path: Path) -> None:
    root = _project(tmp_path, mine=_mine(fps=43.0))
    mine = project_data_settings("mine", root)
    assert (mine.name, mine.fps, mine.num_frames, mine.mel_frames_per_video_frame) == ("mine", 43.0, 430, 2)
    assert project_data_settings("regnet", root) == REGNET
    with pytest.raises(
        ValueError, match=r"params\.yaml: unknown data preset 'nope'; defined: \['mine', 'regnet'"
    ):
        project_data_settings("nope", root)
    with pytest.raises(ValueError, match=r"presets\.bad: .*fps"):
        project_data_settings("bad", _project(tmp_path, bad=_mine(fps=-1)))


def test_without_params_yaml_the_builtin_presets(tmp_path: Path) -> None:
    assert project_data_settings("zhou", tmp_path) is ZHOU
    with pytest.raises(
        ValueError, match=r"unknown data preset 'mine': .*params\.yaml not found.*\['regnet', 'zhou'\]"
    ):
        project_data_settings("mine", tmp_path)
    (tmp_path / "params.yaml").write_text("generate: {size: tiny}\n")  # a project without presets
    assert project_data_settings("regnet", tmp_path) is REGNET


@pytest.mark.parametrize(("config", "preset"), [("hifigan/debug", "regnet"), ("zhou/frame_debug", "zhou")])
def test_solvers_accept_a_preset_defined_in_params_yaml(config: str, preset: str, tmp_path: Path) -> None:
    """A user's preset `mine` (a copy of a built-in one under another name) trains like the built-in one."""
    base = load_params(REPO / "params.yaml")["presets"][preset]
    root = _project(tmp_path, mine=copy.deepcopy(base))
    cfg = load_config(CONFIGS / f"{config}.yaml")
    cfg["data"]["preset"] = "mine"
    solver = build_solver(cfg, root=root)
    assert solver.settings == project_data_settings("mine", root)
    assert solver.settings.num_samples == PRESETS[preset].num_samples
    cfg["data"]["preset"] = "nope"
    with pytest.raises(
        ValueError, match=rf"{tmp_path / 'params.yaml'}: unknown data preset 'nope'; defined: "
    ):
        build_solver(cfg, root=root)


def test_gan_mel_solver_resolves_the_preset_and_checks_the_mel_rate(tmp_path: Path) -> None:
    root = _project(tmp_path, mine=_mine(), fast=_mine(fps=43.0))
    cfg = load_config(CONFIGS / "regnet" / "debug.yaml")
    solver = build_solver(cfg, root=root)
    assert solver.mel_frames_per_step == 4  # REGNET's decoder: two 2x up-sampling steps
    assert solver._check_preset("mine").name == "mine"
    # 22050 / 256 / 43 ~ 2 mel frames per video frame: REGNET's 4 cannot train on it
    with pytest.raises(ValueError, match=r"writes 4 mel frames per video frame .* data preset 'fast' has 2"):
        solver._check_preset("fast")
    with pytest.raises(ValueError, match="unknown data preset 'nope'"):
        solver._check_preset("nope")
