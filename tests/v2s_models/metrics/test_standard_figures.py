"""Known answers for av-benchmark's FD, KL and IS formulas, and the standard_metrics API on stand-in weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from v2s_models.metrics.distribution import frechet_distance as frechet_distance_eig
from v2s_models.metrics.standard import (
    WeightsInfo,
    embed_clips,
    figures,
    metric_labels,
    standard_metrics,
    weights_status,
)
from v2s_models.metrics.standard.standin import write_standins
from v2s_models.metrics.standard.weights import OFFICIAL_FILES, STANDIN_FILES


def test_fd_matches_av_benchmark_sqrtm_form_and_a_mean_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((60, 5)), rng.standard_normal((50, 5)) * 1.5 + 0.3
    mu_a, mu_b, s_a, s_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s_a @ s_b).real
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean)
    assert figures.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    few_a, few_b = (
        rng.standard_normal((12, 300)),
        rng.standard_normal((9, 300)) + 0.1,
    )  # fewer clips than dims
    # the (D, D) eigen form adds sqrt(round-off) for each of its ~290 zero eigenvalues: agreement to 1e-7
    assert figures.frechet_distance(few_a, few_b) == pytest.approx(
        frechet_distance_eig(few_a, few_b), rel=1e-7
    )
    shift = np.array([3.0, 0.0, 4.0, 0.0, 0.0])
    assert figures.frechet_distance(a, a + shift) == pytest.approx(25.0, rel=1e-9)


def test_kl_is_real_given_generated_softmax_and_has_a_closed_form() -> None:
    real = np.log(np.array([[0.5, 0.5], [0.9, 0.1]]))
    gen = np.log(np.array([[0.9, 0.1], [0.9, 0.1]]))
    kl = figures.kl_per_clip(real, gen)
    assert kl[0] == pytest.approx(0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1), rel=1e-12)
    assert kl[1] == pytest.approx(0.0, abs=1e-12)
    # torch's kl_div(log q, log p, log_target=True, sum) / N is the reference's KL-softmax
    ref = (
        torch.nn.functional.kl_div(
            torch.log_softmax(torch.tensor(gen), 1),
            torch.log_softmax(torch.tensor(real), 1),
            reduction="sum",
            log_target=True,
        )
        / 2
    )
    assert kl.mean() == pytest.approx(float(ref), rel=1e-12)
    assert figures.kl_per_clip(gen, real)[0] != pytest.approx(kl[0])  # the reverse direction differs


def test_inception_score_known_answers() -> None:
    # one-hot predictions spread evenly over K classes in every split -> IS = K; identical predictions -> 1
    k = 4
    confident = np.full((40, k), -50.0)
    confident[np.arange(40), np.arange(40) % k] = 50.0
    mean, std = figures.inception_score(confident, seed=None)
    assert mean == pytest.approx(k, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    assert figures.inception_score(np.zeros((40, 7)))[0] == pytest.approx(1.0)


def test_inception_score_follows_the_reference_shuffle_and_splits() -> None:
    logits = np.random.default_rng(3).standard_normal((23, 6)) * 2
    order = np.random.RandomState(2020).permutation(23)
    x = torch.tensor(logits[order], dtype=torch.float64)
    p, log_p = x.softmax(1), x.log_softmax(1)
    scores = []
    for i in range(10):
        chunk, log_chunk = p[i * 23 // 10 : (i + 1) * 23 // 10], log_p[i * 23 // 10 : (i + 1) * 23 // 10]
        q = chunk.mean(0, keepdim=True)
        scores.append((chunk * (log_chunk - q.log())).sum(1).mean().exp().item())
    mean, std = figures.inception_score(logits)
    assert mean == pytest.approx(np.mean(scores), rel=1e-12) and std == pytest.approx(
        np.std(scores), rel=1e-9
    )


def test_standard_metrics_empty_without_weights_and_labelled_with_standins(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("V2S_WEIGHTS_DIR", raising=False)
    rng = np.random.default_rng(0)
    real = [rng.standard_normal(int(22050 * 1.5)) * 0.1 for _ in range(4)]
    gen = [rng.standard_normal(int(22050 * 1.5)) * 0.1 for _ in range(4)]
    cats = ["a", "b"] * 2
    assert standard_metrics(real, gen, sample_rate=22050, categories=cats) == {}
    assert set(metric_labels().values()) == {"missing"}
    written = write_standins(tmp_path, seed=0)
    assert sorted(written) == ["panns", "passt", "vggish"]
    settings = {"standin_dir": str(tmp_path), "n_boot": 20}
    out = standard_metrics(real, gen, sample_rate=22050, categories=cats, settings=settings)
    assert set(out) == {"fd_panns", "kl_panns", "is_panns", "fd_vggish", "fd_passt", "kl_passt"}
    # a percentile bootstrap of FD need not contain the value (resamples repeat clips), only be ordered
    assert all(
        out[k].low <= out[k].high and math.isfinite(out[k].value)
        for k in ("fd_panns", "kl_panns", "fd_vggish", "fd_passt", "kl_passt")
    )
    assert math.isnan(out["is_panns"].value), "4 clips in 10 splits leave empty splits: nan, as the reference"
    same = standard_metrics(real, real, sample_rate=22050, categories=cats, settings=settings)
    assert same["kl_panns"].value == pytest.approx(0.0, abs=1e-9)
    assert same["fd_panns"].value == pytest.approx(0.0, abs=1e-6)
    assert out["fd_panns"].value > same["fd_panns"].value
    status = weights_status(settings)
    assert status["panns"].label() == "stand-in, not comparable" and status["passt"].kind == "stand-in"
    monkeypatch.setenv("V2S_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / OFFICIAL_FILES["vggish"]).write_bytes((tmp_path / STANDIN_FILES["vggish"]).read_bytes())
    assert weights_status(settings)["vggish"].kind == "official"


def test_standins_respond_to_the_spectrum(tmp_path: Path) -> None:
    """Random stand-ins must still tell different sounds apart, or every figure would be trivially 0."""
    written = write_standins(tmp_path, seed=0)
    t = np.arange(16000 * 2) / 16000
    tones = [0.2 * np.sin(2 * np.pi * f * t) for f in (200.0, 1500.0)]
    for network in ("panns", "vggish"):
        info = WeightsInfo(network, "stand-in", written[network])
        emb, _ = embed_clips(network, tones, sample_rate=16000, info=info)
        a, b = (np.atleast_2d(e).mean(axis=0) for e in emb)
        assert np.linalg.norm(a - b) > 0.05 * max(np.linalg.norm(a), np.linalg.norm(b)), network


def test_embeddings_of_the_same_clips_are_reused_and_changed_clips_recomputed(tmp_path: Path) -> None:
    written = write_standins(tmp_path, seed=0)
    info = WeightsInfo("panns", "stand-in", written["panns"])
    waves = [np.random.default_rng(i).standard_normal(16000) * 0.1 for i in range(2)]
    first = embed_clips("panns", waves, sample_rate=16000, info=info)
    assert embed_clips("panns", [w.copy() for w in waves], sample_rate=16000, info=info) is first
    changed = embed_clips("panns", [waves[0], waves[1] * 0.5], sample_rate=16000, info=info)
    assert changed is not first and np.allclose(changed[0][0], first[0][0])
    assert not np.allclose(changed[0][1], first[0][1])
