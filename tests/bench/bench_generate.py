"""Benchmark `v2s generate`: real-time factor for a 10 s clip per model type, debug and paper size.

For each configuration a model package is built in memory (untrained weights: the cost does not depend on them)
and `VideoToSound.generate_file` puts sound on the clip (tennis_strokes.mp4, 10.0 s, h264 640x360, by default).
Printed per configuration: seconds per stage (features = decode + visual features, generate, vocode, mux),
the total, and the real-time factor RTF = total / clip duration (< 1: faster than real time). Setting up
(building the extractor and the vocoder) is printed separately: it is paid once per command, not per video.

- REGNET debug (random-projection features, 32 px) with Griffin-Lim; REGNET paper (EfficientNet-Lite0 at
  112 px + DIS flow: 2560-d, the pipeline's defaults) with Griffin-Lim and with the pretrained HiFi-GAN V1;
- VarietySound debug / paper with Griffin-Lim (reference: dog_barking.mp4);
- SampleRNN (Zhou Seq encoder) debug / paper: generation is sample by sample, so it is timed on a short window
  (samples/s); its RTF for the clip is extrapolated as features + clip samples / (samples/s).

    python tests/bench/bench_generate.py            # every configuration (SampleRNN on 0.1 s; minutes)
    python tests/bench/bench_generate.py --quick    # debug sizes only, SampleRNN on 0.05 s
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from v2s_models.config import instantiate
from v2s_models.package import ModelPackage
from v2s_models.settings import REGNET, ZHOU, DataSettings
from v2s_models.video_to_sound import VideoToSound

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "media" / "real"
DEBUG_FEATURES = {"extractor": "random_projection", "image_size": 32, "flow": "dis", "flow_bound": 20.0}
PAPER_FEATURES = {"extractor": "efficientnet_lite0", "image_size": 112, "flow": "dis", "flow_bound": 20.0}


@dataclass
class Config:
    label: str
    paradigm: str
    component: dict[str, Any]
    settings: DataSettings
    features: dict[str, Any]
    vocoder: str = "griffin_lim"
    reference: bool = False


def configs(quick: bool) -> list[Config]:
    regnet = {
        "_component_": "v2s_models.builders.regnet_generator",
        "n_mels": 80,
        "num_frames": 215,
        "mel_frames": 860,
    }
    vs = {"_component_": "v2s_models.builders.varietysound_generator", "n_mels": 80}
    zhou = {"_component_": "v2s_models.builders.zhou"}
    out = [
        Config(
            "REGNET debug + Griffin-Lim",
            "gan_mel",
            {**regnet, "preset": "debug", "visual_dim": 256},
            REGNET,
            DEBUG_FEATURES,
        ),
        Config(
            "VarietySound debug + Griffin-Lim",
            "gan_mel",
            {**vs, "preset": "debug", "video_dim": 256},
            REGNET,
            DEBUG_FEATURES,
            reference=True,
        ),
        Config(
            "SampleRNN debug (Seq)",
            "autoregressive",
            {**zhou, "preset": "seq_debug", "visual_dim": 256},
            ZHOU,
            DEBUG_FEATURES,
        ),
    ]
    if quick:
        return out
    return out + [
        Config("REGNET paper + Griffin-Lim", "gan_mel", {**regnet, "preset": "paper", "visual_dim": 2560}, REGNET, PAPER_FEATURES),
        Config("REGNET paper + HiFi-GAN V1 (pretrained)", "gan_mel", {**regnet, "preset": "paper", "visual_dim": 2560}, REGNET, PAPER_FEATURES, vocoder="hifigan_pretrained"),
        Config("VarietySound paper + Griffin-Lim", "gan_mel", {**vs, "preset": "paper", "video_dim": 2560}, REGNET, PAPER_FEATURES, reference=True),
        Config("SampleRNN paper (Seq)", "autoregressive", {**zhou, "preset": "seq_paper", "visual_dim": 2560}, ZHOU, PAPER_FEATURES),
    ]  # fmt: skip


def package(cfg: Config, device: str) -> ModelPackage:
    torch.manual_seed(0)
    module = instantiate(cfg.component).to(device).eval()
    return ModelPackage(
        paradigm=cfg.paradigm,
        config={"name": cfg.label, "paradigm": cfg.paradigm, "model": {"generator": cfg.component}},
        data_settings=cfg.settings,
        features={**cfg.features, "visual_part": "all"},
        modules={"generator": module},
    )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_samplernn(v2s: VideoToSound, clip: Path, seconds: float, device: str) -> dict[str, float]:
    """Features for the clip, then sampling of `seconds` of audio from its first window: samples/s."""
    feats = v2s.video_features(clip)
    gen = v2s.generator
    sr = v2s.settings.sample_rate
    visual = torch.from_numpy(feats.visual[: v2s.window])[None].to(device)
    n = max(gen.lookback, int(round(seconds * sr)))
    g = torch.Generator(device=device).manual_seed(0)
    gen.generate(visual, num_samples=gen.lookback, generator=g)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    gen.generate(visual, num_samples=n, generator=g)
    _sync(device)
    per_s = n / (time.perf_counter() - t0)
    generate = feats.duration * sr / per_s
    return {"features": feats.seconds, "generate": generate, "samples/s": per_s, "duration": feats.duration}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="debug sizes only; SampleRNN on 0.05 s")
    ap.add_argument("--clip", type=Path, default=REAL / "tennis_strokes.mp4")
    ap.add_argument("--reference", type=Path, default=REAL / "dog_barking.mp4")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--samplernn-seconds", type=float, default=None, help="audio sampled to time SampleRNN")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    srnn_seconds = args.samplernn_seconds or (0.05 if args.quick else 0.1)
    if not args.clip.is_file():
        raise SystemExit(f"clip {args.clip} not found (../shared/media/real beside the repository)")
    print(f"clip {args.clip.name}; {args.threads} threads; device {args.device}; torch {torch.__version__}")
    header = f"{'configuration':42s} {'setup':>6s} {'feat':>6s} {'gen':>7s} {'vocode':>6s} {'mux':>5s} {'total':>7s} {'RTF':>6s}"
    print(header)
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        for cfg in configs(args.quick):
            t0 = time.perf_counter()
            v2s = VideoToSound(
                package=package(cfg, args.device),
                vocoder=cfg.vocoder,
                reference=args.reference if cfg.reference else None,
                device=args.device,
            )
            setup = time.perf_counter() - t0
            if cfg.paradigm == "autoregressive":
                t = bench_samplernn(v2s, args.clip, srnn_seconds, args.device)
                total = t["features"] + t["generate"]
                print(
                    f"{cfg.label:42s} {setup:6.2f} {t['features']:6.2f} {t['generate']:7.1f} {'-':>6s} {'-':>5s} "
                    f"{total:7.1f} {total / t['duration']:6.2f}  (generation extrapolated from "
                    f"{t['samples/s']:.0f} samples/s over {srnn_seconds} s at {cfg.settings.sample_rate} Hz)"
                )
                continue
            v2s.generate_file(args.clip, Path(tmp) / "warmup.mp4")  # first calls pay one-off costs
            _sync(args.device)
            result = v2s.generate_file(args.clip, Path(tmp) / "out.mp4")
            t = result.audio.timings
            total = sum(t.values())
            print(
                f"{cfg.label:42s} {setup:6.2f} {t['features']:6.2f} {t['generate']:7.2f} {t['vocode']:6.2f} "
                f"{t['mux']:5.2f} {total:7.2f} {total / result.audio.duration:6.2f}"
            )


if __name__ == "__main__":
    main()
