"""Average negative log-likelihood per audio sample, in nats and bits (Zhou et al. 2018, Table 1:
"average cross-entropy", e.g. Flow 2.60 train / 2.68 test; the correlation-filtered system reports the same).

    NLL = -(1 / M) * sum_i log softmax(logits_i)[target_i]      [nats per sample]
    bits = nats / ln 2

Uniform logits over 256 quantisation levels give ln 256 = 5.545 nats = 8 bits per sample.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def nats_to_bits(nats: float | np.ndarray | torch.Tensor) -> float | np.ndarray | torch.Tensor:
    """nats / ln 2."""
    return nats / math.log(2.0)


def nll_per_sample(logits: torch.Tensor | np.ndarray, targets: torch.Tensor | np.ndarray) -> dict[str, float]:
    """Mean NLL of integer `targets` (...,) under categorical `logits` (..., C), averaged over every sample.

    Returns {"nll_nats": ..., "nll_bits": ...}. Computed in float64.
    """
    logits_t = torch.as_tensor(logits).detach().to(torch.float64)
    targets_t = torch.as_tensor(targets).detach().to(torch.int64)
    if logits_t.shape[:-1] != targets_t.shape:
        raise ValueError(
            f"logits (..., C) and targets (...) disagree: {tuple(logits_t.shape)=} {tuple(targets_t.shape)=}"
        )
    if targets_t.numel() == 0:
        raise ValueError("nll_per_sample needs at least one target")
    classes = logits_t.shape[-1]
    if int(targets_t.min()) < 0 or int(targets_t.max()) >= classes:
        raise ValueError(f"targets must lie in 0..{classes - 1}")
    log_probs = torch.log_softmax(logits_t.reshape(-1, classes), dim=-1)
    nats = float(-log_probs.gather(1, targets_t.reshape(-1, 1)).mean())
    return {"nll_nats": nats, "nll_bits": float(nats_to_bits(nats))}
