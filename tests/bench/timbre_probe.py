"""What does a VarietySound model's timbre vector encode? (issue 13 item 1, a diagnostic)

For every clip of the given categories (SynthFoley ground truth needed) it computes the acoustic encoder's timbre
vector from the clip's own regnet-preset mel (evaluation mode, resampling drawn from a fixed seed), then fits a
leave-one-out ridge regression from the vector to each ground-truth quantity, within one category at a time, and
prints the Spearman correlation between prediction and truth: log pitch, log decay and brightness (the timbre the
swap test asks for), the background's SNR and the events per second (what the clip's own reference also gives
away in training). `--random-init POOLING` adds an untrained encoder of the demo size as a reference row.

    python tests/bench/timbre_probe.py --root DATA --model ST/RUN/package [--model ...] [--random-init max last]

Writes nothing; one thread, seconds per model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats

from v2s_models.varietysound_encoders import AcousticEncoder

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: the repository first
from tests.bench.timbre_capacity import demo_encoder, truth_clips  # noqa: E402

TARGETS: dict[str, Callable[[dict[str, Any]], float]] = {
    "log pitch": lambda gt: float(np.log(gt["timbre"]["pitch_hz"])),
    "log decay": lambda gt: float(np.log(gt["timbre"]["decay_s"])),
    "brightness": lambda gt: float(gt["timbre"]["brightness"]),
    "snr_db": lambda gt: float(gt["background"]["snr_db"]),
    "events/s": lambda gt: len(gt["events"]) / float(gt["duration"]),
}


def load(root: Path, categories: Sequence[str]) -> list[dict[str, Any]]:
    clips = truth_clips(root, categories)
    if not clips:
        raise SystemExit(f"{root}: no clip of {', '.join(categories)} with SynthFoley ground truth")
    return clips


def loo_ridge_spearman(x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    """Spearman between y and its leave-one-out ridge predictions from x (features standardised)."""
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    pred = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        a, b = x[keep], y[keep] - y[keep].mean()
        w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ b)
        pred.append(float(x[i] @ w + y[keep].mean()))
    if np.ptp(pred) == 0:  # a vector that does not vary: nothing to rank
        return float("nan")
    return float(stats.spearmanr(pred, y).statistic)


def timbre_vectors(encoder: AcousticEncoder, clips: list[dict[str, Any]]) -> np.ndarray:
    encoder.eval()
    with torch.no_grad():
        return np.stack(
            [
                encoder.timbre(torch.from_numpy(c["mel"])[None], generator=torch.Generator().manual_seed(0))[
                    0
                ]
                .float()
                .numpy()
                for c in clips
            ]
        )


def probe_row(
    vectors: np.ndarray, clips: list[dict[str, Any]], categories: Sequence[str], alpha: float
) -> str:
    cells = []
    for target in TARGETS.values():
        values = []
        for category in categories:
            idx = [i for i, c in enumerate(clips) if c["category"] == category]
            y = np.array([target(clips[i]["gt"]) for i in idx])
            values.append(loo_ridge_spearman(vectors[idx], y, alpha) if np.ptp(y) > 0 else float("nan"))
        cells.append(" / ".join(f"{v:+.2f}" for v in values))
    return " | ".join(cells)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, required=True, help="project folder with the prepared data")
    ap.add_argument("--model", type=Path, action="append", default=[], help="a VarietySound package")
    ap.add_argument("--random-init", nargs="*", default=[], choices=("last", "mean", "max"))
    ap.add_argument("--categories", nargs="+", default=["hammer", "drum"])
    ap.add_argument("--alpha", type=float, default=10.0, help="ridge penalty")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    clips = load(args.root.resolve(), args.categories)
    counts = ", ".join(f"{c} {sum(x['category'] == c for x in clips)}" for c in args.categories)
    print(
        f"[probe] clips: {counts}; leave-one-out ridge (alpha {args.alpha}) Spearman, {' / '.join(args.categories)}"
    )
    print(f"| encoder | {' | '.join(TARGETS)} |")
    print(f"|---|{'---|' * len(TARGETS)}")
    for pooling in args.random_init:
        torch.manual_seed(0)
        encoder = demo_encoder(pooling)
        print(
            f"| untrained, {pooling} pooling | {probe_row(timbre_vectors(encoder, clips), clips, args.categories, args.alpha)} |"
        )
    if args.model:
        from v2s_models.generation import load_model
        from v2s_models.interface import sound_model

        for package in args.model:
            encoder = getattr(sound_model(load_model(package)), "acoustic_encoder", None)
            if not isinstance(encoder, AcousticEncoder):
                raise SystemExit(f"--model {package}: not a VarietySound model (no acoustic encoder)")
            row = probe_row(timbre_vectors(encoder, clips), clips, args.categories, args.alpha)
            print(f"| {package} | {row} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
