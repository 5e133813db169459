"""Cross-modal retrieval scores (the correlation-filtered seq2seq project's retrieval experiment; Zhou et al.'s
retrieval baseline): each video queries all candidate audios, the true pair is on the diagonal.

    rank_i = 1 + #{j != i : S[i, j] beats S[i, i]}        (1-based; ties count against the true pair)
    recall@k = mean_i [rank_i <= k],  median rank, mean rank

"Beats" is ">=" for scores where higher is better (similarities, log-likelihoods) and "<=" for lower-is-better
scores (`higher_is_better=False`: per-clip NLL under a model conditioned on the query video). Ties are counted
pessimistically so that a constant score matrix gets the worst rank, not the best.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def retrieval_ranks(scores: np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """1-based rank of the true candidate (the diagonal) for each query of a square score matrix (Q, Q)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise ValueError(f"expected a non-empty square score matrix [query, candidate], got shape {s.shape}")
    if not higher_is_better:
        s = -s
    true = np.diag(s)[:, None]
    beats = s >= true
    np.fill_diagonal(beats, False)
    return 1 + beats.sum(axis=1)


def retrieval_metrics(
    scores: np.ndarray, *, higher_is_better: bool = True, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """{"recall@k" for k in ks, "median_rank", "mean_rank"} of a square score matrix (Q, Q) (module doc)."""
    ranks = retrieval_ranks(scores, higher_is_better=higher_is_better)
    out = {f"recall@{k}": float(np.mean(ranks <= k)) for k in ks}
    out["median_rank"] = float(np.median(ranks))
    out["mean_rank"] = float(np.mean(ranks))
    return out
