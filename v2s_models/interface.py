"""The one interface between the platform and a sound model: what generation, evaluation and the registry need.

Every generating module (REGNET's and VarietySound's generators, Zhou et al.'s VisualSampleRNN, the seq2seq
SampleRNN, and any model a user adds) implements `SoundModel`. The platform calls these three methods only; it
never checks an architecture's class or probes its attributes.

- `model_inputs()` says what the model reads and writes (`ModelInputs`): the width of one visual step's features
  (and how many of its trailing columns are optical flow), whether a step is a video frame or a second of video,
  whether generation needs a reference sound, and whether it writes a mel (how many bands, how many mel frames per
  visual step) or a waveform.
- `start_video(generator=..., reference_mel=...)` is called once per video, before its first window: it draws
  what every window of the video shares (REGNET's noise, VarietySound's timbre vector from the reference) from
  `generator`, so the sound keeps one character across the windows' seams, and returns it as an opaque context.
- `generate_windows(windows, context, num_samples=...)` generates a batch of windows, visual features
  (B, W, visual_dim) -> mel (B, n_mels, W * mel_frames_per_step), or waveform (B, num_samples) float in [-1, 1],
  in eval mode and without gradients (the caller sets both). A model whose `model_inputs().takes_background` is
  set also accepts `background_mel=` (B, n_mels, W * mel_frames_per_step), the windows' real sound
  (VarietySound's background encoder, Table 8's "with background information"); the platform passes it to no
  other model, and without it the model hears silence.

A module that implements the protocol needs no registration to be generated from, evaluated or registered; a
package with several modules names its generating module in `extra.generate_module` (`sound_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

Output = Literal["mel", "waveform"]


@dataclass(frozen=True)
class ModelInputs:
    """What a sound model reads and writes.

    visual_dim: features per visual step, all parts together (appearance, then `flow_dim` columns of flow).
    per_second: one visual step per second of video (the seq2seq model's per-second features), else one per
        video frame.
    takes_reference: generation needs a reference sound's mel (VarietySound's timbre).
    takes_background: `generate_windows` also accepts `background_mel=`, the windows' real sound (VarietySound's
        background encoder); without it the model hears silence.
    output: "mel" (n_mels bands, `mel_frames_per_step` mel frames per visual step) or "waveform".
    samples_per_step: the audio samples per visual step the model was built for, where it relies on a number
        (Zhou's Frame encoder picks each sample's video frame by it); None: any. Trainers check it against the data.
    """

    visual_dim: int
    flow_dim: int = 0
    per_second: bool = False
    takes_reference: bool = False
    takes_background: bool = False
    output: Output = "mel"
    n_mels: int | None = None
    mel_frames_per_step: int | None = None
    samples_per_step: int | None = None

    def __post_init__(self) -> None:
        if self.visual_dim < 1 or not 0 <= self.flow_dim <= self.visual_dim:
            raise ValueError(f"need visual_dim >= 1 and 0 <= flow_dim <= visual_dim, got {self}")
        if self.output not in ("mel", "waveform"):
            raise ValueError(f"output must be 'mel' or 'waveform', got {self.output!r}")
        if self.output == "mel" and not (self.n_mels and self.mel_frames_per_step):
            raise ValueError(f"a mel model must say n_mels and mel_frames_per_step, got {self}")
        if self.takes_background and self.output != "mel":
            raise ValueError(f"only a mel model can hear a background mel, got {self}")

    @property
    def appearance_dim(self) -> int:
        return self.visual_dim - self.flow_dim

    def split_flow(self, visual: Tensor) -> tuple[Tensor, Tensor | None]:
        """(..., visual_dim) -> appearance (..., appearance_dim), flow (..., flow_dim) or None."""
        if not self.flow_dim:
            return visual, None
        return visual[..., : self.appearance_dim], visual[..., self.appearance_dim :]

    def sampling_generator(self, seed: int, device: torch.device | str) -> torch.Generator:
        """The generator a video's random draws come from, seeded with `seed`: on the CPU for a mel model (its
        draws are few, and the same seed then gives the same noise on any device), on the model's `device` for
        a waveform model (it samples there, step by step)."""
        return torch.Generator(device=device if self.output == "waveform" else "cpu").manual_seed(int(seed))


@runtime_checkable
class SoundModel(Protocol):
    """What the platform needs from a generating module (module docstring)."""

    def model_inputs(self) -> ModelInputs: ...

    def start_video(
        self, *, generator: torch.Generator, reference_mel: Tensor | None = None, temperature: float = 1.0
    ) -> Any: ...

    def generate_windows(
        self, windows: Tensor, context: Any, *, num_samples: int | None = None
    ) -> Tensor: ...


def is_sound_model(module: object) -> bool:
    return isinstance(module, nn.Module) and isinstance(module, SoundModel)


class Package(Protocol):
    """What `sound_model` reads of a model package (`v2s_models.package.ModelPackage`; named structurally, so
    the interface does not import the package module, which imports the models)."""

    @property
    def paradigm(self) -> str: ...
    @property
    def modules(self) -> Mapping[str, nn.Module]: ...
    @property
    def extra(self) -> Mapping[str, Any]: ...


def sound_model_name(package: Package) -> str:
    """The name of the package's generating module: `extra.generate_module`, else its only `SoundModel`."""
    name = package.extra.get("generate_module")
    if name is not None:
        if name not in package.modules:
            raise ValueError(
                f"extra.generate_module names {name!r}, which this {package.paradigm} package does not hold "
                f"(modules: {sorted(package.modules)})"
            )
        return str(name)
    found = [n for n, m in package.modules.items() if is_sound_model(m)]
    if len(found) != 1:
        raise ValueError(
            f"cannot tell which module generates in this {package.paradigm} package (modules: "
            f"{sorted(package.modules)}, of which SoundModels: {found}); set extra.generate_module"
        )
    return found[0]


def sound_model(package: Package) -> nn.Module:
    """The package's generating module (`sound_model_name`), checked to implement `SoundModel`."""
    name = sound_model_name(package)
    module = package.modules[name]
    if not is_sound_model(module):
        raise ValueError(
            f"module {name!r} ({type(module).__name__}) of this {package.paradigm} package does not implement "
            "v2s_models.interface.SoundModel (model_inputs, start_video, generate_windows)"
        )
    return module


def check_reference(inputs: ModelInputs, reference_mel: Tensor | None) -> None:
    """The error a user sees when a reference-taking model gets none."""
    if inputs.takes_reference and reference_mel is None:
        raise ValueError(
            "this model takes its timbre from a reference: pass --reference AUDIO (any audio or video file "
            "with sound)"
        )
