"""DVC stage `splits`: the manifest of every clip and per-category train/val/test splits that never move.

    python -m dataprep.splits SOURCE DECODED FEATURES OUT [--params params.yaml]
    python -m dataprep.splits --pin PREPARED SOURCE     # keep an earlier assignment (migration)

Writes `OUT/manifest.jsonl` (one row per clip of the source: id, source path, category, duration, fps, sample
rate, audio present, split, feature locations, status and reason), `OUT/splits/{train,val,test}.txt` and the
metrics file `OUT/summary.json` (counts per split and per category, and the categories below their targets).

The rule. A clip listed in the source's own `SOURCE/splits/{train,val,test}.txt` takes that split. Every other
clip takes its split from a hash of the split seed and its id alone:

    u = int(sha256(f"{seed}:{clip_id}")) / 2**256          # uniform in [0, 1)
    test if u < test_fraction, else val if u < test_fraction + val_fraction, else train

so adding, removing or reordering other clips never changes a clip's split. The price is that per-category
sizes are not exact: a category of n clips gets Binomial(n, test_fraction) test clips (mean n * f, standard
deviation sqrt(n * f * (1 - f))). The fractions come from the profile `splits.profile` (one per system: its
paper's sizes); each profile's `val_per_category` / `test_per_category` are targets, and the stage reports every
category whose count falls below its target (in `summary.json` and on stderr) instead of moving clips to meet
it: a target that moved clips would move them again when data is added. Choose a fraction so that
n * f - 3 * sqrt(n * f) reaches the target for the category sizes you expect.

Migration. Data prepared with the earlier rank-based rule (clips sorted by hash, then cut by count) keeps its
assignment with `--pin PREPARED SOURCE`: it writes PREPARED's split lists into SOURCE/splits/, which win over
the hash rule; clips added later take the hash rule. Without pinning, the first run under the new rule
re-splits (a clip's old split depended on its category's size, which the new rule does not look at).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataprep.sources import SPLIT_NAMES, read_split_lists, scan_source
from v2s_models import io
from v2s_models.params import load_params, section

_HASH_SPACE = float(2**256)


@dataclass(frozen=True)
class SplitProfile:
    """One system's split sizes: fractions drive the hash rule, per-category counts are targets to report."""

    name: str
    val_fraction: float
    test_fraction: float
    val_per_category: int
    test_per_category: int


def split_profile(cfg: dict[str, Any]) -> SplitProfile:
    """The profile `cfg["profile"]` of params.yaml's `splits` section, validated."""
    name = cfg.get("profile")
    profiles = cfg.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        raise ValueError("params.yaml: splits.profiles must be a mapping of profile name -> sizes")
    if name not in profiles:
        raise ValueError(f"params.yaml: splits.profile = {name!r}; defined profiles: {sorted(profiles)}")
    p = profiles[name]
    where = f"splits.profiles.{name}"
    if not isinstance(p, dict):
        raise ValueError(f"params.yaml: {where} must be a mapping")
    try:
        prof = SplitProfile(
            name=str(name),
            val_fraction=float(p["val_fraction"]),
            test_fraction=float(p["test_fraction"]),
            val_per_category=int(p.get("val_per_category", 0)),
            test_per_category=int(p.get("test_per_category", 0)),
        )
    except KeyError as e:
        raise ValueError(f"params.yaml: {where}.{e.args[0]} is missing") from None
    except (TypeError, ValueError) as e:
        raise ValueError(f"params.yaml: {where}: {e}") from None
    if not (
        0 <= prof.val_fraction and 0 <= prof.test_fraction and prof.val_fraction + prof.test_fraction < 1
    ):
        raise ValueError(
            f"params.yaml: {where}: val_fraction {prof.val_fraction} and test_fraction {prof.test_fraction} "
            "must be >= 0 and sum to less than 1 (some clips must train)"
        )
    if prof.val_per_category < 0 or prof.test_per_category < 0:
        raise ValueError(f"params.yaml: {where}: per-category targets must be >= 0")
    return prof


def clip_hash(clip_id: str, seed: int) -> float:
    """The clip's position in [0, 1): sha256 of "<seed>:<clip id>" read as a fraction."""
    return int(hashlib.sha256(f"{seed}:{clip_id}".encode()).hexdigest(), 16) / _HASH_SPACE


def split_of(clip_id: str, *, seed: int, val_fraction: float, test_fraction: float) -> str:
    """The hash rule: a pure function of the clip id and the seed (module docstring)."""
    u = clip_hash(clip_id, seed)
    if u < test_fraction:
        return "test"
    return "val" if u < test_fraction + val_fraction else "train"


