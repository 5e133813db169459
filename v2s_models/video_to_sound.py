"""Generation on video files (`v2s generate`): decoding, visual features, the model's sound, muxing.

Pipeline for one video (`VideoToSound.generate_file`):
    1. decode the picture at the model's data settings (`package.data_settings.fps`), frames resized to the
       feature extractor's square image size as the data pipeline does (`v2s_models.media.decoding.read_frames`); the
       input's own sound is never read (most inputs have none, or silence);
    2. visual features exactly as in training (`package.features`: extractor, weights, image size, flow method
       and bound, `visual_part`): `v2s_models.media.visual.clip_visual_features`, rounded to float16 and back, since the
       pipeline stores them as float16;
    A per-second model (`model_inputs().per_second`: the seq2seq SampleRNN) reads one step per second of video
    instead: one frame a second and the same extractor's appearance features of it, float32, as the data stage's
    per-second features (`v2s_models.media.persecond`); a window is the preset's whole seconds;
    3. the model's sound, window by window (below), through its `SoundModel` interface: a mel voiced by a vocoder
       (REGNET, VarietySound) or a waveform (Zhou et al.'s VisualSampleRNN), as its `model_inputs().output` says;
    4. the waveform is cut to the video's duration, written beside the output (`OUT.wav`, 16-bit PCM) and muxed
       onto the original picture (`v2s_models.media.mux.mux_audio`: packets copied where the container allows).

Windows and cross-fades: `v2s_models.windows`; generation through the model interface: `v2s_models.generation`;
vocoders: `v2s_models.vocoding`.

Sources: the RegNet convention (21.5 fps, 22050 Hz, 4 mel frames per video frame, looped 10 s clips) is
PAPERS.md section 1; SampleRNN's windows are the Zhou convention (15.6 fps, 16 kHz). Neither paper says how to
go past the training window; windowing with cross-fades is our choice (documented above).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from v2s_models import audio as audio_lib
from v2s_models import progress
from v2s_models.generation import DEFAULT_BATCH_WINDOWS, generate_sound, load_model, visual_steps
from v2s_models.interface import check_reference, sound_model
from v2s_models.io import atomic_path
from v2s_models.media import audio_decoding, lengths, persecond, probe, video_decoding
from v2s_models.media.mux import make_readable, mux_audio, output_format, prepare_outputs, video_duration
from v2s_models.media.probe import MediaError
from v2s_models.media.visual import build_extractor, clip_visual_features
from v2s_models.package import ModelPackage
from v2s_models.params import DEFAULT_PARAMS
from v2s_models.settings import DataSettings
from v2s_models.vocoding import Vocoder, build_vocoder, vocode, vocoder_n_mels
from v2s_models.windows import plan_windows

DEFAULT_OVERLAP_S = 2.0
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".flv", ".wmv", ".3gp"}
)
FEATURE_KEYS = ("extractor", "extractor_weights", "image_size", "flow", "flow_bound", "visual_part")
VISUAL_PARTS = ("all", "appearance", "motion")


def feature_settings(package: ModelPackage) -> dict[str, Any]:
    """The package's feature settings over the pipeline's defaults (`v2s_models.params.DEFAULT_PARAMS`)."""

    cfg: dict[str, Any] = {k: DEFAULT_PARAMS["features"].get(k) for k in FEATURE_KEYS}
    cfg["visual_part"] = "all"
    cfg.update({k: package.features[k] for k in FEATURE_KEYS if package.features.get(k) is not None})
    if cfg["visual_part"] not in VISUAL_PARTS:
        raise ValueError(f"package features.visual_part {cfg['visual_part']!r} is not one of {VISUAL_PARTS}")
    return cfg


@dataclass
class VideoFeatures:
    """Visual features of a video at the model's fps, for T = num_frames = ceil(duration * fps) frames (for a
    per-second model: T = ceil(duration) seconds, one row each).

    visual: (T, D) float32, or (window, D) for inputs shorter than the window: computed on the frames fitted to
    it (looped, or black frames appended) as in training, so the motion across the loop seam is the real one.
    duration in seconds; seconds: time spent decoding and computing.
    """

    visual: np.ndarray
    num_frames: int
    duration: float
    seconds: float = 0.0


def reference_mel(path: str | os.PathLike[str], settings: DataSettings) -> Tensor:
    """The mel (n_mels, L) of any audio or video file's sound, its first `settings.duration` seconds, in the
    model's convention (RegNet: `audio.regnet_mel`). Raises MediaError for files without sound."""

    wav = audio_decoding.read_audio(path, sample_rate=settings.sample_rate, max_duration=settings.duration)
    level = audio_decoding.rms_dbfs(wav)
    if level < audio_decoding.SILENCE_DBFS:
        raise probe.MediaError(path, "silent_audio", f"the reference is silent (RMS {level:.1f} dBFS)")
    if wav.shape[0] < settings.mel.n_fft:
        raise probe.MediaError(path, "too_short", f"the reference has only {wav.shape[0]} samples")
    return torch.from_numpy(audio_lib.mel(wav, settings.sample_rate, settings.mel))


