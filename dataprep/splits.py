"""DVC stage `splits`: the manifest of every clip and deterministic per-category train/val/test splits.

    python -m dataprep.splits SOURCE DECODED FEATURES OUT [--params params.yaml]

Writes `OUT/manifest.jsonl` (one row per clip of the source: id, source path, category, duration, fps, sample
rate, audio present, split, feature locations, status and reason), `OUT/splits/{train,val,test}.txt` and
`OUT/summary.json`. A source's own split lists (`SOURCE/splits/*.txt`) win over the generated assignment.

Sizes: `splits.val_per_category` and `splits.test_per_category` (VarietySound: 32 and 32). A category too small
for them keeps at least one training clip and gives val and test about 15 % each (at least one clip each from 3
clips up; a 2-clip category gives one train and one test clip).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from dataprep import io
from dataprep.params import load_params, section
from dataprep.sources import SPLIT_NAMES, read_split_lists, scan_source


def split_sizes(n: int, val: int, test: int) -> tuple[int, int, int]:
    """(train, val, test) counts for a category of n clips."""
    if n <= 0:
        return 0, 0, 0
    if n >= val + test + 1:
        return n - val - test, val, test
    if n == 1:
        return 1, 0, 0
    if n == 2:
        return 1, 0, 1
    small = max(1, round(0.15 * n))
    v, t = min(val, small), min(test, small)
    return n - v - t, v, t


def assign_splits(
    clip_ids_by_category: dict[str, list[str]],
    *,
    val: int,
    test: int,
    seed: int,
    fixed: dict[str, str] | None = None,
) -> dict[str, str]:
    """Deterministic assignment: clips ordered by a seeded hash of their id, then cut into test, val, train."""
    fixed = fixed or {}
    out: dict[str, str] = {}
    for _category, ids in sorted(clip_ids_by_category.items()):
        free = [i for i in ids if i not in fixed]
        for i in ids:
            if i in fixed:
                out[i] = fixed[i]
        order = sorted(free, key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).hexdigest())
        n_train, n_val, n_test = split_sizes(len(order), val, test)
        for j, clip_id in enumerate(order):
            out[clip_id] = "test" if j < n_test else "val" if j < n_test + n_val else "train"
    return out


def run(source: Path, decoded: Path, features: Path, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    cfg = section(params, "splits")
    val, test, seed = (
        int(cfg.get("val_per_category", 32)),
        int(cfg.get("test_per_category", 32)),
        int(cfg.get("seed", 0)),
    )
    if val < 0 or test < 0:
        raise ValueError(f"params.yaml: splits sizes must be >= 0 (val {val}, test {test})")
    clips = scan_source(source)
    dec = {r["clip_id"]: r for r in io.read_jsonl(decoded / "manifest.jsonl")}
    feat = {r["clip_id"]: r for r in io.read_jsonl(features / "manifest.jsonl")}
    ok_by_category: dict[str, list[str]] = defaultdict(list)
    rows: list[dict[str, Any]] = []
    for c in clips:
        d, f = dec.get(c.clip_id, {}), feat.get(c.clip_id, {})
        if d.get("status") != "ok":
            status, reason = "quarantined", d.get("reason", "not_decoded")
        elif f.get("status") != "ok":
            status, reason = "quarantined", f.get("reason", "no_features")
        else:
            status, reason = "ok", None
            ok_by_category[c.category].append(c.clip_id)
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
    assignment = assign_splits(ok_by_category, val=val, test=test, seed=seed, fixed=read_split_lists(source))
    for r in rows:
        r["split"] = assignment.get(r["clip_id"]) if r["status"] == "ok" else None
    io.write_jsonl(out / "manifest.jsonl", rows)
    counts: dict[str, Any] = {s: 0 for s in SPLIT_NAMES}
    for s in SPLIT_NAMES:
        ids = sorted(r["clip_id"] for r in rows if r["split"] == s)
        counts[s] = len(ids)
        io.write_text(out / "splits" / f"{s}.txt", "".join(i + "\n" for i in ids))
    summary = {
        "clips": len(rows),
        "ok": sum(r["status"] == "ok" for r in rows),
        "quarantined": sum(r["status"] != "ok" for r in rows),
        **counts,
        "categories": sorted(ok_by_category),
    }
    io.write_json(out / "summary.json", summary)
    print(
        f"[splits] {summary['ok']} clips in {len(ok_by_category)} categories: train {counts['train']}, "
        f"val {counts['val']}, test {counts['test']}; {summary['quarantined']} quarantined",
        file=sys.stderr,
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dataprep.splits", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path)
    ap.add_argument("decoded", type=Path)
    ap.add_argument("features", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)
    try:
        run(args.source, args.decoded, args.features, args.out, load_params(args.params))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
