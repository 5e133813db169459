"""Reading a stage's section of params.yaml, with errors that name the key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from v2s_models.settings import PRESETS, DataSettings, MelSettings

PRESET_KEYS = ("fps", "sample_rate", "duration", "pad_mode", "mel")
"""The fields a params.yaml preset writes; the others (mono, frame_size) keep DataSettings' defaults unless set."""


def preset_params(settings: DataSettings) -> dict[str, Any]:
    """The params.yaml form of `settings` (a `presets.<name>` entry): the inverse of `data_settings`."""
    d = settings.to_dict()
    default = DataSettings().to_dict()
    return {k: v for k, v in d.items() if k != "name" and (k in PRESET_KEYS or v != default[k])}


DEFAULT_PARAMS: dict[str, Any] = {
    "presets": {name: preset_params(settings) for name, settings in PRESETS.items()},
    "features": {
        "presets": {"regnet": ["mel", "mel_hifigan", "visual"], "zhou": ["wav_q", "visual"]},
        "per_second": True,
        "per_second_preset": "regnet",
        "flow": "dis",
        "flow_bound": 20.0,
        "extractor": "efficientnet_lite0",
        "extractor_weights": None,
        "image_size": 96,
        "workers": 2,
        "cluster": None,
    },
}
"""Used when no params.yaml is at hand. Its presets are the built-in ones (`settings.PRESETS`); the repository's
params.yaml holds the same values (tests/dataprep/test_sources_splits.py checks both sections)."""


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"parameter file {path} not found")
    with open(path, encoding="utf-8") as f:
        params = yaml.safe_load(f) or {}
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return params


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    if not isinstance(value, dict):
        raise ValueError(f"params.yaml: missing or invalid section {name!r} (expected a mapping)")
    return value


def require(d: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise ValueError(f"params.yaml: {where}.{key} is missing")
    value = d[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"params.yaml: {where}.{key} = {value!r} has the wrong type (expected {kind})")
    return value


def data_settings(params: Mapping[str, Any], preset: str, *, source: str = "params.yaml") -> DataSettings:
    """Builds the DataSettings of `presets.<preset>` in params.yaml (`source` names the file in errors)."""
    presets = params.get("presets")
    if not isinstance(presets, dict):
        raise ValueError(f"{source}: missing or invalid section 'presets' (expected a mapping)")
    if preset not in presets:
        raise ValueError(f"{source}: unknown data preset {preset!r}; defined: {sorted(presets)}")
    where = f"presets.{preset}"
    if not isinstance(presets[preset], dict):
        raise ValueError(f"{source}: {where} must be a mapping (fps, sample_rate, duration, pad_mode, mel)")
    p = dict(presets[preset])
    mel = p.pop("mel", {}) or {}
    if not isinstance(mel, dict):
        raise ValueError(f"{source}: {where}.mel must be a mapping")
    try:
        return DataSettings.from_dict({"name": preset, **p, "mel": MelSettings(**mel)})
    except (TypeError, ValueError) as e:
        raise ValueError(f"{source}: {where}: {e}") from None


def project_data_settings(
    preset: str, root: str | Path = ".", *, params: Mapping[str, Any] | None = None
) -> DataSettings:
    """The DataSettings of data preset `preset` as the project at `root` defines it.

    `presets.<preset>` of root/params.yaml, the file the data stages ran with (a user may add presets there);
    the built-in presets (`settings.PRESETS`) when the project has no params.yaml or its params.yaml has no
    `presets` section. `params`: that file's contents when the caller has already read it. An unknown preset
    is an error naming the preset, the file and the presets it defines.
    """
    path = Path(root) / "params.yaml"
    if params is None and path.is_file():
        params = load_params(path)
    if params is not None and "presets" in params:
        return data_settings(params, preset, source=str(path))
    if preset not in PRESETS:
        why = "has no presets section" if path.is_file() else "not found"
        raise ValueError(
            f"unknown data preset {preset!r}: {path} {why}, and the built-in presets "
            f"(v2s_models.settings.PRESETS) are {sorted(PRESETS)}"
        )
    return PRESETS[preset]