# ---------------------------------------------------------------------------------------------------------
# The whole video


@dataclass
class GeneratedAudio:
    """wav (N,) float32 at sample_rate, N = round(duration * sample_rate); seconds spent per stage."""

    wav: np.ndarray
    sample_rate: int
    duration: float
    num_windows: int
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class GenerationResult:
    video: Path
    out: Path
    wav_path: Path
    audio: GeneratedAudio
    mux: Any  # v2s_models.media.mux.MuxResult


def trusted_extractor_weights(
    features: dict[str, Any], user_weights: str | os.PathLike[str] | None
) -> str | None:
    """The visual extractor's weights file to load: never one that only the model package names as code.

    A TorchScript extractor is a program (`torch.jit.load` runs its compiled code), so a model file that names
    one must not make us load it: the user names the file (`--extractor-weights`), which replaces the
    package's path. Plain weight files (EfficientNet-Lite0 state dicts) load with `weights_only=True` and may
    come from the package.
    """
    if user_weights is not None:
        return os.fspath(user_weights)
    if features.get("extractor") == "torchscript":
        raise ValueError(
            f"this model's visual features come from a TorchScript file ({features.get('extractor_weights')!r}); "
            "loading TorchScript runs its code, so v2s never loads one a model file names: pass "
            "--extractor-weights PATH with the file you trust (the one the model was trained with)"
        )
    return features.get("extractor_weights")


