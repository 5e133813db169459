"""Vocoder benchmark: speed of voicing mels on a CPU, and the cost of a HiFi-GAN training step.

    python tests/bench/bench_vocoders.py            # 10 s of audio, 3 repeats, training batch 16 (minutes)
    python tests/bench/bench_vocoders.py --quick    # 2 s of audio, 1 repeat, training batch 2 (sanity run)

Prints, for Griffin-Lim (both mel conventions) and HiFi-GAN V1/V2/V3 (random weights: speed does not depend on
them), the best wall time of voicing, the real-time factor RTF = compute seconds / audio seconds (lower is faster;
the goal from the issue is V2 voicing 10 s in under 1 s on 2 cores, RTF < 0.1), and the generator's FLOPs per
second of audio. V2 is also timed in the slower set-ups the vocoder avoids (weight norm kept, 1-D convolutions),
and with torch.compile when ``--compile`` is given.

Training: one HiFi-GAN step (discriminator update on MPD + MSD, then generator update with LSGAN + feature matching
x2 + mel L1 x45, AdamW) for each generator at ``--batch`` x 8192 samples, wall time per step and FLOPs per step at
batch 16 (counted with torch's FlopCounterMode on the meta device: convolutions and matmuls, forward and backward;
the FFTs of the mel loss are not counted and are negligible).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from v2s_models.vocoders.griffinlim import GriffinLimVocoder
from v2s_models.vocoders.hifigan import HifiganGenerator, hifigan_v1, hifigan_v2, hifigan_v3
from v2s_models.vocoders.hifigan_discriminators import hifigan_discriminators
from v2s_models.vocoders.hifigan_io import HifiganVocoder
from v2s_models.vocoders.hifigan_losses import (
    DEFAULT_LOSS_WEIGHTS,
    LogMelSpectrogram,
    discriminator_loss,
    generator_loss,
)

SR = 22050
HOP = 256
SEGMENT = 8192
PRESETS: dict[str, Callable[[], HifiganGenerator]] = {"V1": hifigan_v1, "V2": hifigan_v2, "V3": hifigan_v3}


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocations, oneDNN primitive caches, librosa's first call
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def generator_gflops(preset: Callable[[], HifiganGenerator], frames: int) -> float:
    with torch.device("meta"):
        g = preset().remove_weight_norm()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        g(torch.zeros(1, 80, frames, device="meta"))
    return counter.get_total_flops() / 1e9


def synthetic_mels(frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A plausible HiFi-GAN log mel and RegNet [0, 1] mel (speed does not depend on the content)."""
    rng = np.random.default_rng(0)
    log_mel = (rng.standard_normal((80, frames)) * 1.5 - 6.0).astype(np.float32)
    regnet = np.clip(rng.random((80, frames)), 0.0, 1.0).astype(np.float32)
    return log_mel, regnet


def bench_inference(*, seconds: float, repeats: int, use_compile: bool) -> None:
    frames = int(seconds * SR) // HOP
    audio_s = frames * HOP / SR
    log_mel, regnet = synthetic_mels(frames)
    print(
        f"\n== voicing {audio_s:.2f} s of audio ({frames} mel frames), {torch.get_num_threads()} threads =="
    )
    print(f"{'vocoder':52s} {'seconds':>8s} {'RTF':>7s} {'x real time':>12s} {'GFLOP/s audio':>14s}")

    def row(name: str, fn: Callable[[], object], gflop: float | None = None) -> None:
        t = best_time(fn, repeats)
        flops = f"{gflop / audio_s:14.1f}" if gflop is not None else f"{'':>14s}"
        print(f"{name:52s} {t:8.3f} {t / audio_s:7.3f} {audio_s / t:12.1f} {flops}", flush=True)

    for convention, mel in (("regnet", regnet), ("hifigan", log_mel)):
        gl = GriffinLimVocoder(convention=convention)
        row(f"Griffin-Lim ({convention} mel, {gl.n_iter} iterations)", lambda gl=gl, mel=mel: gl(mel))
    for name, preset in PRESETS.items():
        vocoder = HifiganVocoder(generator=preset())
        row(
            f"HiFi-GAN {name} (no weight norm, channels-last, inference)",
            lambda v=vocoder: v(log_mel),
            generator_gflops(preset, frames),
        )

    mel_t = torch.from_numpy(log_mel)[None]
    g = hifigan_v2().eval()

    def plain() -> None:
        with torch.no_grad():
            g(mel_t)

    row("HiFi-GAN V2, weight norm kept, 1-D convs, no_grad", plain)
    g.remove_weight_norm()

    def folded() -> None:
        with torch.inference_mode():
            g(mel_t)

    row("HiFi-GAN V2, weight norm removed, 1-D convs, inference", folded)
    if use_compile:
        fast = hifigan_v2().to_channels_last_inference()
        try:
            compiled = torch.compile(fast)

            def run_compiled() -> None:
                with torch.inference_mode():
                    compiled(mel_t)

            row("HiFi-GAN V2, channels-last + torch.compile", run_compiled)
        except Exception as exc:  # noqa: BLE001 - report any compile failure and go on
            print(f"torch.compile failed here: {type(exc).__name__}: {exc}".splitlines()[0])


