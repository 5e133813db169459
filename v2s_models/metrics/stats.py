"""Uncertainty for evaluation figures: bootstrap intervals, paired comparisons, stratified samples.

Every figure v2s reports is a statistic over a few dozen clips, so each carries a 95 % interval from a
percentile bootstrap over clips, resampled with replacement *within* each category (stratum), so a resample
keeps the category mix of the evaluated set; categories with a single clip are resampled together as one
stratum (one clip alone would never vary). Set statistics (Frechet distance, Inception-style scores) are
bootstrapped the same way over the indices of the set. Two systems scored on the same clips are compared
per clip (`paired_comparison`): the mean paired difference with its interval, a paired-bootstrap p-value and
Wilcoxon's signed-rank p-value. Everything is seeded: the same inputs give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

__all__ = [
    "Interval",
    "PairedComparison",
    "bootstrap_mean",
    "bootstrap_statistic",
    "paired_comparison",
    "stratified_indices",
    "stratified_sample",
]


@dataclass(frozen=True)
class Interval:
    """A figure with its interval (95 % unless the producer says otherwise)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict:
        """`{"value": v, "ci95": [low, high]}`: the shape of every figure in metrics.json."""
        return {"value": float(self.value), "ci95": [float(self.low), float(self.high)]}

    def format(self, digits: int = 3) -> str:
        """`value [low, high]`, the shape of every figure in the tables; `n/a` for a missing value."""
        if not math.isfinite(self.value):
            return "n/a"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return f"{self.value:.{digits}f}"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class PairedComparison:
    """System A minus system B on the same clips.

    `difference` is the mean per-clip difference a - b with its bootstrap interval; `p_bootstrap` the
    two-sided paired-bootstrap p-value of "no difference"; `p_wilcoxon` Wilcoxon's signed-rank p-value
    (None when every difference is 0, where the test is undefined); `n` the number of clips both scored.
    """

    difference: Interval
    p_bootstrap: float
    p_wilcoxon: float | None
    n: int
    level: float = 0.95

    @property
    def significant(self) -> bool:
        """Both tests reject "no difference" at 1 - level (an interval that excludes 0 agrees)."""
        alpha = 1.0 - self.level
        return self.p_bootstrap < alpha and self.p_wilcoxon is not None and self.p_wilcoxon < alpha

    def as_dict(self) -> dict:
        """The JSON shape of a comparison (one entry per metric in `v2s compare --json`)."""
        return {
            **self.difference.as_dict(),
            "p_bootstrap": float(self.p_bootstrap),
            "p_wilcoxon": None if self.p_wilcoxon is None else float(self.p_wilcoxon),
            "n": int(self.n),
            "significant": self.significant,
        }


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")


def _groups(n: int, strata: Sequence[str] | None) -> list[np.ndarray]:
    """Indices 0..n-1 grouped by stratum (one group when `strata` is None), in first-seen order."""
    if strata is None:
        return [np.arange(n)]
    if len(strata) != n:
        raise ValueError(f"strata has {len(strata)} labels for {n} values")
    positions: dict[str, list[int]] = {}
    for i, label in enumerate(strata):
        positions.setdefault(str(label), []).append(i)
    return [np.asarray(p) for p in positions.values()]


def _resampling_groups(n: int, strata: Sequence[str] | None) -> list[np.ndarray]:
    """`_groups`, with the strata of a single index pooled into one group when there are several.

    A category with one clip cannot vary inside itself: resampled alone it is the same clip every time, and a
    quick evaluation of one clip per category would get intervals of zero width. Such categories are resampled
    together (when every category has one clip: an ordinary bootstrap)."""
    groups = _groups(n, strata)
    singles = [int(g[0]) for g in groups if len(g) == 1]
    if len(singles) < 2:
        return groups
    return [g for g in groups if len(g) > 1] + [np.asarray(singles)]


