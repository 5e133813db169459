"""Benchmark of SampleRNN / Zhou et al.'s Visual-to-Sound models on the CPU.

Prints:
1. a measured fp32 matmul peak (square `torch.mm`) for the thread count;
2. training cost of one truncated-BPTT chunk (forward + backward, no optimiser step) at paper size
   (`zhou_frame_paper`: dim 1024, the 4096-d Frame conditioning; the heaviest of the three): wall time, FLOPs
   counted by `torch.utils.flop_counter.FlopCounterMode`, achieved FLOP/s and its fraction of the matmul peak;
3. generation throughput (samples/s per clip and over the batch) and the real-time factor
   (wall time / audio duration; < 1 is faster than real time) for one clip and a batch of clips, at paper size
   and at debug size, plus the ratio time(2N) / time(N) (2.0 for a linear-time generator).

    python -m tests.bench.bench_samplernn --quick            # smoke run: batch 4, 256-sample chunk, short gen
    python tests/bench/bench_samplernn.py --threads 2        # full figures (batch 128, 1024-sample chunk)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from v2s_models.settings import ZHOU
from v2s_models.visual_samplernn import VisualSampleRNN, zhou_frame_debug, zhou_frame_paper


def _timed(fn: Callable[[], object], reps: int) -> float:
    """Median wall time of `reps` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_peak(n: int, reps: int) -> float:
    """Achieved FLOP/s of an n x n fp32 matmul."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    seconds = _timed(lambda: torch.mm(a, b), reps)
    return 2 * n**3 / seconds


def train_chunk(model: VisualSampleRNN, *, batch: int, chunk: int, reps: int) -> tuple[float, int]:
    """(seconds, FLOPs) of forward + backward over one (batch, 16 + chunk) chunk with 156 frames of features."""
    samples = torch.randint(0, 256, (batch, model.lookback + chunk))
    visual = torch.randn(
        batch, ZHOU.num_frames, model.frame_encoder.visual_dim if model.frame_encoder else 4096
    )
    target = samples[:, model.lookback :]

    def step() -> None:
        model.zero_grad(set_to_none=True)
        logits, _ = model(samples, visual, start_sample=0)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))
        loss.backward()

    with FlopCounterMode(display=False) as counter:  # doubles as the warm-up call
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), counter.get_total_flops()


def generation(model: VisualSampleRNN, *, batch: int, num_samples: int, reps: int) -> float:
    visual = torch.randn(
        batch, ZHOU.num_frames, model.frame_encoder.visual_dim if model.frame_encoder else 4096
    )
    g = torch.Generator().manual_seed(0)
    return _timed(lambda: model.generate(visual, num_samples=num_samples, generator=g), reps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small batch and short generation (a smoke run)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--batch", type=int, default=None, help="training batch (default 128; 4 with --quick)"
    )
    parser.add_argument(
        "--chunk", type=int, default=None, help="TBPTT chunk (default 1024; 256 with --quick)"
    )
    parser.add_argument("--gen-batch", type=int, default=16, help="clips generated together")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = args.batch or (4 if args.quick else 128)
    reps = 1 if args.quick else 3
    chunk = args.chunk or (256 if args.quick else 1024)
    paper_n = 64 if args.quick else 4096
    debug_n = 512 if args.quick else 16000
    sr = ZHOU.sample_rate

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, quick={args.quick}")
    peak = matmul_peak(1024 if args.quick else 2048, reps=3 if args.quick else 5)
    print(f"matmul peak (fp32 mm): {peak / 1e9:.1f} GFLOP/s")

    paper = zhou_frame_paper()
    params = sum(p.numel() for p in paper.parameters())
    print(f"\nzhou_frame_paper: {params / 1e6:.1f} M parameters")
    seconds, flops = train_chunk(paper, batch=batch, chunk=chunk, reps=reps)
    achieved = flops / seconds
    print(
        f"train chunk (B={batch}, L={chunk}, fwd+bwd): {seconds:.3f} s, {flops / 1e12:.3f} TFLOP, "
        f"{achieved / 1e9:.1f} GFLOP/s = {100 * achieved / peak:.0f} % of the matmul peak; "
        f"{batch * chunk / seconds:,.0f} training samples/s"
    )
    if batch != 128:
        # Not extrapolated: at small batch the GRU steps are bound by reading the weights, not by FLOPs.
        print("  (not the paper's batch 128; run without --quick for it)")

    paper.eval()
    debug = zhou_frame_debug().eval()
    print("\ngeneration (wall time; RTF = wall / audio duration, < 1 is faster than real time):")
    for name, model, n in [("paper", paper, paper_n), ("debug", debug, debug_n)]:
        for b in (1, args.gen_batch):
            t = generation(model, batch=b, num_samples=n, reps=reps)
            print(
                f"  {name:5s} B={b:<3d} N={n:<6d} {t:7.2f} s  {n / t:9,.0f} samples/s per clip  "
                f"{b * n / t:10,.0f} samples/s total  RTF {t / (n / sr):6.2f} per batch "
                f"({t / (b * n / sr):.3f} per clip-second)"
            )
    t1 = generation(debug, batch=1, num_samples=debug_n, reps=reps)
    t2 = generation(debug, batch=1, num_samples=2 * debug_n, reps=reps)
    print(f"  linearity (debug, B=1): time(2N) / time(N) = {t2 / t1:.2f}  (N={debug_n}; 2.0 is linear)")


if __name__ == "__main__":
    main()
