"""The correlation paradigm: the correlation-filtered system's tower, trained on matched vs mismatched pairs.

per-second video (B, S, Dv) and audio (B, S, 128) features (PerSecondDataset: appearance 1280-d here, the
page's YouTube-8M RGB is 1024-d) -> one logit per (video, audio) pair: do they belong together?

One `train_step(batch)` (`v2s_models.correlation`): `make_pairs` turns B matched clips into B positives (label 1),
B negatives with another clip's audio (the batch rolled by a random offset) and B negatives with the clip's own
audio circularly shifted by `train.min_shift`..S - `train.min_shift` seconds (default 1), so the tower must
check timing as well as content; binary cross-entropy (`correlation_loss`, weighted by `losses.bce`) over the
3B pairs, one Adam step. Draws come from torch's global generator (seeded and checkpointed by the loop).

Validation (`validate`): pairs made the same way with a generator seeded by `train.val_seed` (the same pairs
every epoch); metrics over all pairs: `bce`, `acc` (threshold 0.5), `auc` (ROC AUC of matched vs all
mismatched pairs), `auc_other_clip` and `auc_time_shift` (matched vs each kind of negative alone), and
`pos_score` / `neg_score` (mean probabilities). These use both modalities by design: the tower is a data
filter, not a generator. Without a validation split the test split is used and every metric name starts with
`test_split/`.

Batches crop every clip to the batch's shortest number of seconds (all 10 s in the prepared data).
Data keys: manifest, train_split, val_split, max_clips. Loss weights: exactly {bce: w}. Options
(`cfg['train']`, all optional): min_shift (1 second), val_seed (0), grad_clip (null; a max gradient norm),
time_shift_negatives (true; false keeps only the other-clip negatives, in training and validation alike: on
short clips looped to 10 s, as in the built-in demo data (2-3 s clips), a shift by whole seconds hardly
changes the per-second features, so those pairs are close to unlearnable label noise).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from v2s_models.config import DATA_KEYS as CONFIG_DATA_KEYS
from v2s_models.config import LOSS_KEYS as CONFIG_LOSS_KEYS
from v2s_models.config import TRAIN_KEYS as CONFIG_TRAIN_KEYS
from v2s_models.correlation import CorrelationTower, correlation_loss, make_pairs
from v2s_models.data import PerSecondDataset, read_manifest
from v2s_models.training.base import Solver

log = logging.getLogger(__name__)

# The keys this paradigm reads: one list, in v2s_models.config, which validate() checks every config against.
DATA_KEYS = CONFIG_DATA_KEYS["correlation"]
TRAIN_KEYS = CONFIG_TRAIN_KEYS["correlation"]
LOSS_KEYS = CONFIG_LOSS_KEYS["correlation"]
FALLBACK_VAL_SPLIT = "test"


def collate_seconds(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacks per-second items, cropped to the shortest clip: appearance (B, S, Dv), audio (B, S, Da)."""
    seconds = min(min(it["appearance"].shape[0], it["audio"].shape[0]) for it in items)
    return {
        "appearance": torch.stack([it["appearance"][:seconds] for it in items]),
        "audio": torch.stack([it["audio"][:seconds] for it in items]),
        "clip_id": [it["clip_id"] for it in items],
        "category": [it["category"] for it in items],
    }


def roc_auc(scores: Tensor, labels: Tensor) -> float:
    """Area under the ROC curve: the probability that a random positive outscores a random negative
    (ties count one half), from average ranks (Mann-Whitney U). scores (N,), labels (N,) in {0, 1}."""
    scores, labels = scores.detach().double().flatten().cpu(), labels.detach().flatten().cpu().bool()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must match")
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"roc_auc needs both classes, got {n_pos} positives and {n_neg} negatives")
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    # 1-based ranks; tied scores share their average rank.
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    average = counts.cumsum(0).double() - (counts.double() - 1) / 2
    ranks = torch.empty_like(scores)
    ranks[order] = average[inverse]
    u = ranks[labels].sum().item() - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


