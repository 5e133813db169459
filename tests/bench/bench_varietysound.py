"""Benchmark: VarietySound at paper size on CPU (prints figures; no assertions).

Measures, on `--threads` CPU threads (default 2):
- parameter counts of the generator (per encoder / decoder), the TDAD and the multi-window mel discriminator;
- one full GAN training step (D step on both discriminators, then G step; AdamW as in the paper) at `--batch`
  (paper: 48), its FLOPs from torch.utils.flop_counter.FlopCounterMode plus the LSTMs counted analytically
  (FlopCounterMode does not see aten::lstm), and the achieved FLOP/s against a measured float32 matmul peak;
- generation time for one 10 s clip (video 215 x 2048 + a reference mel 80 x 860 -> mel 80 x 860).

    python tests/bench/bench_varietysound.py --quick      # batch 1, one timed step: a sanity run
    python tests/bench/bench_varietysound.py              # batch 48, the paper's (needs ~20+ GB of RAM)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from v2s_models.varietysound import varietysound_paper
from v2s_models.varietysound_discriminators import mel_discriminator_paper, tdad_paper, time_shift
from v2s_models.varietysound_losses import (
    PAPER_LOSS_WEIGHTS,
    generator_loss,
    mel_discriminator_loss,
    tdad_loss,
)

NUM_FRAMES = 215
VIDEO_DIM = 2048
N_MELS = 80
MEL_FRAMES = 860
MIN_SHIFT = 43  # half a second of mel frames for the TDAD's shifted negatives


def count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


class LstmFlops:
    """Analytic matmul FLOPs of every nn.LSTM forward call inside a block (FlopCounterMode misses aten::lstm).

    Per layer and direction: 2 * 4H * (I + H) FLOPs a time step and sample (input and recurrent matmuls).
    """

    def __init__(self, modules: list[nn.Module]) -> None:
        self.lstms = [m for root in modules for m in root.modules() if isinstance(m, nn.LSTM)]
        self.forward_flops = 0
        self._handles: list[Any] = []

    def _hook(self, lstm: nn.LSTM, inputs: tuple[torch.Tensor, ...], _out: Any) -> None:
        b, length = inputs[0].shape[:2]
        dirs = 2 if lstm.bidirectional else 1
        h = lstm.hidden_size
        for layer in range(lstm.num_layers):
            i = lstm.input_size if layer == 0 else h * dirs
            self.forward_flops += dirs * b * length * 2 * 4 * h * (i + h)

    def __enter__(self) -> LstmFlops:
        self._handles = [m.register_forward_hook(self._hook) for m in self.lstms]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 FLOP/s of an n x n matmul on the current thread setting."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def make_step(batch: int, seed: int = 0) -> tuple[Callable[[], dict[str, float]], list[nn.Module]]:
    torch.manual_seed(seed)
    g, d_t, d_m = varietysound_paper(), tdad_paper(), mel_discriminator_paper()
    opt_g = torch.optim.AdamW(g.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    opt_d = torch.optim.AdamW([*d_t.parameters(), *d_m.parameters()], lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    video = torch.randn(batch, NUM_FRAMES, VIDEO_DIM)
    mel = torch.rand(batch, N_MELS, MEL_FRAMES)
    draws = torch.Generator().manual_seed(seed)

    def step() -> dict[str, float]:
        fake = g(video, mel, mel, generator=draws)
        starts = d_m.sample_starts(batch, MEL_FRAMES, generator=draws)
        shifted = time_shift(mel, min_shift=MIN_SHIFT, generator=draws)
        loss_t, _ = tdad_loss(d_t(mel, video), d_t(fake.detach(), video), d_t(shifted, video))
        loss_m, _ = mel_discriminator_loss(d_m(mel, starts=starts), d_m(fake.detach(), starts=starts))
        opt_d.zero_grad(set_to_none=True)
        (loss_t + loss_m).backward()
        opt_d.step()
        loss_g, parts = generator_loss(
            fake,
            mel,
            weights=PAPER_LOSS_WEIGHTS,
            tdad_fake=d_t(fake, video),
            mel_d_fake=d_m(fake, starts=starts),
        )
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        return {"g": loss_g.item(), "d": (loss_t + loss_m).item()}

    return step, [g, d_t, d_m]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="batch 1, one warm-up and one timed step")
    parser.add_argument("--batch", type=int, default=48)
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=str, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    batch, steps = (1, 1) if args.quick else (args.batch, args.steps)
    torch.set_num_threads(args.threads)
    res: dict[str, Any] = {"threads": args.threads, "batch": batch, "torch": torch.__version__}

    peak = matmul_peak()
    res["matmul_peak_gflops"] = peak / 1e9
    print(f"threads {args.threads}, torch {torch.__version__}; float32 matmul peak {peak / 1e9:.1f} GFLOP/s")

    step, (g, d_t, d_m) = make_step(batch)
    params = {
        "generator": count(g),
        "temporal_encoder": count(g.temporal_encoder),
        "acoustic_encoder": count(g.acoustic_encoder),
        "background_encoder": count(g.background_encoder),
        "mel_decoder": count(g.decoder),
        "tdad": count(d_t),
        "mel_discriminator": count(d_m),
    }
    res["parameters"] = params
    print("parameters: " + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in params.items()))

    # FLOPs of one training step (the warm-up step, so the timed ones run without the counter's overhead).
    with LstmFlops([g, d_t, d_m]) as lstm, FlopCounterMode(display=False) as counter:
        step()
    # An LSTM backward costs about twice its forward (input and weight gradients); G's LSTMs run once in the
    # forward, and their backward once in the G step.
    lstm_step = 3 * lstm.forward_flops
    step_flops = counter.get_total_flops() + lstm_step
    res["step_flops"] = step_flops
    res["step_flops_lstm_analytic"] = lstm_step
    print(
        f"training step FLOPs at batch {batch}: {step_flops / 1e12:.3f} TFLOP "
        f"(conv/matmul/attention {counter.get_total_flops() / 1e12:.3f} counted, LSTM {lstm_step / 1e12:.3f} "
        f"analytic); per sample {step_flops / batch / 1e12:.3f} TFLOP"
    )

    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    step_s = statistics.median(times)
    res["step_s"] = step_s
    res["step_s_all"] = times
    res["achieved_gflops"] = step_flops / step_s / 1e9
    print(
        f"G+D training step, batch {batch}: {step_s:.2f} s (median of {steps}); "
        f"{step_flops / step_s / 1e9:.1f} GFLOP/s = {step_flops / step_s / peak:.0%} of the matmul peak"
    )
    if batch != 48:
        print(f"  (linear estimate at the paper's batch 48: {step_s / batch * 48:.0f} s a step)")

    # Generation: one 10 s clip, eval mode, silence to the background encoder.
    g.eval()
    video = torch.randn(1, NUM_FRAMES, VIDEO_DIM)
    reference = torch.rand(1, N_MELS, MEL_FRAMES)
    draws = torch.Generator().manual_seed(1)
    with torch.no_grad():
        with LstmFlops([g]) as lstm, FlopCounterMode(display=False) as counter:
            g(video, reference, generator=draws)
        gen_flops = counter.get_total_flops() + lstm.forward_flops
        gen_times = []
        for _ in range(1 if args.quick else 3):
            t = time.perf_counter()
            out = g(video, reference, generator=draws)
            gen_times.append(time.perf_counter() - t)
    assert out.shape == (1, N_MELS, MEL_FRAMES), f"{out.shape=}"
    gen_s = statistics.median(gen_times)
    res["generate_10s_s"] = gen_s
    res["generate_flops"] = gen_flops
    print(
        f"generation of 10 s (mel 80 x 860, vocoder excluded): {gen_s:.2f} s, {gen_flops / 1e9:.1f} GFLOP, "
        f"{10.0 / gen_s:.1f}x real time"
    )
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    res["peak_rss_gb"] = rss_gb
    print(f"peak resident memory {rss_gb:.2f} GB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