def training_step(
    g: HifiganGenerator,
    mpd: torch.nn.Module,
    msd: torch.nn.Module,
    log_mel: LogMelSpectrogram,
    opt_g: torch.optim.Optimizer | None,
    opt_d: torch.optim.Optimizer | None,
    mel: torch.Tensor,
    wav: torch.Tensor,
) -> None:
    """One HiFi-GAN step: D update on (real, G(mel).detach()), then G update. wav (B, 1, N), mel (B, 80, N/256)."""
    fake = g(mel)
    real_mpd, real_msd = mpd(wav), msd(wav)
    fake_mpd, fake_msd = mpd(fake.detach()), msd(fake.detach())
    loss_d = discriminator_loss(real_mpd[0], fake_mpd[0]) + discriminator_loss(real_msd[0], fake_msd[0])
    if opt_d is not None:
        opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    if opt_d is not None:
        opt_d.step()
    fake_mpd, fake_msd = mpd(fake), msd(fake)
    loss_g, _ = generator_loss(
        fake_scores=fake_mpd[0] + fake_msd[0],
        real_fmaps=real_mpd[1] + real_msd[1],
        fake_fmaps=fake_mpd[1] + fake_msd[1],
        real_log_mel=log_mel(wav),
        fake_log_mel=log_mel(fake),
        weights=DEFAULT_LOSS_WEIGHTS,
    )
    if opt_g is not None:
        opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    if opt_g is not None:
        opt_g.step()


def step_tflops(preset: Callable[[], HifiganGenerator], batch: int) -> float:
    with torch.device("meta"):
        g = preset()
        mpd, msd = hifigan_discriminators()
    log_mel = LogMelSpectrogram().to("meta")
    mel = torch.zeros(batch, 80, SEGMENT // HOP, device="meta")
    wav = torch.zeros(batch, 1, SEGMENT, device="meta")
    with FlopCounterMode(display=False) as counter:
        training_step(g, mpd, msd, log_mel, None, None, mel, wav)
    return counter.get_total_flops() / 1e12


def time_training(preset: Callable[[], HifiganGenerator], *, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    g = preset()
    mpd, msd = hifigan_discriminators()
    log_mel = LogMelSpectrogram()
    opt_g = torch.optim.AdamW(g.parameters(), lr=2e-4, betas=(0.8, 0.99))
    opt_d = torch.optim.AdamW([*mpd.parameters(), *msd.parameters()], lr=2e-4, betas=(0.8, 0.99))
    wav = (torch.randn(batch, 1, SEGMENT) * 0.1).clamp(-1, 1)
    mel = log_mel(wav).detach()  # stand-in input mel of the right shape (B, 80, 32)
    return best_time(lambda: training_step(g, mpd, msd, log_mel, opt_g, opt_d, mel, wav), steps)


def bench_training(*, batch: int, steps: int) -> None:
    threads = torch.get_num_threads()
    print(
        f"\n== training step: generator + MPD + MSD, batch {batch} x {SEGMENT} samples, {threads} threads =="
    )
    print(f"{'generator':10s} {'s/step':>8s} {'TFLOP/step @16':>15s} {'TFLOP/step @batch':>18s}")
    for name, preset in PRESETS.items():
        t = time_training(preset, batch=batch, steps=steps)
        tf16 = step_tflops(preset, 16)
        print(f"{name:10s} {t:8.2f} {tf16:15.2f} {tf16 * batch / 16:18.3f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 s of audio, 1 repeat, training batch 2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=None, help="audio to voice (default 10, quick 2)")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default 16, quick 2)")
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile on V2 (slow to compile)"
    )
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    repeats = 1 if args.quick else 3
    bench_inference(seconds=seconds, repeats=repeats, use_compile=args.compile)
    if not args.skip_training:
        bench_training(batch=args.batch or (2 if args.quick else 16), steps=1 if args.quick else 2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
