"""Reading a paradigm's `train` options (no dependency on the config module, which imports the solvers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def train_option_int(
    opts: Mapping[str, Any], key: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    """The whole-number option `train.<key>` (`default` when absent), refused by name when it is not an integer
    (a bool is not) or lies outside [minimum, maximum]."""
    value = opts.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"train.{key}: expected an integer {bound}, got {value!r}")
    return int(value)
