"""Can VarietySound's acoustic encoder carry within-category pitch at all? (issue 13 item 1, a diagnostic)

The swap test finds that the trained demo model's output pitch does not follow the reference, and a ridge probe
finds no pitch in its timbre vector. This script asks the question without the GAN: it trains the acoustic
encoder alone (the demo config's sizes by default, random resampling on, as in training) with a linear head
to regress each clip's ground-truth log pitch, z-scored within its category (so knowing the category is worth
nothing: only the within-category timbre that the swap test measures counts). It trains on the train split
and reports, after every epoch, the Spearman correlation between prediction and truth on the val + test clips:
within hammer, within drum (8 clips each on the demo data, so noisy), and over all of them ("all": every
category's z-scores together, the steadier figure). Per seed, then the mean and spread over seeds of the last
epoch.

If this supervised encoder cannot learn pitch, the GAN's mel loss cannot teach it either; if it can, the
missing transfer is the training signal's fault. Variants switch off parts of the paper's design: the
InstanceNorm of each SGAU's input gate (`--no-instance-norm`), random resampling (`--no-resample`), or the
timbre pooling (`--pooling max|mean`; the paper's is `last`).

The demo data has about 22 training clips per category, few for a within-category regression. `--synthetic N`
adds N training clips per category of `--synthetic-categories` (hammer and drum by default), rendered audio-only
by SynthFoley from another generation seed (`--synthetic-seed`, default 1000; the demo's is 0) and turned into
mels the way the pipeline does (channels averaged, resampled to the preset's rate, looped to its length, 16-bit
rounded; no video, no AAC coding). The held-out clips stay the demo's val + test clips, so the figures compare.
This asks whether the encoder fails for want of data or of capacity.

    python tests/bench/timbre_capacity.py --root DEMO_CLONE --seeds 0 1 2
    python tests/bench/timbre_capacity.py --root DEMO_CLONE --seeds 0 1 2 --pooling max
    python tests/bench/timbre_capacity.py --root DEMO_CLONE --seeds 0 1 2 --synthetic 200

Reads the SynthFoley ground truth (`<root>/<ground_truth>` JSON, key `timbre.pitch_hz`) and the regnet-preset
mels of `<root>/data/prepared/manifest.jsonl`; writes nothing. One thread, a few seconds an epoch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from v2s_models import audio as audio_lib
from v2s_models.data import feature_dir, read_manifest
from v2s_models.media.lengths import fit_length
from v2s_models.settings import get_preset
from v2s_models.varietysound_encoders import AcousticEncoder

REPORT_CATEGORIES = ("hammer", "drum")


def truth_clips(
    root: Path,
    categories: Sequence[str] | None = None,
    manifest: str = "data/prepared/manifest.jsonl",
) -> list[dict[str, Any]]:
    """Every clip with SynthFoley ground truth (of `categories`, or all): category, split, mel (n_mels, L) and
    `gt`, its ground-truth record."""
    clips = []
    for row in read_manifest(manifest, root=root):
        truth_file = row.get("ground_truth")
        if not truth_file or (categories is not None and row["category"] not in categories):
            continue
        clips.append(
            {
                "category": row["category"],
                "split": row["split"],
                "mel": np.load(feature_dir(row, "regnet", root) / "mel.npy").astype(np.float32),
                "gt": json.loads((root / truth_file).read_text()),
            }
        )
    return clips


def load_clips(root: Path, manifest: str = "data/prepared/manifest.jsonl") -> list[dict[str, Any]]:
    """Every clip with a ground-truth pitch (`truth_clips`), with `log_pitch` and `z`, its log pitch z-scored
    within its category."""
    clips = []
    for clip in truth_clips(root, manifest=manifest):
        timbre = clip["gt"].get("timbre") or {}
        if "pitch_hz" in timbre:
            clips.append(clip | {"log_pitch": float(np.log(timbre["pitch_hz"]))})
    if not clips:
        raise SystemExit(
            f"{root}: no clip with a ground-truth pitch (SynthFoley data with timbre labels needed)"
        )
    return within_category_z(clips)


def within_category_z(clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adds `z`: log pitch minus its category's mean, over its category's standard deviation (all splits)."""
    for category in {c["category"] for c in clips}:
        values = np.array([c["log_pitch"] for c in clips if c["category"] == category])
        std = values.std() or 1.0
        for c in clips:
            if c["category"] == category:
                c["z"] = (c["log_pitch"] - values.mean()) / std
    return clips


