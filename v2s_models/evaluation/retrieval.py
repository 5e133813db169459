"""Likelihood and retrieval: Zhou et al.'s Table 1 NLL, the correlation project's retrieval experiment, and the
correlation tower as a retriever, on a category-stratified seeded sample of the split, each figure with its
bootstrap interval over the queries (stratified by category)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from v2s_models import metrics as M
from v2s_models.correlation import sequence_nll
from v2s_models.data import PerSecondDataset, collate_dicts, read_manifest
from v2s_models.evaluation.baselines import select_rows
from v2s_models.evaluation.progress import progress
from v2s_models.metrics.stats import Interval, bootstrap_mean, bootstrap_statistic
from v2s_models.training.loop import build_solver

KS = (1, 5, 10)


def retrieval_intervals(
    scores: np.ndarray,
    categories: Sequence[str],
    *,
    higher_is_better: bool,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Interval]:
    """recall@1/5/10, median and mean rank of the true candidate for a square score matrix (Q, Q) (query i's
    true candidate is i), each with a bootstrap interval over the queries, resampled within categories."""
    ranks = M.retrieval_ranks(scores, higher_is_better=higher_is_better).astype(np.float64)  # (Q,)
    out = {f"recall@{k}": bootstrap_mean(ranks <= k, strata=categories, n_boot=n_boot, seed=seed) for k in KS}
    out["median_rank"] = bootstrap_statistic(
        lambda idx: float(np.median(ranks[idx])), len(ranks), strata=categories, n_boot=n_boot, seed=seed
    )
    out["mean_rank"] = bootstrap_mean(ranks, strata=categories, n_boot=n_boot, seed=seed)
    return out


def _solver_with_weights(package: Any, root: Path, manifest: str | None) -> Any:
    """The package's training solver (data pipeline, cropping) with the package's trained weights."""

    cfg = copy.deepcopy(package.config)
    if manifest is not None:
        cfg["data"]["manifest"] = manifest
    cfg["data"].pop("max_clips", None)
    solver = build_solver(cfg, root=root)
    for name, module in package.modules.items():
        if name in solver.modules:
            solver.modules[name].load_state_dict(module.state_dict())
    solver.train(False)
    return solver


@torch.inference_mode()
def likelihood_retrieval(
    package: Any,
    *,
    root: str | Path = ".",
    split: str = "test",
    max_clips: int | None = 32,
    seconds: float | None = None,
    manifest: str | None = "data/prepared/manifest.jsonl",
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Interval], dict[str, Any]]:
    """SampleRNN models: Zhou et al.'s Table 1 metric and the correlation project's retrieval experiment.

    NLL[i, j] = average negative log-likelihood per sample (nats) of clip j's real audio (teacher-forced as in
    training; the whole clip, or its first `seconds`) given clip i's video, over `max_clips` clips drawn evenly
    from every category (seeded). Figures: `nll_nats` / `nll_bits` (the matched pairs, the diagonal),
    `nll_mismatched_nats` (each query's mean over the other clips: what the video is worth), and, with each
    video as the query and candidates ranked by likelihood, `recall@1/5/10`, `median_rank`, `mean_rank`
    (chance: recall@k = k / N, median rank (N + 1) / 2). Returns (figures, {"clips", "seconds", "sample"}).
    """

    if package.paradigm != "autoregressive":
        raise ValueError(
            f"likelihood retrieval needs a SampleRNN (autoregressive) model, not {package.paradigm!r}"
        )
    solver = _solver_with_weights(package, Path(root).resolve(), manifest)
    rows = select_rows(solver._rows(split), max_clips, seed)
    if len(rows) < 2:
        raise ValueError(f"retrieval needs at least 2 clips in split {split!r}, got {len(rows)}")
    ds = solver._dataset(rows)
    batch = collate_dicts([ds[i] for i in range(len(ds))])
    wav, visual = solver._inputs(batch)
    wav, visual, extra = solver.crop(wav, visual, seconds=seconds, random=False)
    model = solver.unwrapped("model")
    n = wav.shape[0]
    chunk = min(int(getattr(solver, "chunk_len", 1024)), wav.shape[1])
    nll = np.zeros((n, n), np.float64)
    for i in progress(range(n), desc="likelihood retrieval"):  # query video i against every candidate audio j
        rep = {k: v[i : i + 1].expand(n, *v.shape[1:]) for k, v in extra.items()}
        q = visual[i : i + 1].expand(n, *visual.shape[1:])
        nll[i] = sequence_nll(model, wav, q, chunk_len=chunk, **rep).double().cpu().numpy()
    cats = [str(r["category"]) for r in rows]
    diag = np.diag(nll)
    mismatched = (nll.sum(axis=1) - diag) / (n - 1)
    figures = {
        "nll_nats": bootstrap_mean(diag, strata=cats, n_boot=n_boot, seed=seed),
        "nll_bits": bootstrap_mean(M.nats_to_bits(diag), strata=cats, n_boot=n_boot, seed=seed),
        "nll_mismatched_nats": bootstrap_mean(mismatched, strata=cats, n_boot=n_boot, seed=seed),
        **retrieval_intervals(nll, cats, higher_is_better=False, n_boot=n_boot, seed=seed),
    }
    info = {
        "clips": n,
        "seconds": float(wav.shape[1] / package.data_settings.sample_rate),
        "sample": "stratified",
    }
    return figures, info


@torch.inference_mode()
def tower_retrieval(
    package: Any,
    *,
    root: str | Path = ".",
    split: str = "test",
    max_clips: int | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, Interval], dict[str, Any]]:
    """The correlation tower as a retriever: score[i, j] = tower logit of (clip i's video, clip j's audio)
    over the per-second features of `max_clips` clips drawn evenly from every category; recall@1/5/10,
    median and mean rank of the true audio with intervals. Returns (figures, {"clips", "seconds", "sample"})."""
    if package.paradigm != "correlation":
        raise ValueError(f"tower retrieval needs a correlation model, not {package.paradigm!r}")
    tower = package.modules["tower"].eval()
    rows = read_manifest("data/prepared/manifest.jsonl", split=split, root=Path(root))
    rows = select_rows(rows, max_clips, seed)
    if len(rows) < 2:
        raise ValueError(f"retrieval needs at least 2 clips in split {split!r}, got {len(rows)}")
    ds = PerSecondDataset(rows, root=Path(root))
    items = [ds[i] for i in range(len(ds))]
    s = min(min(it["appearance"].shape[0], it["audio"].shape[0]) for it in items)
    video = torch.stack([it["appearance"][:s] for it in items])
    audio = torch.stack([it["audio"][:s] for it in items])
    n = len(items)
    scores = np.stack(
        [tower(video[i : i + 1].expand(n, -1, -1), audio).float().reshape(n).numpy() for i in range(n)]
    )
    cats = [str(r["category"]) for r in rows]
    figures = retrieval_intervals(scores, cats, higher_is_better=True, n_boot=n_boot, seed=seed)
    return figures, {"clips": n, "seconds": float(s), "sample": "stratified"}


def chance_retrieval(n: int, ks: Sequence[int] = KS) -> dict[str, Interval]:
    """What a random ranking of N candidates gives on average: recall@k = min(k, N) / N, ranks (N + 1) / 2
    (exact expectations: zero-width intervals)."""
    exact = {
        **{f"recall@{k}": min(k, n) / n for k in ks},
        "median_rank": (n + 1) / 2,
        "mean_rank": (n + 1) / 2,
    }
    return {k: Interval(v, v, v) for k, v in exact.items()}
