"""Data sets over prepared features, read through the pipeline's manifest (never a directory walk).

The manifest (`data/prepared/manifest.jsonl`, written by `dataprep.splits`) lists every clip with its split and
feature folders; paths in it are relative to the project root given as `root`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from v2s_models import audio as audio_lib
from v2s_models.settings import REGNET, DataSettings, MelSettings


def read_manifest(
    manifest: str | Path,
    *,
    split: str | Sequence[str] | None = None,
    root: str | Path = ".",
    categories: Sequence[str] | None = None,
    max_clips: int | None = None,
) -> list[dict[str, Any]]:
    """Usable clips (status ok) of the given split(s), in manifest order; raises if none."""
    path = Path(root) / manifest if not Path(manifest).is_absolute() else Path(manifest)
    if not path.is_file():
        raise FileNotFoundError(
            f"manifest {path} not found: run `dvc repro splits` (or the whole pipeline) first"
        )
    splits = {split} if isinstance(split, str) else set(split) if split is not None else None
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("status") != "ok" or (splits is not None and r.get("split") not in splits):
                continue
            if categories is not None and r["category"] not in categories:
                continue
            rows.append(r)
    if max_clips is not None:
        rows = rows[:max_clips]
    if not rows:
        raise ValueError(
            f"manifest {path} has no usable clips for split {split!r}"
            + (f" and categories {list(categories)}" if categories else "")
        )
    return rows


def feature_dir(row: dict[str, Any], preset: str, root: str | Path) -> Path:
    try:
        rel = row["features"][preset]
    except KeyError:
        raise KeyError(
            f"clip {row['clip_id']} has no {preset!r} features (have {sorted(row['features'])})"
        ) from None
    p = Path(rel)
    return p if p.is_absolute() else Path(root) / p


def decoded_dir(row: dict[str, Any], preset: str, root: str | Path) -> Path:
    p = Path(row["decoded"][preset])
    return p if p.is_absolute() else Path(root) / p


def dataset_fingerprint(rows: Sequence[dict[str, Any]], presets: Sequence[str], root: str | Path) -> str:
    """Hash of the feature data a run reads: each clip's per-preset cache key (content + parameters)."""
    h = hashlib.sha256()
    for r in sorted(rows, key=lambda r: r["clip_id"]):
        for p in presets:
            meta = feature_dir(r, p, root) / "meta.json"
            key = json.loads(meta.read_text()).get("key", "") if meta.is_file() else "missing"
            h.update(f"{r['clip_id']}\0{p}\0{key}\n".encode())
    return h.hexdigest()[:16]


class MelVisualDataset(Dataset):
    """REGNET / VarietySound items: visual (T, D) float32 and the RegNet-convention mel (n_mels, 4T) float32.

    `visual_part`: "all" (appearance + motion, 2D), "appearance" (first half) or "motion" (second half).
    """

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        root: str | Path = ".",
        preset: str = "regnet",
        visual_part: str = "all",
    ) -> None:
        self.rows, self.root, self.preset, self.visual_part = list(rows), Path(root), preset, visual_part

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.rows[i]
        d = feature_dir(r, self.preset, self.root)
        visual = _part(np.load(d / "visual.npy").astype(np.float32), self.visual_part)
        mel = np.load(d / "mel.npy").astype(np.float32)
        return {
            "visual": torch.from_numpy(visual),
            "mel": torch.from_numpy(mel),
            "clip_id": r["clip_id"],
            "category": r["category"],
        }


class WaveformDataset(Dataset):
    """SampleRNN items (Zhou convention): wav_q (N,) int64 in 0..255 and visual (T, D) float32."""

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        root: str | Path = ".",
        preset: str = "zhou",
        visual_part: str = "all",
        max_samples: int | None = None,
    ) -> None:
        self.rows, self.root, self.preset = list(rows), Path(root), preset
        self.visual_part, self.max_samples = visual_part, max_samples

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.rows[i]
        d = feature_dir(r, self.preset, self.root)
        wav_q = np.load(d / "wav_q.npy").astype(np.int64)
        if self.max_samples is not None:
            wav_q = wav_q[: self.max_samples]
        visual = _part(np.load(d / "visual.npy").astype(np.float32), self.visual_part)
        return {
            "wav_q": torch.from_numpy(wav_q),
            "visual": torch.from_numpy(visual),
            "clip_id": r["clip_id"],
            "category": r["category"],
        }


class PerSecondDataset(Dataset):
    """Correlation-filtered system items: appearance (S, Dv) and audio (S, 128) per second, float32."""

    def __init__(self, rows: Sequence[dict[str, Any]], *, root: str | Path = ".") -> None:
        self.rows, self.root = list(rows), Path(root)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        r = self.rows[i]
        d = feature_dir(r, "persecond", self.root)
        return {
            "appearance": torch.from_numpy(np.load(d / "appearance.npy").astype(np.float32)),
            "audio": torch.from_numpy(np.load(d / "audio.npy").astype(np.float32)),
            "clip_id": r["clip_id"],
            "category": r["category"],
        }


class AudioSegmentDataset(Dataset):
    """Vocoder items: a random `segment`-sample excerpt of a clip's decoded audio and its mel.

    The mel is in `mel` settings' convention (the RegNet convention by default: the one the generators output),
    (n_mels, segment / hop). Excerpts are drawn with torch's global generator (seeded by the loop).
    """

    def __init__(
        self,
        rows: Sequence[dict[str, Any]],
        *,
        root: str | Path = ".",
        preset: str = "regnet",
        settings: DataSettings | None = None,
        segment: int = 8192,
        mel: MelSettings | None = None,
        random_crop: bool = True,
    ) -> None:
        self.rows, self.root, self.preset = list(rows), Path(root), preset
        self.settings = settings or REGNET
        self.mel_settings = mel or self.settings.mel
        if segment % self.mel_settings.hop:
            raise ValueError(f"segment ({segment}) must be a multiple of the hop ({self.mel_settings.hop})")
        self.segment, self.random_crop = segment, random_crop

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        import soundfile as sf

        r = self.rows[i]
        wav, sr = sf.read(decoded_dir(r, self.preset, self.root) / "audio.wav", dtype="float32")
        if wav.shape[0] < self.segment:
            wav = np.pad(wav, (0, self.segment - wav.shape[0]))
        start = 0
        if self.random_crop and wav.shape[0] > self.segment:
            start = int(
                torch.randint(0, (wav.shape[0] - self.segment) // self.mel_settings.hop + 1, ()).item()
            )
            start *= self.mel_settings.hop
        seg = np.ascontiguousarray(wav[start : start + self.segment])
        frames = self.segment // self.mel_settings.hop
        mel = audio_lib.mel(seg, sr, self.mel_settings, num_frames=frames)
        return {"wav": torch.from_numpy(seg), "mel": torch.from_numpy(mel), "clip_id": r["clip_id"]}


def _part(visual: np.ndarray, part: str) -> np.ndarray:
    if part == "all":
        return visual
    half = visual.shape[1] // 2
    if part == "appearance":
        return visual[:, :half]
    if part == "motion":
        return visual[:, half:]
    raise ValueError(f"visual_part must be 'all', 'appearance' or 'motion', got {part!r}")


def collate_dicts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stacks tensors, lists the rest."""
    out: dict[str, Any] = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out
