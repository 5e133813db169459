"""REGNET's sound on prepared clips: up-sampling ripple, noise floor and level of generated vs real mels.

    python tests/bench/bench_regnet_sound.py --data /path/to/prepared/root models/regnet_demo/package [more packages]

For each package and each clip of the split: the generator's mel for the clip's visual features (one 10 s window,
seed 0) beside the clip's real mel (RegNet convention, [0, 1]). Prints per package the median over clips of
- ripple: `v2s_models.metrics.periodicity.ripple_fraction` (share of the frame-energy curve's variance at the
  up-sampling periods 2 and 4 frames), generated and real;
- floor: the 5th percentile of the frame-energy curve (the quiet frames between events), generated and real;
- level: the mean mel value, generated and real;
- mel L1 between the generated and the real mel;
- onset_corr and mcd_db as the gan_mel solver's validation computes them (`training/gan_mel.py`: Pearson correlation
  of the onset strength pooled per video frame; mel-cepstral distortion), means over clips. onset_corr rewards a
  ripple whose amplitude follows the level, so read it beside the ripple and `v2s evaluate`'s onset F1.
`--regularizer` chooses what the audio forwarding regularizer gives the decoder (a diagnostic, issue 13 item 4):
`zero` (generation as the paper and `v2s generate` do it), `real` (the clip's own real mel, as in training) or
`train-mean` (its output averaged over the training split's clips, one vector for every clip).
Figures in docs/results.md come from this script with the command above.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
from torch import nn

from v2s_models.data import feature_dir, read_manifest
from v2s_models.generation import generate_sound
from v2s_models.interface import sound_model
from v2s_models.metrics.mcd import mel_cepstral_distortion
from v2s_models.metrics.periodicity import frame_energy, ripple_fraction
from v2s_models.package import load_package
from v2s_models.regnet import MEL_FRAMES_PER_VIDEO_FRAME, RegnetGenerator
from v2s_models.training.gan_mel import onset_strength, pearson


class ConstantRegularizer(nn.Module):
    """Stands in for the regularizer: the same vector (aux_dim,) at every frame of every clip."""

    def __init__(self, vector: torch.Tensor) -> None:
        super().__init__()
        self.vector = vector

    def forward(self, mel: torch.Tensor, num_frames: int) -> torch.Tensor:
        return self.vector.expand(mel.shape[0], num_frames, -1)


def _mel(row: dict, preset: str, root: Path) -> np.ndarray:
    return np.load(feature_dir(row, preset, root) / "mel.npy").astype(np.float32)


def train_mean_regularizer(generator: nn.Module, root: Path, preset: str) -> torch.Tensor:
    """The regularizer's output averaged over frames and over the training split's clips (eval mode)."""
    generator.eval()
    outputs = []
    with torch.no_grad():
        for row in read_manifest("data/prepared/manifest.jsonl", split="train", root=root):
            mel = torch.from_numpy(_mel(row, preset, root))[None]
            frames = mel.shape[-1] // MEL_FRAMES_PER_VIDEO_FRAME
            aux = generator.auxiliary(mel[..., : frames * MEL_FRAMES_PER_VIDEO_FRAME], frames)
            outputs.append(aux.mean(dim=(0, 1)))
    return torch.stack(outputs).mean(dim=0)


def generate_with_regularizer(generator: nn.Module, visual: torch.Tensor, real: np.ndarray) -> torch.Tensor:
    """One window's mel (noise of seed 0) with the regularizer running on the clip's real mel: the clip's own code
    ('real') or, once `measure` has swapped the regularizer for a `ConstantRegularizer`, the training mean."""
    frames = min(visual.shape[0], real.shape[1] // MEL_FRAMES_PER_VIDEO_FRAME)
    mel = torch.from_numpy(real[:, : frames * MEL_FRAMES_PER_VIDEO_FRAME])[None]
    generator.eval()
    generator.training = True  # only the top module: its regularizer runs, BatchNorm and dropout stay in eval
    try:
        noise = torch.randn(1, generator.noise_dim, generator=torch.Generator().manual_seed(0))
        return generator(visual[None, :frames], mel, noise).mel_postnet[0]
    finally:
        generator.training = False


def measure(
    package_dir: Path, root: Path, split: str, max_clips: int | None, regularizer: str = "zero"
) -> dict[str, float]:
    package = load_package(package_dir)
    generator = sound_model(package)
    preset = package.config["data"].get("preset", "regnet")
    if regularizer != "zero":
        if not isinstance(generator, RegnetGenerator) or generator.auxiliary is None:
            raise SystemExit(f"--regularizer {regularizer}: {package_dir} is not a REGNET with a regularizer")
        generator.aux_dropout = 0.0
        if regularizer == "train-mean":
            generator.auxiliary = ConstantRegularizer(train_mean_regularizer(generator, root, preset))
    rows = read_manifest("data/prepared/manifest.jsonl", split=split, root=root, max_clips=max_clips)
    window = package.data_settings.num_frames
    figures: dict[str, list[float]] = {
        k: [] for k in ("ripple_gen", "ripple_real", "floor_gen", "floor_real")
    }
    figures.update(level_gen=[], level_real=[], mel_l1=[], onset_corr=[], mcd_db=[])
    pool = package.data_settings.mel_frames_per_video_frame
    for row in rows:
        d = feature_dir(row, preset, root)
        visual = torch.from_numpy(np.load(d / "visual.npy").astype(np.float32))
        real = _mel(row, preset, root)
        with torch.no_grad():
            if regularizer == "zero":
                gen = generate_sound(generator, visual, window=window, overlap=0)
            else:
                gen = generate_with_regularizer(generator, visual, real)
            gen = gen.clamp(0, 1).numpy()
        n = min(gen.shape[1], real.shape[1])
        gen, real = gen[:, :n], real[:, :n]
        for name, mel in (("gen", gen), ("real", real)):
            figures[f"ripple_{name}"].append(ripple_fraction(mel))
            figures[f"floor_{name}"].append(float(np.percentile(frame_energy(mel), 5)))
            figures[f"level_{name}"].append(float(mel.mean()))
        figures["mel_l1"].append(float(np.abs(gen - real).mean()))
        og, orr = (onset_strength(torch.from_numpy(m)[None], pool=pool) for m in (gen, real))
        figures["onset_corr"].append(float(pearson(og, orr)[0]))
        figures["mcd_db"].append(mel_cepstral_distortion(gen, real))
    means = ("onset_corr", "mcd_db")
    medians = {k: statistics.median(v) for k, v in figures.items() if k not in means}
    return medians | {k: statistics.fmean(figures[k]) for k in means} | {"clips": len(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("packages", nargs="+", type=Path)
    parser.add_argument(
        "--data", type=Path, default=Path("."), help="root holding data/prepared and data/features"
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-clips", type=int, default=None)
    parser.add_argument(
        "--regularizer",
        choices=("zero", "real", "train-mean"),
        default="zero",
        help="what REGNET's audio forwarding regularizer gives the decoder (zero: generation as it is)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(
        "package | clips | ripple gen / real | floor gen / real | level gen / real | mel L1 | onset_corr | mcd_db"
    )
    for package in args.packages:
        f = measure(package, args.data, args.split, args.max_clips, args.regularizer)
        print(
            f"{package} | {f['clips']} | {f['ripple_gen']:.4f} / {f['ripple_real']:.4f} | "
            f"{f['floor_gen']:.3f} / {f['floor_real']:.3f} | {f['level_gen']:.3f} / {f['level_real']:.3f} | "
            f"{f['mel_l1']:.3f} | {f['onset_corr']:.3f} | {f['mcd_db']:.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