class CorrelationSolver(Solver):
    """Trains the correlation tower (`model.tower`, builders.correlation_tower); see the module docstring."""

    paradigm = "correlation"

    def __init__(
        self,
        cfg: Mapping[str, Any],
        *,
        device: torch.device | str = "cpu",
        rank: int = 0,
        world_size: int = 1,
        root: Path | str = ".",
    ) -> None:
        super().__init__(cfg, device=device, rank=rank, world_size=world_size, root=root)
        if set(cfg["model"]) != {"tower"}:
            raise ValueError(
                f"model: the correlation paradigm takes exactly one component named 'tower' "
                f"(builders.correlation_tower), got {sorted(cfg['model'])}"
            )
        if set(cfg["optim"]) != {"tower"}:
            raise ValueError(f"optim: expected exactly one entry 'tower', got {sorted(cfg['optim'])}")
        if set(self.loss_weights) != set(LOSS_KEYS):
            raise ValueError(
                f"losses: the correlation paradigm takes exactly {{bce: w}}, got {cfg['losses']}"
            )
        self.modules["tower"] = self.build_module("tower")
        if not isinstance(self.modules["tower"], CorrelationTower):
            raise ValueError(
                f"model.tower: builds a {type(self.modules['tower']).__name__}, expected CorrelationTower"
            )
        self.build_optimizers()
        for key in cfg["data"]:
            if key not in DATA_KEYS:
                raise ValueError(f"data.{key}: unknown key (known: {', '.join(DATA_KEYS)})")
        opts = dict(cfg.get("train", {}))
        for key in opts:
            if key not in TRAIN_KEYS:
                raise ValueError(f"train.{key}: unknown key (known: {', '.join(TRAIN_KEYS)})")
        self.min_shift = opts.get("min_shift", 1)
        self.val_seed = opts.get("val_seed", 0)
        self.grad_clip = opts.get("grad_clip")
        self.time_shift_negatives = opts.get("time_shift_negatives", True)
        if not isinstance(self.time_shift_negatives, bool):
            raise ValueError(f"train.time_shift_negatives: true or false, got {self.time_shift_negatives!r}")
        for key, value in (("min_shift", self.min_shift), ("val_seed", self.val_seed)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or value < (1 if key == "min_shift" else 0)
            ):
                raise ValueError(
                    f"train.{key}: expected an integer >= {1 if key == 'min_shift' else 0}, got {value!r}"
                )
        if self.grad_clip is not None and (isinstance(self.grad_clip, bool) or not self.grad_clip > 0):
            raise ValueError(f"train.grad_clip: a max gradient norm > 0 or null, got {self.grad_clip!r}")
        self.val_split_used: str | None = None

    # -------------------------------------------------------------------------------------------- data
    def _rows(self, split: str) -> list[dict[str, Any]]:
        data = self.cfg["data"]
        return read_manifest(data["manifest"], split=split, root=self.root, max_clips=data.get("max_clips"))

    def datasets(self) -> tuple[Dataset, Dataset | None]:
        """(train, validation) PerSecondDatasets; validation falls back to the test split when val is empty."""
        data = self.cfg["data"]
        train = PerSecondDataset(self._rows(str(data.get("train_split", "train"))), root=self.root)
        self._check_item(train[0])
        val_split = data.get("val_split", "val")
        val: Dataset | None = None
        self.val_split_used = None
        for split in (val_split, FALLBACK_VAL_SPLIT) if val_split else ():
            try:
                rows = self._rows(str(split))
            except ValueError:
                continue
            val, self.val_split_used = PerSecondDataset(rows, root=self.root), str(split)
            if split != val_split:
                log.warning("no clips in split %r: validating on the %r split", val_split, split)
            break
        return train, val

    def _check_item(self, item: Mapping[str, Any]) -> None:
        tower = self.unwrapped("tower")
        for key, feature in (("video_dim", "appearance"), ("audio_dim", "audio")):
            have, want = item[feature].shape[-1], getattr(tower, key)
            if have != want:
                raise ValueError(
                    f"model.tower.{key} is {want} but the per-second {feature} features of clip "
                    f"{item['clip_id']} are {have}-d: set model.tower.{key}: {have}"
                )
        if item["appearance"].shape[0] > tower.max_seconds:
            raise ValueError(
                f"clip {item['clip_id']} has {item['appearance'].shape[0]} seconds, more than "
                f"model.tower.max_seconds ({tower.max_seconds})"
            )

    def collate_fn(self) -> Any:
        return collate_seconds

    # ---------------------------------------------------------------------------------------- training
    def _pairs(
        self, batch: Mapping[str, Any], generator: torch.Generator | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        video = batch["appearance"].to(self.device, non_blocking=True)
        audio = batch["audio"].to(self.device, non_blocking=True)
        assert video.shape[:2] == audio.shape[:2], f"{video.shape=} {audio.shape=}"
        v, a, labels = make_pairs(video, audio, generator=generator, min_shift=self.min_shift)
        if not self.time_shift_negatives and video.shape[0] >= 2:
            keep = 2 * video.shape[0]  # the matched and the other-clip blocks (see make_pairs)
            v, a, labels = v[:keep], a[:keep], labels[:keep]
        return v, a, labels

    def train_step(self, batch: Mapping[str, Any]) -> dict[str, float]:
        video, audio, labels = self._pairs(batch, None)
        logits = self.modules["tower"](video, audio)
        loss = correlation_loss(logits.float(), labels)
        optimizer = self.optimizers["tower"]
        optimizer.zero_grad(set_to_none=True)
        (self.loss_weights["bce"] * loss).backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.modules["tower"].parameters(), float(self.grad_clip))
        optimizer.step()
        acc = ((logits.detach() > 0).float() == labels).float().mean()
        return {"bce": loss.item(), "acc": acc.item()}

    # -------------------------------------------------------------------------------------- validation
    def validate(self, loader: DataLoader) -> dict[str, float]:
        """Accuracy and ROC AUC of matched vs mismatched pairs (see the module docstring)."""
        tower = self.unwrapped("tower")
        generator = torch.Generator().manual_seed(int(self.val_seed))
        logits_all, labels_all, kinds_all = [], [], []
        was_training = tower.training
        tower.eval()
        try:
            with torch.no_grad():
                for batch in loader:
                    video, audio, labels = self._pairs(batch, generator)
                    b, s = batch["appearance"].shape[:2]
                    # make_pairs' blocks: B matched, then B other-clip (when B >= 2), then B time-shifted
                    # (unless train.time_shift_negatives is off and the other-clip block exists).
                    shifted = s >= 2 * self.min_shift and (self.time_shift_negatives or b < 2)
                    blocks = ["pos"] + (["other"] if b >= 2 else []) + (["shift"] if shifted else [])
                    logits_all.append(tower(video, audio).float().cpu())
                    labels_all.append(labels.float().cpu())
                    kinds_all += [k for k in blocks for _ in range(b)]
        finally:
            tower.train(was_training)
        if not logits_all:
            raise ValueError("validate: the loader yielded no clips")
        logits, labels = torch.cat(logits_all), torch.cat(labels_all)
        assert len(kinds_all) == logits.numel(), f"{len(kinds_all)=} {logits.shape=}"
        probs = torch.sigmoid(logits)
        metrics = {
            "bce": correlation_loss(logits, labels).item(),
            "acc": ((probs > 0.5).float() == labels).float().mean().item(),
            "pos_score": probs[labels == 1].mean().item(),
            "neg_score": probs[labels == 0].mean().item(),
        }
        kinds = torch.tensor([{"pos": 0, "other": 1, "shift": 2}[k] for k in kinds_all])
        if (labels == 0).any():
            metrics["auc"] = roc_auc(probs, labels)
        for name, code in (("auc_other_clip", 1), ("auc_time_shift", 2)):
            keep = (kinds == 0) | (kinds == code)
            if (kinds == code).any():
                metrics[name] = roc_auc(probs[keep], labels[keep])
        if self.val_split_used is not None and self.val_split_used != self.cfg["data"].get(
            "val_split", "val"
        ):
            metrics = {f"{self.val_split_used}_split/{k}": v for k, v in metrics.items()}
        return metrics

    def inference_modules(self) -> list[str]:
        return ["tower"]
