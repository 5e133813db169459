from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.fft import idct

from v2s_models.metrics.likelihood import nats_to_bits, nll_per_sample
from v2s_models.metrics.mcd import mcd_waveforms, mel_cepstral_distortion, to_natural_log
from v2s_models.metrics.retrieval import retrieval_metrics, retrieval_ranks


def test_mcd_identical_is_zero_and_gain_is_ignored() -> None:
    rng = np.random.default_rng(0)
    mel = rng.uniform(0.2, 0.8, size=(80, 50))
    assert mel_cepstral_distortion(mel, mel) == 0.0
    # A gain change is a constant in the log domain: only c0 moves, and c0 is excluded.
    assert mel_cepstral_distortion(mel, mel + 0.1) == pytest.approx(0.0, abs=1e-9)


def test_mcd_known_answer_one_cepstrum() -> None:
    """Adding a * (DCT basis vector k) to the ln mel moves c_k alone by a: MCD = 10/ln10 * sqrt(2) * a."""
    rng = np.random.default_rng(1)
    ln_mel = rng.normal(size=(80, 30))
    a = 0.7
    coeffs = np.zeros(80)
    coeffs[3] = a
    shifted = ln_mel + idct(coeffs, type=2, norm="ortho")[:, None]
    expected = 10.0 / math.log(10.0) * math.sqrt(2.0) * a
    assert mel_cepstral_distortion(ln_mel, shifted, convention="ln") == pytest.approx(expected, rel=1e-9)
    # The same change on cepstrum 30 is outside c1..c24 and does not count.
    coeffs[:] = 0.0
    coeffs[30] = a
    far = ln_mel + idct(coeffs, type=2, norm="ortho")[:, None]
    assert mel_cepstral_distortion(ln_mel, far, convention="ln") == pytest.approx(0.0, abs=1e-9)


def test_mcd_conventions_agree_and_frames_are_trimmed() -> None:
    rng = np.random.default_rng(2)
    ln_a, ln_b = rng.normal(size=(80, 40)), rng.normal(size=(80, 40))
    ref = mel_cepstral_distortion(ln_a, ln_b, convention="ln")
    to_db = 20.0 / math.log(10.0)
    assert mel_cepstral_distortion(ln_a * to_db, ln_b * to_db, convention="db") == pytest.approx(ref)
    to_regnet = to_db / 100.0  # regnet: dB / 100 plus an offset
    assert mel_cepstral_distortion(ln_a * to_regnet + 0.5, ln_b * to_regnet + 0.3) == pytest.approx(ref)
    assert mel_cepstral_distortion(ln_a, np.concatenate([ln_b, ln_b], 1), convention="ln") == pytest.approx(
        ref
    )
    np.testing.assert_allclose(to_natural_log(ln_a / math.log(10.0), "log10"), ln_a)


def test_mcd_waveforms_orders_distortions() -> None:
    sr = 22050
    rng = np.random.default_rng(3)
    t = np.arange(sr) / sr
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    slightly = tone + 0.003 * rng.standard_normal(sr).astype(np.float32)
    noise = 0.3 * rng.standard_normal(sr).astype(np.float32)
    assert mcd_waveforms(tone, tone, sr) == 0.0
    assert 0 < mcd_waveforms(tone, slightly, sr) < mcd_waveforms(tone, noise, sr)


def test_nll_uniform_256_is_8_bits() -> None:
    logits = torch.zeros(4, 100, 256)
    targets = torch.randint(0, 256, (4, 100))
    out = nll_per_sample(logits, targets)
    assert out["nll_nats"] == pytest.approx(math.log(256))
    assert out["nll_bits"] == pytest.approx(8.0)
    assert nats_to_bits(math.log(2)) == pytest.approx(1.0)


def test_nll_known_answer_and_numpy_input() -> None:
    # Two classes with probabilities softmax([ln 3, 0]) = [0.75, 0.25]; targets 0 then 1.
    logits = np.array([[math.log(3.0), 0.0], [math.log(3.0), 0.0]])
    out = nll_per_sample(logits, np.array([0, 1]))
    assert out["nll_nats"] == pytest.approx(-(math.log(0.75) + math.log(0.25)) / 2)
    with pytest.raises(ValueError, match="targets"):
        nll_per_sample(logits, np.array([0, 2]))


def test_retrieval_perfect_and_reversed() -> None:
    perfect = np.eye(12) + 0.01 * np.random.default_rng(0).random((12, 12))
    m = retrieval_metrics(perfect)
    assert m["recall@1"] == 1.0 and m["median_rank"] == 1.0 and m["mean_rank"] == 1.0
    # Lower-is-better (NLL): the same matrix negated gives the same ranks.
    assert retrieval_metrics(-perfect, higher_is_better=False) == m
    # The true pair always scores worst: rank Q for every query.
    worst = retrieval_metrics(-np.eye(12))
    assert worst["recall@1"] == 0.0 and worst["recall@10"] == 0.0 and worst["median_rank"] == 12.0


def test_retrieval_constructed_ranks() -> None:
    # Query i's true candidate is beaten by exactly i others: ranks 1..6.
    q = 6
    s = np.zeros((q, q))
    for i in range(q):
        others = [j for j in range(q) if j != i]
        s[i, i] = 0.5
        for n, j in enumerate(others):
            s[i, j] = 1.0 if n < i else 0.0
    np.testing.assert_array_equal(retrieval_ranks(s), np.arange(1, q + 1))
    m = retrieval_metrics(s, ks=(1, 5))
    assert m == {"recall@1": 1 / 6, "recall@5": 5 / 6, "median_rank": 3.5, "mean_rank": 3.5}
    # Ties count against the true pair.
    assert retrieval_ranks(np.ones((4, 4))).tolist() == [4, 4, 4, 4]