def assign_splits(
    clip_ids: list[str],
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    fixed: dict[str, str] | None = None,
) -> dict[str, str]:
    """clip id -> split: the source's lists (`fixed`) where they name the clip, else the hash rule."""
    fixed = fixed or {}
    return {
        i: fixed[i]
        if i in fixed
        else split_of(i, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
        for i in clip_ids
    }


def category_report(
    assignment: dict[str, str], category_of: dict[str, str], profile: SplitProfile
) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Per-category split counts, and one entry per (category, split) below the profile's target."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in SPLIT_NAMES})
    for clip_id, split in assignment.items():
        counts[category_of[clip_id]][split] += 1
    below = []
    for category, c in sorted(counts.items()):
        n = sum(c.values())
        for split, target in (("val", profile.val_per_category), ("test", profile.test_per_category)):
            if c[split] < target:
                below.append(
                    {
                        "category": category,
                        "split": split,
                        "clips": c[split],
                        "target": target,
                        "category_clips": n,
                        "why": "the category has fewer clips than its targets need"
                        if n < profile.val_per_category + profile.test_per_category + 1
                        else "the hash rule drew fewer (raise the profile's fraction)",
                    }
                )
    return {k: dict(v) for k, v in sorted(counts.items())}, below


def pin_assignment(prepared: Path, source: Path) -> dict[str, int]:
    """Migration: writes PREPARED/splits/*.txt into SOURCE/splits/*.txt (merged with lists already there), so
    the clips prepared so far keep their split under the hash rule. Conflicting entries are refused."""
    existing = read_split_lists(source)
    old: dict[str, str] = {}
    for split in SPLIT_NAMES:
        f = prepared / "splits" / f"{split}.txt"
        if not f.is_file():
            raise ValueError(f"{f}: not found (expected the split lists of a prepared data set)")
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                old[line.strip()] = split
    clash = sorted(i for i in old if i in existing and existing[i] != old[i])
    if clash:
        raise ValueError(
            f"{source}/splits already lists {len(clash)} clip(s) in another split than {prepared} "
            f"(first: {clash[0]!r} in {existing[clash[0]]}, prepared {old[clash[0]]})"
        )
    merged = {**existing, **old}
    written = {}
    for split in SPLIT_NAMES:
        ids = sorted(i for i, s in merged.items() if s == split)
        io.write_text(source / "splits" / f"{split}.txt", "".join(i + "\n" for i in ids))
        written[split] = len(ids)
    return written


def run(source: Path, decoded: Path, features: Path, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Writes the manifest, the split lists and the metrics file `summary.json`; returns the summary."""
    cfg = section(params, "splits")
    profile = split_profile(cfg)
    seed = int(cfg.get("seed", 0))
    clips = scan_source(source)
    dec = {r["clip_id"]: r for r in io.read_jsonl(decoded / "manifest.jsonl")}
    feat = {r["clip_id"]: r for r in io.read_jsonl(features / "manifest.jsonl")}
    ok_ids: list[str] = []
    category_of: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for c in clips:
        d, f = dec.get(c.clip_id, {}), feat.get(c.clip_id, {})
        if d.get("status") != "ok":
            status, reason = "quarantined", d.get("reason", "not_decoded")
        elif f.get("status") != "ok":
            status, reason = "quarantined", f.get("reason", "no_features")
        else:
            status, reason = "ok", None
            ok_ids.append(c.clip_id)
            category_of[c.clip_id] = c.category
        rows.append(
            {
                "clip_id": c.clip_id,
                "source_path": str(c.path),
                "category": c.category,
                "ground_truth": str(c.ground_truth) if c.ground_truth else None,
                "duration": d.get("duration"),
                "fps": d.get("fps"),
                "sample_rate": d.get("sample_rate"),
                "channels": d.get("channels"),
                "has_audio": d.get("has_audio"),
                "audio_stream": d.get("audio_stream"),
                "decoded": {
                    p: (decoded / p / c.clip_id).as_posix() for p in section(params, "decode")["presets"]
                }
                if status == "ok"
                else {},
                "features": f.get("features", {}) if status == "ok" else {},
                "status": status,
                "reason": reason,
                "detail": d.get("detail") or f.get("detail"),
            }
        )
    fixed = read_split_lists(source)
    assignment = assign_splits(
        ok_ids,
        seed=seed,
        val_fraction=profile.val_fraction,
        test_fraction=profile.test_fraction,
        fixed=fixed,
    )
    for r in rows:
        r["split"] = assignment.get(r["clip_id"]) if r["status"] == "ok" else None
    io.write_jsonl(out / "manifest.jsonl", rows)
    counts: dict[str, Any] = {s: 0 for s in SPLIT_NAMES}
    for s in SPLIT_NAMES:
        ids = sorted(r["clip_id"] for r in rows if r["split"] == s)
        counts[s] = len(ids)
        io.write_text(out / "splits" / f"{s}.txt", "".join(i + "\n" for i in ids))
    per_category, below = category_report(assignment, category_of, profile)
    summary = {
        "clips": len(rows),
        "ok": len(ok_ids),
        "quarantined": len(rows) - len(ok_ids),
        **counts,
        "categories": sorted(per_category),
        "profile": profile.name,
        "from_source_lists": sum(i in fixed for i in ok_ids),
        "per_category": per_category,
        "below_target": below,
    }
    io.write_json(out / "summary.json", summary)
    print(
        f"[splits] {summary['ok']} clips in {len(per_category)} categories: train {counts['train']}, "
        f"val {counts['val']}, test {counts['test']} (profile {profile.name}, "
        f"{summary['from_source_lists']} from the source's lists); {summary['quarantined']} quarantined",
        file=sys.stderr,
    )
    for b in below:
        print(
            f"[splits] {b['category']}: {b['clips']} {b['split']} clips, target {b['target']} "
            f"({b['category_clips']} clips in the category: {b['why']})",
            file=sys.stderr,
        )
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dataprep.splits", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "paths", type=Path, nargs="+", help="SOURCE DECODED FEATURES OUT, or with --pin PREPARED SOURCE"
    )
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument(
        "--pin", action="store_true", help="write PREPARED's split lists into SOURCE/splits/ (migration)"
    )
    args = ap.parse_args(argv)
    try:
        if args.pin:
            if len(args.paths) != 2:
                ap.error("--pin takes PREPARED SOURCE")
            written = pin_assignment(*args.paths)
            print(f"[splits] pinned {written} into {args.paths[1] / 'splits'}", file=sys.stderr)
            return 0
        if len(args.paths) != 4:
            ap.error("expected SOURCE DECODED FEATURES OUT")
        run(*args.paths, load_params(args.params))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
