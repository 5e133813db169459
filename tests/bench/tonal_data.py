"""A copy of the demo data with more training clips of some categories (issue 13 item 1, a diagnostic).

The capacity test (`timbre_capacity.py --synthetic`) finds that the acoustic encoder needs far more than the demo's
22 training clips per category to carry within-category pitch. This script makes the data to train the GAN on
more: it copies a demo project's prepared data (`params.yaml`, `data/raw`, `data/decoded`, `data/features`) to
OUT, adds SynthFoley clips `--start` .. `--start + --clips - 1` of each `--categories` (the demo's generation seed
and size, so new clips of the same distribution; the demo has indices 0-29), lists every added clip in the
source's `splits/train.txt` (val and test stay the demo's), and runs the decode, features and splits stages on
the copy (their per-clip caches skip the copied clips). The demo project itself is only read.

    python tests/bench/tonal_data.py --root DEMO_CLONE --out COPY --clips 120
    python -m ray_jobs.train experiments/configs/varietysound/demo.yaml --root COPY ...

About 10 minutes for 240 clips on 2 cores; OUT must not exist yet.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dataprep.synthfoley.generate import MANIFEST_NAME, _write_clip  # the generator's own one-clip writer

RAW = Path("data/raw/synthfoley")
COPIED = ("params.yaml", "data/raw", "data/decoded", "data/features")
STAGES = (
    ["dataprep.decode", str(RAW), "data/decoded", "--metrics", "data/metrics/decode.json"],
    ["dataprep.features", "data/decoded", "data/features", "--metrics", "data/metrics/features.json"],
    ["dataprep.splits", str(RAW), "data/decoded", "data/features", "data/prepared"],
)


def _write(job: tuple[str, int, str, str, int]) -> tuple[str, str]:
    out, seed, size, category, index = job
    path, _ = _write_clip(Path(out), seed, size, category, index)
    return category, path.stem


def add_clips(raw: Path, categories: Sequence[str], start: int, count: int, workers: int) -> list[str]:
    """Writes the clips into the SynthFoley folder `raw`, adds them to its manifest and to splits/train.txt;
    returns their ids ("<category>/<clip>")."""
    manifest = json.loads((raw / MANIFEST_NAME).read_text())
    seed, size = int(manifest["seed"]), str(manifest["size"])
    jobs = [(str(raw), seed, size, c, i) for c in categories for i in range(start, start + count)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        written = list(pool.map(_write, jobs))
    known = {c["clip_id"] for c in manifest["clips"]}
    for category, clip in written:
        if clip not in known:
            entry = {"clip_id": clip, "category": category, "video": f"{category}/{clip}.mp4"}
            manifest["clips"].append({**entry, "meta": f"{category}/{clip}.json"})
    manifest["num_clips"] = len(manifest["clips"])
    (raw / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    ids = [f"{category}/{clip}" for category, clip in written]
    train_list = raw / "splits" / "train.txt"
    listed = train_list.read_text().splitlines()
    train_list.write_text("".join(f"{line}\n" for line in [*listed, *(i for i in ids if i not in listed)]))
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="a project after `make demo` (only read)")
    ap.add_argument("--out", type=Path, required=True, help="the copy to make (must not exist)")
    ap.add_argument("--categories", nargs="+", default=["hammer", "drum"])
    ap.add_argument("--start", type=int, default=30, help="first new clip index (the demo has 0-29)")
    ap.add_argument("--clips", type=int, default=120, help="new clips per category")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    root, out = args.root.resolve(), args.out.resolve()
    if out.exists():
        ap.error(f"--out {out} already exists; give a new folder")
    if args.clips < 1 or args.start < 0:
        ap.error(f"need --clips >= 1 and --start >= 0, got {args.clips} and {args.start}")
    missing = [p for p in (*COPIED, RAW / MANIFEST_NAME) if not (root / p).exists()]
    if missing:
        ap.error(f"--root {root} lacks {', '.join(map(str, missing))}: run `make demo` there first")
    for part in COPIED:
        src, dst = root / part, out / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst)
    ids = add_clips(out / RAW, args.categories, args.start, args.clips, args.workers)
    print(f"[tonal] {len(ids)} clips added to {out / RAW} (all in train)", flush=True)
    (out / "data/metrics").mkdir(exist_ok=True)
    for stage in STAGES:
        subprocess.run([sys.executable, "-m", *stage], cwd=out, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
