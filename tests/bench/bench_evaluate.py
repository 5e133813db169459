"""Benchmark `v2s evaluate`: the evaluation of one model on 32 clips, before and after intervals (issue 14).

The old code is a `git worktree` (`--old-tree`, default /tmp/v2s-eval-before, added if missing) of the commit
before the evaluation got intervals (`--old`, default 7910cb6, the parent of 662edad); the new is this checkout
(or `--new-tree`, a copy of it). Each runs in its own process (`PYTHONPATH` = its tree), on the same prepared data
(`--data`, read only), with the same untrained model (built from `--config` by each tree's own code: the cost
does not depend on the weights) and `--threads` torch threads; the runs alternate old / new `--repeats`
times. Printed: wall seconds per run (load, generate, score as the evaluation reports them) with `uptime` (the
machine may be shared), how many per-clip progress lines the run printed, and the ratio of the medians new / old
(the goal: <= 1.5). Each run's stderr is kept in --logs.

    python tests/bench/bench_evaluate.py --data /work/demo_base            # 32 test clips of the demo data
    python tests/bench/bench_evaluate.py --data /work/demo_base --repeats 1 --clips 8

Note: the old code's `max_clips` took the manifest's first clips, the new takes a category-stratified sample;
with --clips equal to the split's size (32 on the demo data) both evaluate the same clips.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Run inside each tree's process: build the untrained package with that tree's code, evaluate, print timings.
RUNNER = r"""
import json, sys, time
from pathlib import Path
import torch
torch.set_num_threads(int(sys.argv[4]))
from v2s_models.config import instantiate, load_config
from v2s_models.package import save_package
from v2s_models.settings import get_preset
import v2s_models.evaluation as ev
cfg = load_config(sys.argv[1])
torch.manual_seed(0)
modules = {name: instantiate(spec) for name, spec in cfg["model"].items()}
tmp = Path(sys.argv[3])
save_package(tmp / "package", paradigm=cfg["paradigm"], config=cfg, data_settings=get_preset("regnet"),
             features={"visual_part": cfg["data"].get("visual_part", "all")}, modules=modules)
t0 = time.perf_counter()
result = ev.evaluate(tmp / "package", root=sys.argv[2], out=tmp / "eval", max_clips=int(sys.argv[5]), samples=0)
wall = time.perf_counter() - t0
print(json.dumps({"module": ev.__file__, "wall_s": wall, **result.seconds}))
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_tree(tree: Path, args: argparse.Namespace, log: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
        cmd = [sys.executable, "-c", RUNNER, str(tree / args.config), str(args.data), tmp, str(args.threads)]
        cmd.append(str(args.clips))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{tree}: the evaluation failed:\n{proc.stderr[-3000:]}")
        log.write_text(proc.stderr)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["process_s"] = time.perf_counter() - t0
        out["progress_lines"] = sum(" clips (" in line for line in proc.stderr.splitlines())
        return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="project folder with data/prepared (read only)")
    p.add_argument("--old", default="7910cb6", help="commit of the old evaluation")
    p.add_argument("--old-tree", type=Path, default=Path("/tmp/v2s-eval-before"), help="its git worktree")
    p.add_argument("--new-tree", type=Path, default=REPO, help="the new code (default: this checkout)")
    p.add_argument("--logs", type=Path, default=Path("/tmp/v2s-bench-evaluate"), help="each run's stderr")
    p.add_argument("--config", default="experiments/configs/regnet/demo.yaml")
    p.add_argument("--clips", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    args.data = args.data.resolve()
    old_tree = args.old_tree
    if not (old_tree / "v2s_models").is_dir():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(old_tree), args.old], check=True
        )
    head = subprocess.run(
        ["git", "-C", str(old_tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    print(f"old tree {old_tree} at {head.stdout.strip()}; new tree {args.new_tree}", flush=True)
    args.logs.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict]] = {"old": [], "new": []}
    for i in range(args.repeats):
        for label, tree in (("old", old_tree), ("new", args.new_tree.resolve())):
            before = uptime()
            r = run_tree(tree, args, args.logs / f"{label}_{i + 1}.log")
            runs[label].append(r)
            print(
                f"{label} #{i + 1}: evaluate {r['wall_s']:.1f} s (load {r['load_s']:.1f}, generate "
                f"{r['generate_s']:.1f}, score {r['score_s']:.1f}, write {r.get('write_s', 0):.1f}), "
                f"{r['progress_lines']} progress lines [{r['module']}]\n  uptime before: {before}\n"
                f"  uptime after:  {uptime()}",
                flush=True,
            )
    med = {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()}
    print(
        f"median evaluate wall: old {med['old']:.1f} s, new {med['new']:.1f} s, "
        f"ratio new/old {med['new'] / med['old']:.2f} ({args.clips} clips, {args.threads} threads)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
