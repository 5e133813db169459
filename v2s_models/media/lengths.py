"""Fitting an array to a clip's length: loop, zero-pad or trim along one axis (`fit_length`). How clips use it:
`decoding`'s docstring (padding to the clip length)."""

from __future__ import annotations

from typing import Literal

import numpy as np

PadMode = Literal["loop", "zero", "trim"]


def fit_length(x: np.ndarray, n: int, *, mode: PadMode, axis: int = 0) -> np.ndarray:
    """Returns a new array of exactly `n` entries along `axis`: the first n when `x` is longer, else `x`
    looped from its start ("loop"), followed by zeros ("zero"), or a ValueError ("trim" never lengthens)."""
    if mode not in ("loop", "zero", "trim"):
        raise ValueError(f"fit_length mode must be 'loop', 'zero' or 'trim', got {mode!r}")
    if n < 0:
        raise ValueError(f"fit_length needs a non-negative length, got n={n}")
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("fit_length needs an array with at least one dimension, got a scalar")
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {x.shape}")
    axis = axis % x.ndim
    length = x.shape[axis]
    if length >= n:
        return np.take(x, np.arange(n), axis=axis)
    if mode == "trim":
        raise ValueError(f"fit_length(mode='trim') cannot lengthen {length} entries to {n} (axis {axis})")
    if mode == "loop":
        if length == 0:
            raise ValueError(f"fit_length(mode='loop') cannot loop an empty array of shape {x.shape}")
        return np.take(x, np.arange(n) % length, axis=axis)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, n - length)
    return np.pad(x, widths)