def stratified_indices(
    n: int, strata: Sequence[str] | None, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap resamples of 0..n-1, with replacement within each stratum (strata of one index pooled, see
    `_resampling_groups`): an int array (n_boot, n)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    groups = _resampling_groups(n, strata)
    columns = [group[rng.integers(0, len(group), size=(n_boot, len(group)))] for group in groups]
    out = np.concatenate(columns, axis=1) if columns else np.empty((n_boot, 0), dtype=np.int64)
    assert out.shape == (n_boot, n), f"{out.shape=} {n=}"
    return out


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(finite, [tail, 1.0 - tail])
    return float(low), float(high)


def _finite(values: Sequence[float] | np.ndarray, strata: Sequence[str] | None, name: str):
    """Drop NaN entries (a metric undefined on a clip) together with their stratum labels."""
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if strata is not None and len(strata) != arr.size:
        raise ValueError(f"{name}: strata has {len(strata)} labels for {arr.size} values")
    keep = np.isfinite(arr)
    kept_strata = None if strata is None else [s for s, k in zip(strata, keep, strict=True) if k]
    return arr[keep], kept_strata


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    *,
    strata: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Mean of per-clip `values` (N,) with a percentile-bootstrap interval, resampled within each stratum.

    Non-finite values (a metric undefined on a clip) are left out. No values give `Interval(nan, nan, nan)`;
    one value gives a zero-width interval.
    """
    _check_level(level)
    arr, kept = _finite(values, strata, "bootstrap_mean")
    if arr.size == 0:
        return Interval(math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if arr.size == 1:
        return Interval(mean, mean, mean)
    idx = stratified_indices(arr.size, kept, n_boot, np.random.default_rng(seed))
    low, high = _percentiles(arr[idx].mean(axis=1), level)
    return Interval(mean, low, high)


def bootstrap_statistic(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    strata: Sequence[str] | None = None,
    n_boot: int = 200,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """A set statistic (FD, IS, KL) with a bootstrap interval over the set's members.

    `statistic(indices)` computes the figure on the members `indices` (an int array, repeats allowed);
    the value is `statistic(np.arange(n))`, the interval the percentiles of `statistic` on `n_boot`
    resamples drawn within each stratum. Resamples where the statistic is not finite are left out.
    """
    _check_level(level)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    value = float(statistic(np.arange(n)))
    if n < 2:
        return Interval(value, value, value)
    idx = stratified_indices(n, strata, n_boot, np.random.default_rng(seed))
    samples = np.asarray([float(statistic(row)) for row in idx])
    low, high = _percentiles(samples, level)
    return Interval(value, low, high)


def paired_comparison(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    strata: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PairedComparison:
    """Per-clip paired difference a - b of two systems scored on the same N clips.

    Clips where either value is not finite are left out. The bootstrap p-value resamples the differences
    centred on 0 (the null of no mean difference), within each stratum, and counts resampled means at least
    as far from 0 as the observed one: p = (count + 1) / (n_boot + 1), two-sided.
    """
    _check_level(level)
    a_arr = np.asarray(a, dtype=np.float64).reshape(-1)
    b_arr = np.asarray(b, dtype=np.float64).reshape(-1)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired_comparison needs the same clips: a has {a_arr.size}, b has {b_arr.size}")
    diff, kept = _finite(a_arr - b_arr, strata, "paired_comparison")
    n = int(diff.size)
    if n == 0:
        return PairedComparison(Interval(math.nan, math.nan, math.nan), math.nan, None, 0, level)
    observed = float(diff.mean())
    if n == 1:
        return PairedComparison(Interval(observed, observed, observed), 1.0, None, 1, level)
    idx = stratified_indices(n, kept, n_boot, np.random.default_rng(seed))
    boot_means = diff[idx].mean(axis=1)
    low, high = _percentiles(boot_means, level)
    null_means = (diff - observed)[idx].mean(axis=1)
    extreme = int(np.count_nonzero(np.abs(null_means) >= abs(observed) - 1e-12))
    p_boot = (extreme + 1) / (n_boot + 1)
    p_wilcoxon = None if np.all(diff == 0) else float(scipy_stats.wilcoxon(diff).pvalue)
    return PairedComparison(Interval(observed, low, high), float(p_boot), p_wilcoxon, n, level)


def stratified_sample(ids: Sequence[str], strata: Sequence[str], n: int, *, seed: int = 0) -> list[str]:
    """`n` of `ids` spread evenly over the strata (categories), seeded and deterministic.

    Each stratum's ids are shuffled with the seed, the strata are visited round-robin in a seeded order,
    one id each per round, until `n` are taken (a stratum that runs out is skipped). The result keeps the
    order of `ids`. `n >= len(ids)` returns all of them.
    """
    if len(ids) != len(strata):
        raise ValueError(f"stratified_sample: {len(strata)} strata for {len(ids)} ids")
    if n < 0:
        raise ValueError(f"stratified_sample: n must be >= 0, got {n}")
    if n >= len(ids):
        return list(ids)
    rng = np.random.default_rng(seed)
    groups = _groups(len(ids), strata)
    labels = sorted({str(s) for s in strata})
    by_label = {str(strata[int(g[0])]): g for g in groups}
    order = [labels[i] for i in rng.permutation(len(labels))]
    queues = {label: list(rng.permutation(by_label[label])) for label in labels}
    chosen: list[int] = []
    while len(chosen) < n:
        for label in order:
            if queues[label] and len(chosen) < n:
                chosen.append(int(queues[label].pop(0)))
    return [ids[i] for i in sorted(chosen)]
