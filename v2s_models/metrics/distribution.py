"""Distribution metrics over sets of clips: Frechet distance of embeddings and KL divergence of class
probabilities, the offline counterparts of av-benchmark's FD (PaSST / PANNs / VGGish) and KL (MMAudio's
evaluation kit), computed on SoundNet-8 (`soundnet.py`) because no hub is reachable here.

    FD = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))      (Heusel et al. 2017; Kilgour et al. 2019)

tr (S_a S_b)^(1/2) is computed as sum_i sqrt(lambda_i) with lambda_i the eigenvalues of the symmetric PSD
matrix S_a^(1/2) S_b S_a^(1/2) (similar to S_a S_b), negatives from round-off clipped to 0. This equals
tr scipy.linalg.sqrtm(S_a S_b) (tested) and stays finite and real when the covariances are singular, as they
are whenever a set has fewer clips than dimensions (1024 here), so no eps on the diagonal is needed.

    KL = mean over clips i of sum_c p_real[i, c] * ln(p_real[i, c] / p_gen[i, c])

paired (clip i generated for the video of real clip i), KL(real || generated) as av-benchmark, in nats;
probabilities are clamped at 1e-10 before the logarithm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from v2s_models.metrics.soundnet import embed


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two embedding sets (N_a, D) and (N_b, D), N >= 2."""
    a, b = np.asarray(emb_a, dtype=np.float64), np.asarray(emb_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected embeddings (N_a, D) and (N_b, D), got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a covariance needs at least 2 clips per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(s_a)
    inner = root_a @ s_b @ root_a
    eig = np.linalg.eigvalsh((inner + inner.T) / 2.0)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    fd = float(np.sum((mu_a - mu_b) ** 2) + np.trace(s_a) + np.trace(s_b) - 2.0 * tr_sqrt)
    return max(fd, 0.0)


def kl_divergence(p_real: np.ndarray, p_gen: np.ndarray, *, eps: float = 1e-10) -> float:
    """Mean paired KL(p_real[i] || p_gen[i]) in nats over clips; inputs (N, C) (or (C,) for one clip),
    each row a probability distribution."""
    p, q = (
        np.atleast_2d(np.asarray(p_real, dtype=np.float64)),
        np.atleast_2d(np.asarray(p_gen, dtype=np.float64)),
    )
    if p.shape != q.shape:
        raise ValueError(f"paired KL needs equal shapes, got {p.shape} and {q.shape}")
    p, q = np.clip(p, eps, None), np.clip(q, eps, None)
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=1)))


def soundnet_set(waves: Sequence[np.ndarray], sr: int) -> tuple[np.ndarray, np.ndarray]:
    """SoundNet embeddings (N, 1024) and object probabilities (N, 1000) of a list of mono waveforms."""

    outs = [embed(w, sr) for w in waves]
    return np.stack([o.embedding for o in outs]), np.stack([o.objects for o in outs])


def evaluate_set(
    generated: Sequence[np.ndarray], references: Sequence[np.ndarray], sr: int
) -> dict[str, float]:
    """{"fd_soundnet": FD of conv7 embeddings, "kl_soundnet": paired KL(real || generated) of object
    probabilities} for a list of generated waveforms and their real counterparts (same order, same `sr`)."""
    if len(generated) != len(references):
        raise ValueError(f"paired sets needed: {len(generated)} generated vs {len(references)} references")
    emb_g, p_g = soundnet_set(generated, sr)
    emb_r, p_r = soundnet_set(references, sr)
    return {"fd_soundnet": frechet_distance(emb_r, emb_g), "kl_soundnet": kl_divergence(p_r, p_g)}
