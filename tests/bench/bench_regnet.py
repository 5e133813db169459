"""Benchmark REGNET on CPU: one G+D training step and 10 s generation at the paper's size.

Prints, for the `regnet_paper` preset:
- time of one training step (forward + backward + Adam, D update then G update, as the authors' loop does),
  at batch 8 (the shipped batch) with 2 threads by default; clips/s = batch / step time;
- FLOPs per step (torch.utils.flop_counter.FlopCounterMode, plus a formula for the oneDNN LSTM kernels,
  which the counter does not know), achieved FLOP/s, and their share of a measured fp32 matmul peak;
- time to generate one 10 s clip (215 video frames -> 860 mel frames) in eval mode.

Reference: the authors' implementation ran at 0.67 clips/s on 2 threads on this machine kind.

    python tests/bench/bench_regnet.py            # full figures (a few minutes)
    python tests/bench/bench_regnet.py --quick    # one warm-up step and two timed steps
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from v2s_models.regnet import RegnetDiscriminator, RegnetGenerator
from v2s_models.regnet_losses import PAPER_LOSS_WEIGHTS, regnet_discriminator_loss, regnet_generator_loss
from v2s_models.regnet_presets import build_regnet, count_parameters

AUTHORS_CLIPS_PER_S = 0.67
VIDEO_FPS = 21.5  # RegNet convention: T video frames last T / 21.5 s


def _lstm_layer_flops(input_shape: Any, w_ih: Any, w_hh: Any, *args: Any, **kwargs: Any) -> int:
    """Forward FLOPs of one oneDNN LSTM layer (one direction): 2 * steps * batch * 4H * (I + H)."""
    gates, inp = w_ih
    steps_x_batch = 1
    for s in input_shape[:-1]:
        steps_x_batch *= s
    return 2 * steps_x_batch * gates * (inp + w_hh[1])


def _lstm_layer_backward_flops(input_shape: Any, w_ih: Any, w_hh: Any, *args: Any, **kwargs: Any) -> int:
    # Gradients of the inputs and of the weights: two matmuls of the forward's size.
    return 2 * _lstm_layer_flops(input_shape, w_ih, w_hh)


LSTM_FLOP_FORMULAS: dict[Any, Callable[..., int]] = {
    torch.ops.aten.mkldnn_rnn_layer: _lstm_layer_flops,
    torch.ops.aten.mkldnn_rnn_layer_backward: _lstm_layer_backward_flops,
}


def measure_matmul_peak(size: int, repeats: int) -> tuple[float, float]:
    """fp32 GEMM throughput (FLOP/s), best of `repeats`: by wall time, and by CPU time / threads."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    c = torch.empty(size, size)
    torch.mm(a, b, out=c)  # warm-up (allocations, MKL dispatch)
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        torch.mm(a, b, out=c)
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, (time.process_time() - c0) / torch.get_num_threads())
    return 2 * size**3 / best_wall, 2 * size**3 / best_cpu


def make_training_step(
    generator: RegnetGenerator,
    discriminator: RegnetDiscriminator,
    visual: torch.Tensor,
    real_mel: torch.Tensor,
    *,
    plain: bool = False,
) -> Callable[[], dict[str, float]]:
    """One step of the authors' loop: G forward once; D update on (real, detached fake); G update.

    Default: fused Adam and the discriminator's visual branch shared by the real and the fake mel
    (`forward_many`). `plain=True`: the authors' form (for-loop Adam, two separate D calls), for comparison.
    """
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=not plain)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=not plain)

    def step() -> dict[str, float]:
        fake = generator(visual, real_mel)
        discriminator.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        if plain:
            d_real = discriminator(visual, real_mel)
            d_fake = discriminator(visual, fake.mel_postnet.detach())
        else:
            d_real, d_fake = discriminator.forward_many(visual, [real_mel, fake.mel_postnet.detach()])
        loss_d = regnet_discriminator_loss(d_real, d_fake)
        loss_d.backward()
        opt_d.step()

        discriminator.requires_grad_(False)  # G's step needs gradients through D, not for D
        opt_g.zero_grad(set_to_none=True)
        losses = regnet_generator_loss(
            discriminator(visual, fake.mel_postnet), fake, real_mel, weights=PAPER_LOSS_WEIGHTS
        )
        losses["total"].backward()
        opt_g.step()
        return {"d": loss_d.item(), "g": losses["total"].item()}

    return step


