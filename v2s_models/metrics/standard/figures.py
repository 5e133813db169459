"""FD, KL and IS as av-benchmark (hkchengrex/av-benchmark, `av_bench/metrics/`) computes them.

- **FD** (`fd_panns`, `fd_vggish`, `fd_passt`): the Frechet distance of Gaussians fitted to the real and the
  generated embeddings, |mu_r - mu_g|^2 + tr(S_r + S_g - 2 (S_r S_g)^(1/2)), `np.cov` (N - 1 normalisation).
  PANNs and PaSST give one embedding per clip; VGGish one per 0.96 s example, and av-benchmark pools all
  examples of all clips (so a 8 s clip contributes 8 rows). The trace of the matrix square root is computed
  exactly in the space of the clips rather than of the 2048 dimensions: with centred rows A (N_r, D) and
  B (N_g, D), S_r S_g = A^T (A B^T B) A^T-similar, so its non-zero eigenvalues are the squared singular values
  of the cross-Gram matrix M = A B^T, and tr (S_r S_g)^(1/2) = sum sigma_i(M) / sqrt((N_r - 1)(N_g - 1)).
  One SVD of an (N_r, N_g) matrix instead of eigendecompositions of (D, D) ones: 32 clips with 200 bootstrap
  resamples cost milliseconds, not minutes. Equal to scipy's `sqrtm` form (tested).
- **KL** (`kl_panns`, `kl_passt`): paired, KL(real || generated) of the softmax of the logits,
  sum_c p_real log(p_real / p_gen) per clip, averaged over clips (av-benchmark's `kl_softmax`: PyTorch's
  `kl_div(log_softmax(gen), log_softmax(real), reduction="sum", log_target=True) / N`). The reverse direction
  KL(generated || real) is `kl_per_clip(gen, real)`; the reported keys are the reference direction only.
- **IS** (`is_panns`): on the softmax of the PANNs logits of the generated set, shuffled once with
  `np.random.RandomState(2020).permutation(N)`, cut into 10 splits [i N / 10, (i + 1) N / 10), per split
  exp(mean_n KL(p_n || mean p)), reported as the mean over splits (and the std), in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IS_SPLITS = 10
IS_SEED = 2020

__all__ = [
    "IS_SEED",
    "IS_SPLITS",
    "frechet_distance",
    "inception_score",
    "kl_per_clip",
    "log_softmax",
    "stack_frames",
]


def frechet_distance(emb_real: np.ndarray, emb_gen: np.ndarray) -> float:
    """Frechet distance of Gaussians fitted to embeddings (N_r, D) and (N_g, D), N >= 2 each (float64)."""
    a, b = np.asarray(emb_real, dtype=np.float64), np.asarray(emb_gen, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected embeddings (N_r, D) and (N_g, D), got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a covariance needs at least 2 rows per set, got {len(a)} and {len(b)}")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    a_c, b_c = a - mu_a, b - mu_b
    scale_a, scale_b = len(a) - 1, len(b) - 1
    tr_sqrt = np.linalg.svd(a_c @ b_c.T, compute_uv=False).sum() / np.sqrt(scale_a * scale_b)
    fd = np.sum((mu_a - mu_b) ** 2) + np.sum(a_c**2) / scale_a + np.sum(b_c**2) / scale_b - 2.0 * tr_sqrt
    return max(float(fd), 0.0)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log softmax of logits (N, C), in float64."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def kl_per_clip(logits_p: np.ndarray, logits_q: np.ndarray) -> np.ndarray:
    """KL(softmax(p_i) || softmax(q_i)) in nats for each of N paired rows of logits (N, C) -> (N,).

    `kl_per_clip(real, generated).mean()` is av-benchmark's KL-softmax."""
    p, q = np.atleast_2d(logits_p), np.atleast_2d(logits_q)
    if p.shape != q.shape:
        raise ValueError(f"paired KL needs logits of equal shape, got {p.shape} and {q.shape}")
    log_p, log_q = log_softmax(p), log_softmax(q)
    return np.sum(np.exp(log_p) * (log_p - log_q), axis=1)


def inception_score(
    logits: np.ndarray, *, splits: int = IS_SPLITS, seed: int | None = IS_SEED
) -> tuple[float, float]:
    """(mean, std) over `splits` of exp(E_n KL(p_n || p_split)), p = softmax(logits (N, C)); `seed=None` keeps
    the order (av-benchmark shuffles with RandomState(2020)). A split with no clip gives nan, as the reference."""
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"inception_score expects logits (N, C), got shape {x.shape}")
    n = len(x)
    if seed is not None:
        x = x[np.random.RandomState(seed).permutation(n)]
    log_p = log_softmax(x)
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        if hi <= lo:
            scores.append(np.nan)
            continue
        log_marginal = np.log(p[lo:hi].mean(axis=0, keepdims=True))
        scores.append(float(np.exp(np.sum(p[lo:hi] * (log_p[lo:hi] - log_marginal), axis=1).mean())))
    return float(np.mean(scores)), float(np.std(scores))


def stack_frames(per_clip: Sequence[np.ndarray], indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """The rows of the clips `indices` (repeats allowed) stacked: VGGish's (examples, 128) per clip -> (M, 128)."""
    return np.concatenate([np.atleast_2d(per_clip[int(i)]) for i in indices], axis=0)
