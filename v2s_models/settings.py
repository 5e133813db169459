"""Data settings shared by data preparation, models and generation.

Every derived length (frames per clip, mel frames, samples) is computed here, once, from a few numbers that
define a paper's data convention; modules receive the numbers they need as keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

PadMode = Literal["loop", "zero", "trim"]
MelKind = Literal["regnet", "hifigan"]


@dataclass(frozen=True)
class MelSettings:
    """An STFT + mel filter bank recipe; `kind` selects the log/normalisation convention."""

    kind: MelKind = "regnet"
    n_fft: int = 1024
    hop: int = 256
    win: int = 1024
    n_mels: int = 80
    fmin: float = 125.0
    fmax: float = 7600.0


REGNET_MEL = MelSettings(kind="regnet", fmin=125.0, fmax=7600.0)
HIFIGAN_MEL = MelSettings(kind="hifigan", fmin=0.0, fmax=8000.0)


@dataclass(frozen=True)
class DataSettings:
    """A paper's data convention: clip duration, video frame rate, audio sample rate, mel recipe.

    Derived sizes (RegNet convention, 10 s): 215 video frames, 220500 samples, 860 mel frames.
    """

    name: str = "regnet"
    fps: float = 21.5
    sample_rate: int = 22050
    duration: float = 10.0
    pad_mode: PadMode = "loop"
    mono: bool = True
    frame_size: tuple[int, int] = (224, 224)  # (height, width) fed to the visual extractor
    mel: MelSettings = field(default_factory=lambda: REGNET_MEL)

    def __post_init__(self) -> None:
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"DataSettings.fps must be a positive number, got {self.fps!r}")
        if self.sample_rate <= 0:
            raise ValueError(f"DataSettings.sample_rate must be positive, got {self.sample_rate!r}")
        if not (self.duration > 0 and math.isfinite(self.duration)):
            raise ValueError(
                f"DataSettings.duration must be a positive number of seconds, got {self.duration!r}"
            )
        if self.pad_mode not in ("loop", "zero", "trim"):
            raise ValueError(f"DataSettings.pad_mode must be 'loop', 'zero' or 'trim', got {self.pad_mode!r}")

    @property
    def num_frames(self) -> int:
        """Video frames per clip (215 for 10 s at 21.5 fps)."""
        return int(round(self.fps * self.duration))

    @property
    def num_samples(self) -> int:
        """Audio samples per clip (220500 for 10 s at 22050 Hz)."""
        return int(round(self.sample_rate * self.duration))

    @property
    def mel_frames_per_video_frame(self) -> int:
        """Whole mel frames per video frame: round(sample_rate / hop / fps) (4 for RegNet: 22050 / 256 / 21.5)."""
        return max(1, round(self.sample_rate / self.mel.hop / self.fps))

    @property
    def num_mel_frames(self) -> int:
        """Mel frames kept per clip, a whole multiple of the video frames (860 = 4 x 215 for RegNet).

        RegNet keeps the first 860 of the 862 frames a centred STFT gives for 220500 samples.
        """
        return self.num_frames * self.mel_frames_per_video_frame

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["frame_size"] = list(self.frame_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSettings:
        d = dict(d)
        mel = d.pop("mel", None)
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown data-settings keys: {sorted(unknown)}")
        if "frame_size" in d:
            d["frame_size"] = tuple(int(v) for v in d["frame_size"])
        mel_settings = MelSettings(**mel) if isinstance(mel, dict) else (mel or REGNET_MEL)
        return cls(mel=mel_settings, **d)


REGNET = DataSettings(name="regnet")
"""RegNet convention (REGNET, VarietySound, SpecVQGAN): 21.5 fps, 22050 Hz mono, looped to 10 s."""

ZHOU = DataSettings(
    name="zhou",
    fps=15.6,
    sample_rate=16000,
    duration=10.0,
    pad_mode="loop",
    mel=MelSettings(kind="regnet", n_fft=1024, hop=256, fmin=125.0, fmax=7600.0),
)
"""Zhou et al. 2018 (VEGAS): 15.6 fps, 16 kHz, repeated to 10 s (156 frames, 160000 samples)."""

PRESETS: dict[str, DataSettings] = {"regnet": REGNET, "zhou": ZHOU}
"""The built-in presets: the papers' conventions, defined here once. A project's params.yaml `presets:` section
(which ships with these values and may add or change presets) is what its data stages and trainers read;
`v2s_models.params.DEFAULT_PARAMS["presets"]`, the fallback without a params.yaml, is built from this mapping."""


def get_preset(name: str) -> DataSettings:
    """A built-in preset by name (`PRESETS`); a project's own presets: `v2s_models.params.project_data_settings`."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown built-in data preset {name!r}; known: {sorted(PRESETS)}") from None
