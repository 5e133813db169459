"""Reading a stage's section of params.yaml, with errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from v2s_models.settings import DataSettings, MelSettings

DEFAULT_PARAMS: dict[str, Any] = {
    "presets": {
        "regnet": {
            "fps": 21.5,
            "sample_rate": 22050,
            "duration": 10.0,
            "pad_mode": "loop",
            "mel": {
                "kind": "regnet",
                "n_fft": 1024,
                "hop": 256,
                "win": 1024,
                "n_mels": 80,
                "fmin": 125.0,
                "fmax": 7600.0,
            },
        },
        "zhou": {
            "fps": 15.6,
            "sample_rate": 16000,
            "duration": 10.0,
            "pad_mode": "loop",
            "mel": {
                "kind": "regnet",
                "n_fft": 1024,
                "hop": 256,
                "win": 1024,
                "n_mels": 80,
                "fmin": 125.0,
                "fmax": 7600.0,
            },
        },
    },
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
"""Used when no params.yaml is at hand; the repository's params.yaml holds the same values."""


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


def data_settings(params: dict[str, Any], preset: str) -> DataSettings:
    """Builds the DataSettings of `presets.<preset>` in params.yaml."""
    presets = section(params, "presets")
    if preset not in presets:
        raise ValueError(f"params.yaml: unknown data preset {preset!r}; defined: {sorted(presets)}")
    p = dict(presets[preset])
    where = f"presets.{preset}"
    mel = p.pop("mel", {}) or {}
    if not isinstance(mel, dict):
        raise ValueError(f"params.yaml: {where}.mel must be a mapping")
    try:
        return DataSettings.from_dict({"name": preset, **p, "mel": MelSettings(**mel)})
    except (TypeError, ValueError) as e:
        raise ValueError(f"params.yaml: {where}: {e}") from None
