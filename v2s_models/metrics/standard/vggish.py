"""VGGish (Hershey et al. 2017, "CNN Architectures for Large-Scale Audio Classification") as av-benchmark runs
it: torchvggish's port and checkpoint `vggish-10086976.pth`, `postprocess=False` (no PCA, no quantisation) and,
unlike torchvggish 0.2, no ReLU after the last linear layer (av-benchmark's copy drops it).

Front end (the original VGGish `mel_features`, numpy float64; input at 16 kHz):
  frames of 400 samples (25 ms), hop 160 (10 ms), no padding -> periodic Hann window -> |rfft| with 512 points
  -> times a 64-band HTK-mel matrix (mel = 1127 ln(1 + f / 700), 125-7500 Hz, triangles over the 257 bin
  centres linspace(0, 8000), the DC bin zeroed) -> ln(mel + 0.01) -> non-overlapping examples of 96 frames
  (0.96 s); a clip shorter than 0.975 s gives no example.
Network: (E, 1, 96, 64) -> conv3x3 64, pool, 128, pool, 256, 256, pool, 512, 512, pool (each conv + ReLU,
2x2 max pools) -> (E, 512, 6, 4) permuted to (E, 6, 4, 512) and flattened -> 4096, ReLU, 4096, ReLU, 128.
Key names are the checkpoint's: `features.{0,3,6,8,11,13}.{weight,bias}`, `embeddings.{0,2,4}.{weight,bias}`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

VGGISH_SR = 16000
WINDOW, HOP, FFT = 400, 160, 512
EXAMPLE_FRAMES, MEL_BANDS = 96, 64
OFFICIAL_WIDTHS: tuple[int, ...] = (64, 128, 256, 512, 4096)
STANDIN_WIDTHS: tuple[int, ...] = (8, 16, 16, 32, 64)


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix(lower_hz: float = 125.0, upper_hz: float = 7500.0) -> np.ndarray:
    """The (257, 64) VGGish mel weights: triangles in HTK mel between 66 equally spaced edges; DC bin zero."""
    bins_mel = _hz_to_mel(np.linspace(0.0, VGGISH_SR / 2, FFT // 2 + 1))
    edges = np.linspace(_hz_to_mel(lower_hz), _hz_to_mel(upper_hz), MEL_BANDS + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bins_mel[:, None]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0
    return weights


def log_mel_examples(wave: np.ndarray) -> np.ndarray:
    """VGGish input examples (E, 96, 64) of a mono 16 kHz waveform (T,), float64."""
    x = np.asarray(wave, dtype=np.float64)
    n_frames = 1 + (x.size - WINDOW) // HOP if x.size >= WINDOW else 0
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WINDOW) / WINDOW)
    magnitude = np.abs(np.fft.rfft(x[idx] * window, FFT))  # (frames, 257)
    log_mel = np.log(magnitude @ mel_matrix() + 0.01)  # (frames, 64)
    n_examples = n_frames // EXAMPLE_FRAMES
    return log_mel[: n_examples * EXAMPLE_FRAMES].reshape(n_examples, EXAMPLE_FRAMES, MEL_BANDS)


class VGGish(nn.Module):
    """VGGish: examples (E, 1, 96, 64) -> embeddings (E, 128) (the last linear layer's output, no ReLU)."""

    def __init__(self, *, widths: Sequence[int] = OFFICIAL_WIDTHS, embedding_dim: int = 128) -> None:
        super().__init__()
        c1, c2, c3, c4, hidden = widths
        layers: list[nn.Module] = []
        in_ch = 1
        for spec in (c1, "M", c2, "M", c3, c3, "M", c4, c4, "M"):
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(in_ch, int(spec), 3, padding=1), nn.ReLU()]
                in_ch = int(spec)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(c4 * 6 * 4, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, embedding_dim),
        )

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        assert examples.shape[1:] == (1, EXAMPLE_FRAMES, MEL_BANDS), f"{tuple(examples.shape)=}"
        x = self.features(examples)  # (E, C, 6, 4)
        x = x.permute(0, 2, 3, 1).reshape(len(x), -1)  # TensorFlow's (H, W, C) flattening order
        return self.embeddings(x)


def vggish() -> VGGish:
    """The published VGGish size (128-d embeddings)."""
    return VGGish()


def vggish_standin() -> VGGish:
    """A test-sized VGGish (same layer pattern, narrow widths) for CI stand-in weights."""
    return VGGish(widths=STANDIN_WIDTHS)


def widths_of(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """(c1, c2, c3, c4, hidden) of a VGGish checkpoint, read from its tensor shapes."""
    try:
        return tuple(
            int(state[k].shape[0])
            for k in (
                "features.0.weight",
                "features.3.weight",
                "features.6.weight",
                "features.11.weight",
                "embeddings.0.weight",
            )
        )
    except KeyError as missing:
        raise ValueError(f"not a VGGish checkpoint: no {missing.args[0]}") from None
