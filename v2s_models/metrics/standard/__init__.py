"""The field's standard audio metrics (FD on PANNs / VGGish / PaSST, KL on PANNs / PaSST, IS on PANNs), computed
as av-benchmark computes them, from checkpoints on local disk only.

`standard_metrics(real, generated, ...)` returns the figures of every network whose weights are found
(`weights.find_weights`), each an `Interval`; `{}` when none is configured. `weights_status(settings)` tells
per network whether the weights are official (comparable to published tables), a stand-in or missing.
Networks: `panns.py` (Cnn14, 16 kHz), `vggish.py`, `passt.py` (PaSST-S, 32 kHz, 10 s); formulas in `figures.py`; clip handling in `frontends.py`.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from v2s_models.metrics.standard import figures, panns, passt, vggish
from v2s_models.metrics.standard.frontends import pad_or_cut, prepare_clip
from v2s_models.metrics.standard.weights import (
    MISSING,
    NETWORKS,
    OFFICIAL,
    STANDIN,
    WeightsInfo,
    find_weights,
    load_strict,
    read_state_dict,
    weights_status,
)
from v2s_models.metrics.stats import Interval, bootstrap_mean, bootstrap_statistic

__all__ = [
    "DEFAULTS",
    "METRIC_NETWORK",
    "MISSING",
    "NETWORKS",
    "OFFICIAL",
    "STANDIN",
    "WeightsInfo",
    "embed_clips",
    "metric_labels",
    "standard_metrics",
    "weights_status",
]

# params.yaml `standard_metrics:` keys and their defaults (av-benchmark's audio_length is 8 s).
DEFAULTS: dict[str, object] = {
    "weights_dir": None,
    "standin_dir": None,
    "panns": None,
    "vggish": None,
    "passt": None,
    "audio_seconds": 8.0,
    "n_boot": 200,
}
METRIC_NETWORK: dict[str, str] = {
    "fd_panns": "panns",
    "kl_panns": "panns",
    "is_panns": "panns",
    "fd_vggish": "vggish",
    "fd_passt": "passt",
    "kl_passt": "passt",
}
IMPLEMENTED: tuple[str, ...] = ("panns", "vggish", "passt")


@functools.lru_cache(maxsize=4)
def _load_network(network: str, path: str, mtime: float) -> torch.nn.Module:
    """The network with the weights of `path`, built at the size its tensors have (cached per file version)."""
    state = read_state_dict(Path(path))
    if network == "panns":
        model: torch.nn.Module = panns.Cnn14(channels=panns.channels_of(state))
    elif network == "vggish":
        model = vggish.VGGish(widths=vggish.widths_of(state))
    elif network == "passt":
        net = load_strict(
            passt.PaSST(**passt.dims_of(state)), state, source=path
        )  # the checkpoint is the net's
        return passt.PaSSTWithFrontEnd(net).eval()
    else:
        raise ValueError(f"network {network!r} is not implemented in v2s (implemented: {IMPLEMENTED})")
    return load_strict(model, state, source=path)


def _panns_outputs(
    model: torch.nn.Module, clips: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], np.ndarray]:
    embeddings, logits = [], []
    with torch.inference_mode():
        for clip in clips:  # one at a time: clips may differ in length and Cnn14 pools over time
            emb, lg = model(torch.from_numpy(clip)[None])
            embeddings.append(emb[0].numpy())
            logits.append(lg[0].numpy())
    return embeddings, np.stack(logits)


def _vggish_outputs(model: torch.nn.Module, clips: Sequence[np.ndarray]) -> tuple[list[np.ndarray], None]:
    out = []
    with torch.inference_mode():
        for clip in clips:
            examples = torch.from_numpy(vggish.log_mel_examples(clip)).float()[:, None]  # (E, 1, 96, 64)
            out.append(model(examples).numpy() if len(examples) else np.zeros((0, 128), np.float32))
    return out, None


def _passt_outputs(
    model: torch.nn.Module, clips: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], np.ndarray]:
    features, logits = [], []
    with torch.inference_mode():
        for clip in clips:  # av-benchmark: the 8 s clip zero-padded to exactly 10 s at 32 kHz
            feat, lg = model(torch.from_numpy(pad_or_cut(clip, passt.PASST_SAMPLES))[None])
            features.append(feat[0].numpy())
            logits.append(lg[0].numpy())
    return features, np.stack(logits)


_RATES = {"panns": panns.PANNS_SR, "vggish": vggish.VGGISH_SR, "passt": passt.PASST_SR}
_OUTPUTS: dict[str, Callable] = {"panns": _panns_outputs, "vggish": _vggish_outputs, "passt": _passt_outputs}


# The evaluation scores several systems against the same real clips: their embeddings are kept for reuse,
# keyed by the clips' bytes and everything that changes the result (the last few sets only).
_EMBED_CACHE: OrderedDict[str, tuple[list[np.ndarray], np.ndarray | None]] = OrderedDict()
_EMBED_CACHE_SIZE = 6


def _set_key(
    network: str, waves: Sequence[np.ndarray], sample_rate: int, info: WeightsInfo, seconds: float | None
) -> str:
    digest = hashlib.sha1(
        f"{network}|{info.path}|{info.path.stat().st_mtime}|{sample_rate}|{seconds}".encode()
    )
    for wave in waves:
        arr = np.ascontiguousarray(wave)
        digest.update(f"{arr.dtype}{arr.shape}".encode())
        digest.update(arr.data)
    return digest.hexdigest()


def embed_clips(
    network: str,
    waves: Sequence[np.ndarray],
    *,
    sample_rate: int,
    info: WeightsInfo,
    seconds: float | None = 8.0,
) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Per-clip embeddings (PANNs, PaSST: (D,) each; VGGish: (examples, 128) each) and logits (N, 527) or None."""
    if info.path is None:
        raise ValueError(f"{network}: no weights ({info.note})")
    key = _set_key(network, waves, sample_rate, info, seconds)
    if key in _EMBED_CACHE:
        _EMBED_CACHE.move_to_end(key)
        return _EMBED_CACHE[key]
    model = _load_network(network, str(info.path), info.path.stat().st_mtime)
    clips = [prepare_clip(w, sample_rate, _RATES[network], seconds) for w in waves]
    result = _OUTPUTS[network](model, clips)
    _EMBED_CACHE[key] = result
    while len(_EMBED_CACHE) > _EMBED_CACHE_SIZE:
        _EMBED_CACHE.popitem(last=False)
    return result