class VideoToSound:
    """A trained model with its feature extractor and vocoder, ready to put sound on videos.

    package: a loaded model (`load_model`); vocoder: a `build_vocoder` spec (models that write a mel only);
    reference: VarietySound's timbre reference (audio or video file with sound); overlap_s: minimum overlap of
    consecutive windows; batch_windows: windows generated per forward pass; extractor_weights: the visual
    extractor's file, given by the user (required for a TorchScript extractor, `trusted_extractor_weights`).
    """

    def __init__(
        self,
        *,
        package: ModelPackage,
        vocoder: str = "griffin_lim",
        reference: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        overlap_s: float = DEFAULT_OVERLAP_S,
        batch_windows: int = DEFAULT_BATCH_WINDOWS,
        seed: int = 0,
        workers: int = 1,
        extractor_weights: str | os.PathLike[str] | None = None,
    ) -> None:
        try:
            self.generator = sound_model(package)
        except ValueError as e:
            raise ValueError(f"v2s generate needs a model that generates sound: {e}") from e
        self.inputs = self.generator.model_inputs()
        self.package = package
        self.settings = package.data_settings
        self.device = device
        # visual steps: video frames, or seconds for a per-second model
        self.window, self.steps_per_second = visual_steps(self.inputs, self.settings)
        self.overlap = int(round(overlap_s * self.steps_per_second))
        if not 0 <= self.overlap <= self.window // 3:
            raise ValueError(
                f"overlap {overlap_s} s must be between 0 and a third of the {self.settings.duration} s window"
            )
        self.batch_windows = batch_windows
        self.workers = workers
        self.features = feature_settings(package)
        self.extractor = build_extractor(
            self.features["extractor"],
            weights=trusted_extractor_weights(self.features, extractor_weights),
            image_size=int(self.features["image_size"]),
            device=device,
        )
        want = self.inputs.visual_dim
        if self.inputs.per_second:  # the per-second features are the appearance part only
            step, part, parts = "second", "appearance", 1
        else:
            step, part = "frame", self.features["visual_part"]
            parts = 2 if part == "all" else 1
        if want != parts * self.extractor.dim:
            raise ValueError(
                f"the model takes {want}-d visual features per {step}, but its feature settings "
                f"(extractor {self.features['extractor']!r}: {self.extractor.dim}-d, visual_part "
                f"{part!r}) give {parts * self.extractor.dim}-d"
            )
        if reference is None:  # a model that takes one says so before any work
            check_reference(self.inputs, None)
        self.reference_mel = reference_mel(reference, self.settings) if reference is not None else None
        self.vocoder: Vocoder | None = None
        if self.inputs.output == "mel":
            self.vocoder = build_vocoder(vocoder, settings=self.settings, device=device, seed=seed)
            n_voc, n_gen = vocoder_n_mels(self.vocoder), self.inputs.n_mels
            if n_voc is not None and n_voc != n_gen:
                raise ValueError(f"vocoder {vocoder!r} takes {n_voc} mel bins; the model makes {n_gen}")
            if self.reference_mel is not None and self.reference_mel.shape[0] != n_gen:
                raise ValueError(
                    f"the reference mel has {self.reference_mel.shape[0]} bins (data settings); the model takes {n_gen}"
                )

    @classmethod
    def from_uri(cls, model: str | os.PathLike[str], *, device: str = "cpu", **kwargs: Any) -> VideoToSound:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA device is available")
        return cls(package=load_model(model, device=device), device=device, **kwargs)

    def video_features(self, video: str | os.PathLike[str]) -> VideoFeatures:
        """Decodes `video` at the model's fps (one frame a second for a per-second model) and computes its
        visual features (T, D) as in training."""

        if self.inputs.per_second:
            return self._per_second_features(video)
        t0 = time.perf_counter()
        duration = video_duration(video)
        size = int(self.features["image_size"])
        frames = video_decoding.read_frames(video, fps=self.settings.fps, size=(size, size))
        loop_index = None
        if frames.shape[0] < self.window:  # fitted to one window the way decode_clip fits training clips
            if self.settings.pad_mode == "zero":
                frames = lengths.fit_length(frames, self.window, mode="zero")
            else:
                loop_index = lengths.fit_length(np.arange(frames.shape[0]), self.window, mode="loop")
        visual = clip_visual_features(
            frames,
            extractor=self.extractor,
            flow_method=self.features["flow"],
            bound=float(self.features.get("flow_bound") or 20.0),
            loop_index=loop_index,
            workers=self.workers,
        )
        d = self.extractor.dim
        visual = {"all": visual, "appearance": visual[:, :d], "motion": visual[:, d:]}[
            self.features["visual_part"]
        ]
        # The pipeline stores features as float16; the model was trained on those values.
        visual = visual.astype(np.float16).astype(np.float32)
        num_frames = min(max(1, math.ceil(duration * self.settings.fps - 1e-6)), visual.shape[0])
        if num_frames >= self.window:
            visual = visual[:num_frames]
        return VideoFeatures(
            visual=visual, num_frames=num_frames, duration=duration, seconds=time.perf_counter() - t0
        )

    def _per_second_features(self, video: str | os.PathLike[str]) -> VideoFeatures:
        """(T, D) appearance features, one row a second, T = ceil(duration) (`persecond.frames_per_second`), as
        the data stage computes them (float32); a video shorter than the window is looped to it as the data
        stage loops its clips, with T kept to cut the output."""
        t0 = time.perf_counter()
        duration = video_duration(video)
        frames = persecond.frames_per_second(video, image_size=int(self.features["image_size"]))
        if frames.shape[0] < self.window:
            frames = frames[lengths.fit_length(np.arange(frames.shape[0]), self.window, mode="loop")]
        visual = persecond.appearance_per_second(frames, self.extractor)
        num_steps = min(max(1, math.ceil(duration - 1e-6)), visual.shape[0])
        if num_steps >= self.window:
            visual = visual[:num_steps]
        return VideoFeatures(
            visual=visual, num_frames=num_steps, duration=duration, seconds=time.perf_counter() - t0
        )

    def synthesize(self, video: str | os.PathLike[str], *, seed: int = 0) -> GeneratedAudio:
        """The generated waveform for `video`, as long as its picture."""
        with progress.stage("features"):
            feats = self.video_features(video)
        return self.synthesize_features(feats, seed=seed)

    def synthesize_features(self, feats: VideoFeatures, *, seed: int = 0) -> GeneratedAudio:
        sr = self.settings.sample_rate
        n_out = int(round(feats.duration * sr))
        visual = torch.from_numpy(feats.visual)
        timings = {"features": feats.seconds}
        plan = plan_windows(feats.num_frames, self.window, self.overlap)
        t0 = time.perf_counter()
        with progress.stage("generation"):
            sound = generate_sound(
                self.generator,
                visual,
                window=self.window,
                overlap=self.overlap,
                seed=seed,
                pad_mode=self.settings.pad_mode,
                reference_mel=self.reference_mel,
                batch_size=self.batch_windows,
                num_frames=feats.num_frames,
                samples_per_frame=sr / self.steps_per_second,
                num_samples=n_out,
            )  # mel (n_mels, M * T) or waveform (n_out,)
        timings["generate"] = time.perf_counter() - t0
        if self.inputs.output == "mel":
            assert self.vocoder is not None
            t1 = time.perf_counter()
            with progress.stage("vocoding"):
                wav = vocode(self.vocoder, sound, hop=self.settings.mel.hop)
            timings["vocode"] = time.perf_counter() - t1
        else:
            wav = sound.numpy()
        out = np.zeros(n_out, np.float32)
        out[: min(n_out, wav.shape[0])] = wav[:n_out]
        if not np.all(np.isfinite(out)):
            raise ValueError("the model produced NaN or infinite samples")
        return GeneratedAudio(
            wav=out, sample_rate=sr, duration=feats.duration, num_windows=plan.num_windows, timings=timings
        )

    def generate_file(
        self,
        video: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        seed: int = 0,
        overwrite: bool = False,
    ) -> GenerationResult:
        """Writes `out` (the video with generated sound) and `out` with suffix .wav; nothing on error.

        Neither may be the input (ValueError); an existing one is replaced only with `overwrite`. Files are
        written to a temporary `.part` name and moved into place; `.part` files an earlier, interrupted run
        left are removed first.
        """
        import soundfile as sf

        video, out = Path(video), Path(out)
        output_format(out)  # a bad output name fails before any work
        wav_path = out.with_suffix(".wav")
        prepare_outputs(video, [out, wav_path], overwrite=overwrite)
        audio = self.synthesize(video, seed=seed)
        t0 = time.perf_counter()
        with progress.stage("muxing"):
            result = mux_audio(video, audio.wav, audio.sample_rate, out)
        audio.timings["mux"] = time.perf_counter() - t0
        with atomic_path(wav_path) as tmp:
            sf.write(tmp, audio.wav, audio.sample_rate, subtype="PCM_16", format="WAV")
            make_readable(tmp)
        return GenerationResult(video=video, out=out, wav_path=wav_path, audio=audio, mux=result)

    def generate_folder(
        self,
        folder: str | os.PathLike[str],
        out_dir: str | os.PathLike[str],
        *,
        seed: int = 0,
        progress: bool = True,
        on_result: Callable[[Path, GenerationResult | Exception], None] | None = None,
        overwrite: bool = False,
    ) -> list[tuple[Path, GenerationResult | Exception]]:
        """Every video file under `folder` (recursively) -> `out_dir/<relative path>.mp4` (+ .wav).

        A file that fails (MediaError, ValueError) is reported in the returned list and skipped.
        """
        from tqdm import tqdm

        folder, out_dir = Path(folder), Path(out_dir)
        videos = find_videos(folder)
        if not videos:
            raise ValueError(f"{folder}: no video files in it ({', '.join(sorted(VIDEO_EXTENSIONS))})")
        targets = output_names(videos, folder, out_dir)
        results: list[tuple[Path, GenerationResult | Exception]] = []
        for video in tqdm(videos, desc="generate", unit="video", disable=not progress):
            try:
                item: GenerationResult | Exception = self.generate_file(
                    video, targets[video], seed=seed, overwrite=overwrite
                )
            except (MediaError, ValueError) as e:
                item = e
            results.append((video, item))
            if on_result is not None:
                on_result(video, item)
        return results


def find_videos(folder: Path) -> list[Path]:
    """Video files (by extension) under `folder`, recursively, sorted; hidden files and folders skipped."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in VIDEO_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def output_names(videos: Sequence[Path], folder: Path, out_dir: Path) -> dict[Path, Path]:
    """`out_dir/<path relative to folder>.mp4`; inputs that would collide (a.mov and a.avi) keep their
    extension in the name (a_mov.mp4, a_avi.mp4)."""
    plain = {v: out_dir / v.relative_to(folder).with_suffix(".mp4") for v in videos}
    counts: dict[Path, int] = {}
    for target in plain.values():
        counts[target] = counts.get(target, 0) + 1
    return {
        v: t if counts[t] == 1 else t.with_name(f"{v.stem}_{v.suffix.lstrip('.').lower()}.mp4")
        for v, t in plain.items()
    }
