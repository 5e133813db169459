"""Generation from visual features through the model interface (`v2s_models.interface.SoundModel`), window by
window with the windows of `v2s_models.windows` (`generate_sound`); and loading a trained model (`load_model`).

What the model writes (`model_inputs().output`) decides the rest:
- "mel" (REGNET, VarietySound): windows batched, cross-faded on the mel (linearly), voiced once afterwards.
- "waveform" (Zhou et al.'s VisualSampleRNN, the seq2seq SampleRNN): windows batched and cross-faded on the
  waveform (equal power). The windows are causal: each is sampled only up to the last sample the cross-fade
  uses, and a short input only for its own length (the first N samples of a longer draw are the same draw).

A model's visual step is a video frame (`settings.fps` steps a second, `settings.num_frames` a window) or, for a
per-second model (`model_inputs().per_second`: the seq2seq SampleRNN), one second of video (the data preset's
whole seconds a window, as the data stage's per-second features): `visual_steps`.

Randomness: `start_video` is called once per video with a generator seeded with `seed`
(`ModelInputs.sampling_generator`: a CPU one for mel models, so the same seed gives the same noise on any device;
one on the model's device for waveform models, which sample there), so the windows of a video share what the
model draws once (REGNET's z, VarietySound's timbre vector from the reference) and the same seed gives the same
sound.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

from v2s_models.interface import ModelInputs
from v2s_models.media.persecond import window_seconds
from v2s_models.package import META_FILE, ModelPackage, load_package
from v2s_models.settings import DataSettings
from v2s_models.windows import Curve, WindowPlan, crossfade, plan_windows

DEFAULT_BATCH_WINDOWS = 8


def load_model(uri_or_path: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> ModelPackage:
    """A trained model from an MLflow URI (`models:/regnet@champion`), a package folder or a checkpoint folder.

    Uses `v2s_models.registry.resolve_model` when it imports; otherwise only package folders load. Any failure
    becomes a ValueError that names the reference.
    """
    ref = str(uri_or_path)
    try:
        from v2s_models.registry import (
            resolve_model,  # lazy: MLflow (optional here: package folders load without it)
        )
    except ImportError:
        resolve_model = None
    try:
        if resolve_model is not None:
            return resolve_model(ref, device=device)
        if not (Path(ref) / META_FILE).is_file():
            raise FileNotFoundError(f"no {META_FILE} there (MLflow URIs need v2s_models.registry)")
        return load_package(ref, device=device)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:  # mlflow, torch and file errors all mean "this model cannot be used"
        raise ValueError(f"model {ref!r} not found or not loadable: {type(e).__name__}: {e}") from e


def visual_steps(inputs: ModelInputs, settings: DataSettings) -> tuple[int, float]:
    """(window, steps_per_second) of a model's visual input under its data settings: one step per video frame
    (`settings.num_frames` a window, `settings.fps` a second) or, for a per-second model, one per second (the
    preset's whole seconds a window, `media.persecond.window_seconds`, 1 a second)."""
    if inputs.per_second:
        return window_seconds(settings.duration), 1.0
    return settings.num_frames, float(settings.fps)


def _check_input(visual: Tensor, num_frames: int | None) -> int:
    """The input's length in frames: `num_frames`, else visual's (T, D) first dimension."""
    if visual.dim() != 2 or visual.shape[0] < 1:
        raise ValueError(f"visual must be (T >= 1, D), got shape {tuple(visual.shape)}")
    if num_frames is None:
        return int(visual.shape[0])
    if not 1 <= num_frames <= visual.shape[0]:
        raise ValueError(f"num_frames must be in [1, {visual.shape[0]}] (visual's frames), got {num_frames}")
    return int(num_frames)


def _fit_window(visual: Tensor, window: int, pad_mode: str) -> Tensor:
    """(T, D) -> (window, D): looped (pad_mode loop / trim) or zero-padded (zero) when T < window."""
    t = visual.shape[0]
    if t >= window:
        return visual[:window]
    if pad_mode == "zero":
        return torch.cat([visual, visual.new_zeros(window - t, visual.shape[1])])
    return visual[torch.arange(window, device=visual.device) % t]


def _window_batch(visual: Tensor, plan: WindowPlan, pad_mode: str) -> Tensor:
    """(T', D) -> (N, window, D): the windows of `plan` (one window for a short input, fitted to the window
    unless `visual` already covers it)."""
    if plan.total <= plan.window:
        return _fit_window(visual, plan.window, pad_mode)[None]
    return torch.stack([visual[s : s + plan.window] for s in plan.starts])


def _module_device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def generate_sound(
    model: nn.Module,
    visual: Tensor,
    *,
    window: int,
    overlap: int,
    seed: int = 0,
    pad_mode: str = "loop",
    reference_mel: Tensor | None = None,
    background_mel: Tensor | None = None,
    batch_size: int = DEFAULT_BATCH_WINDOWS,
    curve: Curve | None = None,
    num_frames: int | None = None,
    samples_per_frame: float | None = None,
    num_samples: int | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """The sound of a whole video from a `SoundModel`: visual (T, visual_dim) -> mel (n_mels, M * T), M mel
    frames per visual step, or waveform (num_samples,) float32 in [-1, 1] (module docstring).

    Windows of `window` steps overlapping by >= `overlap` steps; `curve`: the cross-fade (default linear on a
    mel, equal power on a waveform). reference_mel (n_mels, L): the timbre reference of a model that takes one.
    background_mel (n_mels, M * T): the real sound a `takes_background` model hears (else silence).
    num_frames: the input's length T when `visual` was already fitted to one window (a short input's features
    computed on its looped or padded frames, (window, D)); the output is then cut to T's length.
    Waveform models also need `samples_per_frame` (sample_rate / steps per second) and `num_samples`.
    """
    inputs: ModelInputs = model.model_inputs()
    total = _check_input(visual, num_frames)
    if visual.shape[1] != inputs.visual_dim:
        raise ValueError(
            f"the model takes {inputs.visual_dim}-d visual features, got shape {tuple(visual.shape)}"
        )
    if background_mel is not None and not inputs.takes_background:
        raise ValueError("this model hears no background: background_mel is for models with takes_background")
    plan = plan_windows(total, window, overlap)
    windows = _window_batch(visual, plan, pad_mode)  # (N, window, visual_dim)
    was_training = model.training
    model.eval()
    try:
        if inputs.output == "mel":
            return _mel(model, inputs, windows, plan, seed, reference_mel, background_mel, batch_size, curve)
        if samples_per_frame is None or num_samples is None:
            raise ValueError("a waveform model needs samples_per_frame and num_samples")
        return _waveform(
            model, inputs, windows, plan, seed, samples_per_frame, num_samples, batch_size, temperature, curve
        )
    finally:
        model.train(was_training)


def _mel(
    model: nn.Module,
    inputs: ModelInputs,
    windows: Tensor,
    plan: WindowPlan,
    seed: int,
    reference_mel: Tensor | None,
    background_mel: Tensor | None,
    batch_size: int,
    curve: Curve | None,
) -> Tensor:
    """Windows (N, W, D) -> mel (n_mels, M * total), the windows' mels cross-faded on the mel."""
    assert inputs.mel_frames_per_step is not None, f"{inputs=}"
    factor = inputs.mel_frames_per_step
    mel_plan = plan.scaled(factor, factor * plan.total)
    device = _module_device(model)
    backgrounds = None
    if background_mel is not None:  # cut like the visual windows; a short input's is used as it is
        if plan.num_windows == 1:
            backgrounds = background_mel[None]
        else:
            backgrounds = torch.stack([background_mel[:, s : s + mel_plan.window] for s in mel_plan.starts])
    outs = []
    with torch.inference_mode():
        generator = inputs.sampling_generator(seed, device)
        context = model.start_video(generator=generator, reference_mel=reference_mel)
        for lo in range(0, windows.shape[0], batch_size):
            x = windows[lo : lo + batch_size].to(device)
            bg = None if backgrounds is None else backgrounds[lo : lo + batch_size].to(device)
            # background_mel goes only to a model that takes one (`ModelInputs.takes_background`)
            extra = {} if bg is None else {"background_mel": bg}
            mel = model.generate_windows(x, context, **extra)
            assert mel.shape == (x.shape[0], inputs.n_mels, factor * x.shape[1]), f"{mel.shape=} {inputs=}"
            outs.append(mel.float())
    mels = torch.cat(outs)  # (N, n_mels, M * window)
    if plan.num_windows == 1:
        return mels[0, :, : factor * plan.total]
    return crossfade(mels, mel_plan, curve or "linear")


def _waveform(
    model: nn.Module,
    inputs: ModelInputs,
    windows: Tensor,
    plan: WindowPlan,
    seed: int,
    samples_per_frame: float,
    num_samples: int,
    batch_size: int,
    temperature: float,
    curve: Curve | None,
) -> Tensor:
    """Windows (N, W, D) -> waveform (num_samples,), each window sampled only as far as the output uses it."""
    device = _module_device(model)
    wav_plan = plan.scaled(samples_per_frame, num_samples)
    wav_window = int(round(plan.window * samples_per_frame))
    context = model.start_video(generator=inputs.sampling_generator(seed, device), temperature=temperature)
    pieces = []
    with torch.inference_mode():
        for lo in range(0, windows.shape[0], batch_size):
            idx = range(lo, min(lo + batch_size, windows.shape[0]))
            need = max(min(wav_plan.used_end(i), num_samples) - wav_plan.starts[i] for i in idx)
            need = max(1, min(need, wav_window))
            wav = model.generate_windows(windows[lo : lo + len(idx)].to(device), context, num_samples=need)
            assert wav.shape == (len(idx), need), f"{wav.shape=} {need=}"
            pieces.append(torch.nn.functional.pad(wav.float().cpu(), (0, wav_window - need)))
    chunks = torch.cat(pieces)[:, None]  # (N, 1, wav_window)
    if plan.num_windows == 1:
        out = chunks[0, 0, :num_samples]
        return torch.nn.functional.pad(out, (0, num_samples - out.shape[0]))
    return crossfade(chunks, wav_plan, curve or "equal_power")[0]
