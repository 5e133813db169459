"""Benchmark: the standard metrics (FD/KL/IS on PANNs Cnn14, VGGish, PaSST) for N paired clips on 2 threads.

    .venv/bin/python tests/bench/bench_standard_metrics.py                    # 32 clips, stand-ins and full size
    .venv/bin/python tests/bench/bench_standard_metrics.py --sizes standin    # the stand-ins only (what CI runs)
    .venv/bin/python tests/bench/bench_standard_metrics.py --sizes full --networks passt   # one network

Clips: N "real" and N "generated" 10 s mono waveforms at 22050 Hz (the prepared data's rate and length), tones
plus noise; content does not change the cost. Weights: `standin` = the stage's test-sized nets
(`standin.write_standins`); `full` = the published sizes (Cnn14 80 M parameters, VGGish 72 M, PaSST-S 86 M)
with seeded random weights saved under the official file names, so the arithmetic is what the official
checkpoints cost. Each network is timed alone through `standard_metrics` (resampling, front end, network on
both sets, the figures with `n_boot` bootstrap resamples), after a warm-up on 2 clips that loads the weights.
Wall time is disturbed by other jobs on a shared machine; process CPU seconds less so.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from v2s_models.metrics.standard import panns, passt, standard_metrics, vggish
from v2s_models.metrics.standard.standin import write_standins
from v2s_models.metrics.standard.weights import OFFICIAL_FILES

SR = 22050
FULL = {"panns": panns.cnn14_16k, "vggish": vggish.vggish, "passt": passt.passt_s}


def clips(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(SR * 10) / SR
    return [
        0.2 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + 0.05 * rng.standard_normal(t.size)
        for _ in range(n)
    ]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_network(network: str, path: Path, real: list, gen: list, cats: list, n_boot: int) -> dict:
    settings = {network: str(path), "n_boot": n_boot}
    standard_metrics(
        real[:2], gen[:2], sample_rate=SR, categories=cats[:2], settings=settings
    )  # load, warm up
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = standard_metrics(real, gen, sample_rate=SR, categories=cats, settings=settings)
    return {
        "network": network,
        "wall_s": round(time.perf_counter() - wall, 1),
        "cpu_s": round(cpu_seconds() - cpu, 1),
        "figures": {k: round(v.value, 4) for k, v in out.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--sizes", nargs="+", default=["standin", "full"], choices=["standin", "full"])
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--networks", nargs="+", default=["panns", "vggish", "passt"], choices=["panns", "vggish", "passt"]
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    real, gen = clips(args.clips, 0), clips(args.clips, 1)
    cats = [f"c{i % 8}" for i in range(args.clips)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            root = Path(tmp) / size
            if size == "standin":
                paths = write_standins(root)
            else:
                root.mkdir(parents=True)
                paths = {}
                for network in args.networks:
                    build = FULL[network]
                    torch.manual_seed(0)
                    paths[network] = root / OFFICIAL_FILES[network]
                    torch.save(build().state_dict(), paths[network])
            for network in args.networks:
                row = {
                    "size": size,
                    "clips": args.clips,
                    "threads": args.threads,
                    **time_network(network, paths[network], real, gen, cats, args.n_boot),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