def timed(fn: Callable[[], Any], warmup: int, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="one warm-up and two timed steps; smaller GEMM test"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (full run)")
    parser.add_argument("--preset", default="regnet_paper")
    parser.add_argument(
        "--plain", action="store_true", help="the authors' step: for-loop Adam, separate D calls"
    )
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    warmup, steps = (1, 2) if args.quick else (2, args.steps)
    load_before = os.getloadavg()[0]

    peak, peak_cpu = measure_matmul_peak(2048 if args.quick else 4096, 3 if args.quick else 10)

    generator, discriminator = build_regnet(args.preset)
    generator.train()
    discriminator.train()
    T, B = generator.num_frames, args.batch
    visual = torch.randn(B, T, generator.visual_dim)
    real_mel = torch.rand(B, generator.n_mels, generator.mel_frames)
    step = make_training_step(generator, discriminator, visual, real_mel, plain=args.plain)

    with FlopCounterMode(display=False, custom_mapping=LSTM_FLOP_FORMULAS) as counter:
        step()  # also the first warm-up step
    flops = counter.get_total_flops()
    step_wall, step_cpu = timed(step, warmup - 1, steps)
    step_s, step_cpu_s = statistics.median(step_wall), statistics.median(step_cpu)

    visual_one = torch.randn(1, T, generator.visual_dim)
    gen_wall, _ = timed(lambda: generator.generate(visual_one), 1, 2 if args.quick else 5)
    gen_s = statistics.median(gen_wall)
    load_after = os.getloadavg()[0]

    # On a shared machine the wall time includes waiting for a core. CPU time / threads estimates the step
    # with the cores to itself; with more busy threads than cores it overestimates (OpenMP spin-waits count
    # as CPU time), so on a loaded machine also run --threads 1, whose CPU time is the clean figure.
    own_s = step_cpu_s / args.threads
    print(
        f"preset {args.preset}: G {count_parameters(generator):,} params, D {count_parameters(discriminator):,}"
    )
    print(
        f"threads {torch.get_num_threads()}, batch {B}, video {T} frames -> mel {generator.mel_frames} frames"
    )
    print(
        f"step: {'plain (authors: for-loop Adam, 2 D calls)' if args.plain else 'fused Adam, shared D visual branch'}"
    )
    print(
        f"load average (1 min):    {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores"
    )
    print(
        f"fp32 matmul peak:        {peak / 1e9:8.1f} GFLOP/s wall, {peak_cpu / 1e9:.1f} by CPU time "
        f"({args.threads} threads)"
    )
    print(
        f"G+D step time (median):  {step_s:8.2f} s wall   (all: {', '.join(f'{t:.2f}' for t in step_wall)})"
    )
    print(
        f"G+D step CPU time:       {step_cpu_s:8.2f} s      -> {own_s:.2f} s with {args.threads} free cores"
    )
    print(f"FLOPs per step:          {flops / 1e12:8.3f} TFLOP")
    print(
        f"achieved:                {flops / step_s / 1e9:8.1f} GFLOP/s wall = {100 * flops / step_s / peak:.0f} % of peak"
    )
    print(
        f"                         {flops / own_s / 1e9:8.1f} GFLOP/s on free cores (CPU time / threads)"
        f" = {100 * flops / own_s / peak_cpu:.0f} % of the CPU-time peak"
    )
    print(
        f"training throughput:     {B / step_s:8.2f} clips/s wall, {B / own_s:.2f} on free cores "
        f"(authors' code here: {AUTHORS_CLIPS_PER_S} clips/s)"
    )
    clip_s = T / VIDEO_FPS
    print(f"generate 1 clip ({clip_s:.0f} s): {gen_s:8.3f} s  ({clip_s / gen_s:.1f}x real time, mel only)")


if __name__ == "__main__":
    main()