def synthetic_clips(
    categories: Sequence[str], per_category: int, seed: int, reference: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`per_category` extra training clips of each category, SynthFoley audio of generation seed `seed` as
    regnet-preset mels; `z` uses the mean and spread of the category's log pitch in `reference` (the demo
    clips), so both sets share one scale."""
    import librosa

    from dataprep.decode import pcm16
    from dataprep.synthfoley.plan import plan_clip
    from dataprep.synthfoley.sound import synthesize_audio

    settings = get_preset("regnet")
    out = []
    t0 = time.perf_counter()
    for category in categories:
        values = np.array([c["log_pitch"] for c in reference if c["category"] == category])
        if len(values) == 0:
            raise SystemExit(
                f"--synthetic-categories: no demo clip of category {category!r} to scale against"
            )
        mean, std = values.mean(), values.std() or 1.0
        for index in range(per_category):
            plan = plan_clip(seed=seed, category=category, index=index, size="demo")
            wav = synthesize_audio(plan).astype(np.float64).mean(axis=0)
            wav = librosa.resample(wav, orig_sr=plan.sample_rate, target_sr=settings.sample_rate)
            wav = pcm16(fit_length(wav, settings.num_samples, mode="loop"))
            mel = audio_lib.mel(wav, settings.sample_rate, settings.mel, settings.num_mel_frames)
            log_pitch = float(np.log(plan.timbre.pitch_hz))
            out.append(
                {
                    "category": category,
                    "split": "train",
                    "mel": mel.astype(np.float32),
                    "log_pitch": log_pitch,
                    "z": (log_pitch - mean) / std,
                }
            )
    print(
        f"[capacity] rendered {len(out)} synthetic training clips (seed {seed}) "
        f"in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    return out


def spectral_peak_baseline(clips: list[dict[str, Any]]) -> dict[str, float]:
    """Held-out Spearman of a feature with nothing learnt: the mel bin where the mean of a clip's loudest 10 %
    of frames peaks. It says how readable within-category pitch is in the mel itself."""
    held = [c for c in clips if c["split"] != "train"]
    peak = []
    for c in held:
        energy = c["mel"].mean(axis=0)
        loud = energy >= np.quantile(energy, 0.9)
        peak.append(float(np.argmax(c["mel"][:, loud].mean(axis=1))))
    result = {}
    for category in REPORT_CATEGORIES:
        pairs = [(p, c["z"]) for p, c in zip(peak, held, strict=True) if c["category"] == category]
        result[category] = spearman([p for p, _ in pairs], [z for _, z in pairs])
    return result


# The demo config's acoustic encoder (experiments/configs/varietysound/demo.yaml); the paper's sizes are 5, 512, 2, 256.
DEMO_ENCODER = {"units": 2, "channels": 64, "lstm_layers": 1, "lstm_hidden": 32}


def demo_encoder(pooling: str = "last", **overrides: Any) -> AcousticEncoder:
    """An untrained acoustic encoder of the demo config's sizes (`DEMO_ENCODER`, then `overrides`)."""
    return AcousticEncoder(n_mels=80, pooling=pooling, **(DEMO_ENCODER | overrides))


def build_encoder(args: argparse.Namespace) -> AcousticEncoder:
    encoder = demo_encoder(
        args.pooling,
        units=args.units,
        channels=args.channels,
        lstm_layers=args.lstm_layers,
        lstm_hidden=args.lstm_hidden,
        resample=not args.no_resample,
    )
    if args.no_instance_norm:
        for unit in encoder.units:
            assert isinstance(unit.input_gate[-1], nn.InstanceNorm1d), unit.input_gate
            unit.input_gate[-1] = nn.Identity()
    return encoder


def spearman(pred: Sequence[float], truth: Sequence[float]) -> float:
    if len(pred) < 3:
        return float("nan")
    return float(stats.spearmanr(pred, truth).statistic)


