"""Benchmark: the decode and features stages as Ray tasks (`cluster: local`) with 1 and 2 workers.

    .venv/bin/python -m tests.bench.bench_dataprep_scaling --settings demo --clips 8 --repeats 2
    .venv/bin/python -m tests.bench.bench_dataprep_scaling --settings paper --real hammer_anvil hitting_metal \
        --duration 2 --regnet-only --repeats 2     # 2-s windows: a fifth of a 10-s clip's flow and CNN frames

Clips: the first `--clips` videos of `--source` (default: the tiny SynthFoley set of tests/conftest.py, built
into /tmp/v2s-bench-tiny when missing), or `--real NAME ...` from ../shared/media/real/ (linked into one
category). Settings: `demo` is params.yaml as shipped (DIS flow, 96-px frames), `paper` the papers' (TV-L1
flow, 224-px frames). Both stages run with their demo presets (decode: regnet and zhou; features: mel,
mel_hifigan, visual, wav_q and the per-second features).

For each repeat the worker counts run one after the other, in alternating order (1, 2, then 2, 1, ...), each into
a fresh output folder on a Ray instance of exactly that many CPUs started before the clock (its start-up time
is reported apart). clips/s = clips / (decode + features seconds); worker-s/clip = workers * wall / clips,
the per-clip cost the VGGSound projection uses. `uptime` is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dataprep import decode, features
from v2s_models.params import load_params

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared" / "media" / "real"
PAPER = {"flow": "tvl1", "image_size": 224}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def tiny_source() -> Path:
    from tests.conftest import build_tiny_data

    dest = Path("/tmp/v2s-bench-tiny")
    if not (dest / "data/raw/synthfoley").is_dir():
        build_tiny_data(dest)
    return dest / "data/raw/synthfoley"


def pick_clips(args: argparse.Namespace, into: Path) -> int:
    """Links the chosen clips into `into/<category>/`; returns how many."""
    if args.real:
        (into / "real").mkdir(parents=True)
        for name in args.real:
            matches = sorted(REAL.glob(f"{name}.*"))
            if not matches:
                raise SystemExit(f"no clip {name} in {REAL}")
            (into / "real" / matches[0].name).symlink_to(matches[0])
        return len(args.real)
    source = args.source or tiny_source()
    videos = sorted(source.glob("*/*.mp4"))[: args.clips]
    for v in videos:
        (into / v.parent.name).mkdir(parents=True, exist_ok=True)
        (into / v.parent.name / v.name).symlink_to(v.resolve())
    return len(videos)


def one_run(source: Path, out: Path, params: dict[str, Any], workers: int, n: int) -> dict[str, float]:
    import ray

    p = copy.deepcopy(params)
    for stage in ("decode", "features"):
        p[stage].update(cluster="local", workers=workers)
    load_before = round(os.getloadavg()[0], 1)
    t0 = time.perf_counter()
    for attempt in range(3):  # on a saturated machine Ray's start-up can time out; a retry is cheap
        try:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
            break
        except Exception as e:  # noqa: BLE001 (Ray raises a bare Exception for a start-up time-out)
            print(f"ray.init failed ({e}); retrying", file=sys.stderr)
            ray.shutdown()
            if attempt == 2:
                raise
    t1 = time.perf_counter()
    try:
        s = decode.run(source, out / "decoded", p, progress=False)
        t2 = time.perf_counter()
        f = features.run(out / "decoded", out / "features", p, progress=False)
        t3 = time.perf_counter()
    finally:
        ray.shutdown()
    assert s["ok"] == n and f["ok"] == n, (s, f)
    wall = t3 - t1
    return {
        "workers": workers,
        "load_1min_before_after": [load_before, round(os.getloadavg()[0], 1)],
        "ray_start_s": t1 - t0,
        "decode_s": t2 - t1,
        "features_s": t3 - t2,
        "clips_per_s": n / wall,
        "worker_s_per_clip": workers * wall / n,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", choices=["demo", "paper"], default="demo")
    ap.add_argument("--source", type=Path, default=None)
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--real", nargs="*", default=None, help="real clip names instead of --source")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="write the rows here")
    ap.add_argument("--duration", type=float, default=None,
                    help="window seconds of every preset (default 10): shorter windows cost proportionally less")  # fmt: skip
    ap.add_argument("--regnet-only", action="store_true",
                    help="only REGNET's preset (decode regnet; features mel + visual, no per-second features)")  # fmt: skip
    args = ap.parse_args(argv)

    params = load_params(REPO / "params.yaml")
    if args.settings == "paper":
        params["features"].update(PAPER)
    if args.duration is not None:
        for preset in params["presets"].values():
            preset["duration"] = args.duration
    if args.regnet_only:
        params["decode"]["presets"] = ["regnet"]
        params["features"].update(presets={"regnet": ["mel", "visual"]}, per_second=False)
    rows = []
    print(f"before: {uptime()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="v2s-bench-scaling-") as tmp:
        source = Path(tmp) / "source"
        n = pick_clips(args, source)
        for r in range(args.repeats):
            order = args.workers if r % 2 == 0 else list(reversed(args.workers))
            for w in order:
                out = Path(tmp) / f"out-{r}-{w}"
                row = {
                    "settings": args.settings,
                    "clips": n,
                    "repeat": r,
                    **one_run(source, out, params, w, n),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
                shutil.rmtree(out, ignore_errors=True)
    print(f"after: {uptime()}", flush=True)
    for w in args.workers:
        mine = sorted(x["clips_per_s"] for x in rows if x["workers"] == w)
        print(
            f"{args.settings}: {w} worker(s): median {mine[len(mine) // 2]:.4f} clips/s over {len(mine)} run(s)"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