def metric_labels(settings: Mapping | None = None) -> dict[str, str]:
    """`{metric: "official" | "stand-in, not comparable" | "missing"}` for the six standard metric keys."""
    status = weights_status(settings)
    return {metric: status[network].label() for metric, network in METRIC_NETWORK.items()}


def standard_metrics(
    real: Sequence[np.ndarray],
    generated: Sequence[np.ndarray],
    *,
    sample_rate: int,
    categories: Sequence[str],
    settings: Mapping | None = None,
    seed: int = 0,
) -> dict[str, Interval]:
    """FD / KL / IS on the standard networks whose weights are found, each with a 95 % bootstrap interval.

    `real[i]` and `generated[i]` are mono (or (channels, T)) waveforms at `sample_rate` for the same video
    (paired); `categories[i]` its category (bootstrap strata). FD and IS intervals resample the set (clip
    indices, within categories), KL's the per-clip values. Returns `{}` when no weights are configured.
    """
    if not (len(real) == len(generated) == len(categories)):
        raise ValueError(
            f"paired sets needed: {len(real)} real, {len(generated)} generated, {len(categories)} categories"
        )
    cfg = {**DEFAULTS, **dict(settings or {})}
    n_boot, seconds = int(cfg["n_boot"]), cfg["audio_seconds"]
    n, strata = len(real), list(categories)
    out: dict[str, Interval] = {}
    for network in IMPLEMENTED:
        info = find_weights(network, cfg)
        if info.kind == MISSING:
            continue
        emb_r, logits_r = embed_clips(network, real, sample_rate=sample_rate, info=info, seconds=seconds)
        emb_g, logits_g = embed_clips(network, generated, sample_rate=sample_rate, info=info, seconds=seconds)

        def fd(idx: np.ndarray, a: list = emb_r, b: list = emb_g) -> float:
            return figures.frechet_distance(figures.stack_frames(a, idx), figures.stack_frames(b, idx))

        out[f"fd_{network}"] = bootstrap_statistic(fd, n, strata=strata, n_boot=n_boot, seed=seed)
        if logits_r is not None:
            kl = figures.kl_per_clip(logits_r, logits_g)
            out[f"kl_{network}"] = bootstrap_mean(kl, strata=strata, n_boot=n_boot, seed=seed)
        if network == "panns":
            out["is_panns"] = bootstrap_statistic(
                lambda idx, lg=logits_g: figures.inception_score(lg[idx])[0],
                n,
                strata=strata,
                n_boot=n_boot,
                seed=seed,
            )
    return out