def run_seed(clips: list[dict[str, Any]], args: argparse.Namespace, seed: int) -> dict[str, float]:
    train = [c for c in clips if c["split"] == "train"]
    held = [c for c in clips if c["split"] != "train"]
    torch.manual_seed(seed)
    encoder = build_encoder(args)
    head = nn.Linear(encoder.out_dim, 1)
    opt = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=args.lr)
    x_train = torch.from_numpy(np.stack([c["mel"] for c in train]))
    y_train = torch.tensor([c["z"] for c in train], dtype=torch.float32)
    x_held = torch.from_numpy(np.stack([c["mel"] for c in held]))
    t0 = time.perf_counter()
    result: dict[str, float] = {}
    for epoch in range(1, args.epochs + 1):
        encoder.train()
        order = torch.randperm(len(train))
        for i in range(0, len(train), args.batch_size):
            idx = order[i : i + args.batch_size]
            loss = ((head(encoder.timbre(x_train[idx]))[:, 0] - y_train[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        encoder.eval()
        with torch.no_grad():
            pred = head(encoder.timbre(x_held, generator=torch.Generator().manual_seed(0)))[:, 0].tolist()
            fit = head(encoder.timbre(x_train, generator=torch.Generator().manual_seed(0)))[:, 0].tolist()
        result = {"all": spearman(pred, [c["z"] for c in held])}
        for category in REPORT_CATEGORIES:
            pairs = [(p, c["z"]) for p, c in zip(pred, held, strict=True) if c["category"] == category]
            result[category] = spearman([p for p, _ in pairs], [z for _, z in pairs])
        figures = " ".join(f"{k} {v:+.2f}" for k, v in result.items())
        train_fit = spearman(fit, y_train.tolist())
        print(
            f"[capacity] seed {seed} epoch {epoch}/{args.epochs}: held-out spearman {figures} "
            f"(training clips {train_fit:+.2f}, last batch mse {loss.item():.3f}, "
            f"{time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="project folder with the prepared demo data")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--units", type=int, default=DEMO_ENCODER["units"], help="SGAUs (demo config 2, paper 5)")
    ap.add_argument(
        "--channels",
        type=int,
        default=DEMO_ENCODER["channels"],
        help="SGAU channels (demo config 64, paper 512)",
    )
    ap.add_argument(
        "--lstm-layers",
        type=int,
        default=DEMO_ENCODER["lstm_layers"],
        help="BiLSTM layers (demo config 1, paper Table 3: 2)",
    )
    ap.add_argument(
        "--lstm-hidden",
        type=int,
        default=DEMO_ENCODER["lstm_hidden"],
        help="BiLSTM width (demo config 32, paper 256)",
    )
    ap.add_argument("--pooling", choices=("last", "mean", "max"), default="last")
    ap.add_argument("--no-instance-norm", action="store_true", help="drop the SGAU input gate's InstanceNorm")
    ap.add_argument("--no-resample", action="store_true", help="switch random resampling off")
    ap.add_argument(
        "--synthetic",
        type=int,
        default=0,
        metavar="N",
        help="N extra training clips per category (audio only)",
    )
    ap.add_argument("--synthetic-seed", type=int, default=1000, help="their SynthFoley generation seed")
    ap.add_argument("--synthetic-categories", nargs="+", default=list(REPORT_CATEGORIES))
    args = ap.parse_args(argv)
    if args.synthetic < 0:
        ap.error(f"--synthetic must be >= 0, got {args.synthetic}")
    torch.set_num_threads(1)
    clips = load_clips(args.root.resolve())
    if args.synthetic:
        clips += synthetic_clips(args.synthetic_categories, args.synthetic, args.synthetic_seed, clips)
    held = sum(c["split"] != "train" for c in clips)
    print(
        f"[capacity] {len(clips) - held} training clips, {held} held out; variant: {vars(args)}", flush=True
    )
    baseline = " ".join(f"{k} {v:+.2f}" for k, v in spectral_peak_baseline(clips).items())
    print(f"[capacity] spectral-peak baseline (nothing learnt), held-out spearman: {baseline}", flush=True)
    results = [run_seed(clips, args, seed) for seed in args.seeds]
    print("[capacity] last epoch, over seeds: mean ± std [min, max]")
    for key in ("all", *REPORT_CATEGORIES):
        values = [r[key] for r in results]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(
            f"  {key:7s} {statistics.mean(values):+.2f} ± {spread:.2f} [{min(values):+.2f}, {max(values):+.2f}]"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
