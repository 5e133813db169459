"""Known-answer tests of the bootstrap intervals, the paired comparison and the stratified sampler."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from v2s_models.metrics.stats import (
    Interval,
    bootstrap_mean,
    bootstrap_statistic,
    paired_comparison,
    stratified_indices,
    stratified_sample,
)


def test_interval_as_dict_and_format() -> None:
    iv = Interval(1.0, 0.5, 1.5)
    assert iv.as_dict() == {"value": 1.0, "ci95": [0.5, 1.5]}
    assert iv.format(2) == "1.00 [0.50, 1.50]"
    assert Interval(math.nan, math.nan, math.nan).format() == "n/a"


def test_bootstrap_mean_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(123)
    true_mean, reps, covered = 2.0, 200, 0
    strata = ["a"] * 25 + ["b"] * 25
    for rep in range(reps):
        values = rng.normal(true_mean, 1.0, size=50)
        iv = bootstrap_mean(values, strata=strata, n_boot=1000, seed=rep)
        assert iv.low <= iv.value <= iv.high, f"{iv=}"
        covered += iv.low <= true_mean <= iv.high
    assert 0.90 <= covered / reps <= 0.99, f"coverage {covered / reps:.3f}"


def test_bootstrap_mean_is_seeded_and_drops_nan() -> None:
    values = [1.0, 2.0, math.nan, 4.0, 5.0]
    first = bootstrap_mean(values, seed=7)
    assert first == bootstrap_mean(values, seed=7)
    assert first.value == pytest.approx(3.0)
    assert bootstrap_mean([math.nan]).value != bootstrap_mean([math.nan]).value  # nan
    assert bootstrap_mean([4.0]) == Interval(4.0, 4.0, 4.0)


def test_stratified_resamples_keep_each_stratum_size() -> None:
    strata = ["x", "y", "x", "z", "y", "x"]
    idx = stratified_indices(6, strata, 50, np.random.default_rng(0))
    assert idx.shape == (50, 6)
    for row in idx:
        assert Counter(strata[i] for i in row) == Counter(strata)


def test_one_clip_categories_are_resampled_together() -> None:
    """A quick evaluation (one clip per category) gets a real interval, not one of zero width."""
    values = [0.1, 0.5, 0.2, 0.9, 0.4, 0.0, 0.7, 0.3]
    strata = [f"c{i}" for i in range(8)]
    iv = bootstrap_mean(values, strata=strata, seed=0)
    assert iv.low < iv.value < iv.high
    assert iv == bootstrap_mean(values, seed=0)  # every category alone: the ordinary bootstrap
    # a category with several clips keeps its own stratum; the single ones are pooled
    strata = ["a", "a", "a", "b", "c", "d", "e", "f"]
    idx = stratified_indices(8, strata, 200, np.random.default_rng(0))
    for row in idx:
        assert Counter(strata[i] for i in row)["a"] == 3
    assert len({strata[i] for row in idx for i in row if strata[i] != "a"}) == 5
    assert any(Counter(strata[i] for i in row)["b"] != 1 for row in idx)


def test_bootstrap_statistic_interval_of_a_set_statistic() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(0.0, 3.0, size=200)
    iv = bootstrap_statistic(lambda idx: float(np.std(data[idx])), len(data), n_boot=300, seed=1)
    assert iv.value == pytest.approx(float(np.std(data)))
    assert iv.low < 3.0 < iv.high, f"{iv=}"
    assert iv.high - iv.low < 1.5


def test_paired_comparison_detects_a_real_shift_and_not_a_null_one() -> None:
    rng = np.random.default_rng(5)
    base = rng.normal(0.0, 1.0, size=64)  # clip difficulty, shared by both systems
    strata = [f"c{i % 4}" for i in range(64)]
    shifted = paired_comparison(base + 0.3 + rng.normal(0, 0.2, 64), base, strata=strata, seed=0)
    assert shifted.p_bootstrap < 0.01 and shifted.p_wilcoxon < 0.01, f"{shifted=}"
    assert shifted.difference.low > 0 and shifted.significant
    null = paired_comparison(base + rng.normal(0, 0.2, 64), base, strata=strata, seed=0)
    assert null.p_bootstrap > 0.05 and null.p_wilcoxon > 0.05, f"{null=}"
    assert null.difference.low < 0 < null.difference.high and not null.significant


def test_paired_comparison_identical_systems_and_shape_errors() -> None:
    same = paired_comparison([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.p_wilcoxon is None and same.difference.value == 0.0 and not same.significant
    assert same.as_dict()["p_wilcoxon"] is None
    with pytest.raises(ValueError, match="same clips"):
        paired_comparison([1.0, 2.0], [1.0])


def test_stratified_sample_takes_every_category_evenly() -> None:
    # a manifest sorted by category, as the real one is: a head slice would take one category only
    ids = [f"{cat}_{i}" for cat in "abcd" for i in range(20)]
    cats = [i.split("_")[0] for i in ids]
    sample = stratified_sample(ids, cats, 12, seed=3)
    assert len(sample) == 12 and len(set(sample)) == 12
    assert Counter(s.split("_")[0] for s in sample) == {"a": 3, "b": 3, "c": 3, "d": 3}
    assert sample == stratified_sample(ids, cats, 12, seed=3)
    assert sample != stratified_sample(ids, cats, 12, seed=4)
    assert stratified_sample(ids, cats, 500) == ids
    uneven = stratified_sample(ids[:22], cats[:22], 6, seed=0)  # 20 of a, 2 of b
    assert Counter(s.split("_")[0] for s in uneven) == {"a": 4, "b": 2}
