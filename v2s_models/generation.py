"""Generation from visual features, per paradigm: a mel window by window (`generate_gan_mel`: REGNET,
VarietySound) or a waveform (`generate_autoregressive`: Zhou et al.'s VisualSampleRNN), with the windows of
`v2s_models.windows`; and loading a trained model (`load_model`).

- Noise: REGNET's z is drawn once per video (seeded) and shared by every window, so the sound keeps one
  character across seams; VarietySound's timbre vector is computed once from the reference (its random
  resampling seeded) and shared by every window, with silence as the background; SampleRNN samples each
  window from one seeded generator. The same seed gives the same audio.
- Autoregressive windows are causal: each is sampled only up to the last sample the cross-fade uses, and a
  short input only for its own length (the first N samples of a longer draw are the same draw).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import Tensor, nn

from v2s_models.audio import dequantize_linear
from v2s_models.package import META_FILE, ModelPackage, load_package
from v2s_models.regnet import RegnetGenerator
from v2s_models.varietysound import VarietySoundGenerator
from v2s_models.windows import Curve, WindowPlan, crossfade, plan_windows

PARADIGMS: tuple[str, ...] = ("gan_mel", "autoregressive")
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


def generator_module(package: ModelPackage) -> nn.Module:
    """The module that generates: `extra.generate_module`, else `generator`, else the package's only module."""
    name = package.extra.get("generate_module")
    if name is None:
        name = "generator" if "generator" in package.modules else None
    if name is None and len(package.modules) == 1:
        name = next(iter(package.modules))
    if name is None or name not in package.modules:
        raise ValueError(
            f"cannot tell which module generates in this {package.paradigm} package (modules: "
            f"{sorted(package.modules)}); set extra.generate_module"
        )
    return package.modules[name]


def expected_visual_dim(generator: nn.Module) -> int | None:
    """Feature width per frame the generator takes (REGNET visual_dim, VarietySound video_dim, SampleRNN's)."""
    for attr in ("visual_dim", "video_dim"):
        if isinstance(getattr(generator, attr, None), int):
            return int(getattr(generator, attr))
    frame = getattr(generator, "frame_encoder", None)
    if frame is not None:
        return int(frame.visual_dim)
    seq = getattr(generator, "seq_encoder", None)
    if seq is not None:
        return int(seq.visual_dim + seq.flow_dim) if hasattr(seq, "flow_dim") else int(seq.input_dim)
    return None


def _check_input(visual: Tensor, num_frames: int | None) -> int:
    """The input's length in frames: `num_frames`, else visual's (T, D) first dimension."""
    if visual.dim() != 2 or visual.shape[0] < 1:
        raise ValueError(f"visual must be (T >= 1, D), got shape {tuple(visual.shape)}")
    if num_frames is None:
        return int(visual.shape[0])
    if not 1 <= num_frames <= visual.shape[0]:
        raise ValueError(f"num_frames must be in [1, {visual.shape[0]}] (visual's frames), got {num_frames}")
    return int(num_frames)


def needs_reference(generator: nn.Module) -> bool:
    """Whether the generator takes a timbre reference (VarietySound with its acoustic encoder)."""
    return getattr(generator, "acoustic_encoder", None) is not None


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


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """torch's global RNG seeded inside the block and restored afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def _module_device(module: nn.Module) -> torch.device:
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _mel_windows(
    generator: nn.Module, windows: Tensor, *, seed: int, reference_mel: Tensor | None, batch_size: int
) -> Tensor:
    """(N, W, D) -> (N, n_mels, M * W) with the generator in eval mode, noise / timbre shared by all windows."""

    device = _module_device(generator)
    # A CPU generator: the same seed gives the same noise / resampling on any device (VarietySound's
    # resampling draws on the CPU anyway).
    g = torch.Generator().manual_seed(int(seed))
    outs = []
    with torch.inference_mode():
        if isinstance(generator, VarietySoundGenerator):
            timbre = None
            if generator.acoustic_encoder is not None:
                if reference_mel is None:
                    raise ValueError(
                        "this VarietySound model takes its timbre from a reference: pass --reference AUDIO "
                        "(any audio or video file with sound)"
                    )
                # (1, dim): one timbre for every window, its random resampling drawn from the seeded generator
                timbre = generator.acoustic_encoder.timbre(reference_mel[None].to(device), generator=g)
        elif isinstance(generator, RegnetGenerator):
            noise = torch.randn(1, generator.noise_dim, generator=g).to(device)
        for lo in range(0, windows.shape[0], batch_size):
            x = windows[lo : lo + batch_size].to(device)
            b, t = x.shape[0], x.shape[1]
            if isinstance(generator, VarietySoundGenerator):
                parts: dict[str, Tensor] = {}
                if generator.temporal_encoder is not None:
                    parts["temporal"] = generator.temporal_encoder(x)
                if timbre is not None:
                    parts["timbre"] = timbre[:, None].expand(b, t, -1)
                if generator.background_encoder is not None:
                    silence = x.new_full(
                        (b, generator.n_mels, t * generator.upsample_factor), generator.silence_value
                    )
                    parts["background"] = generator.background_encoder(silence, num_frames=t)
                mel = generator.decode(parts)
            elif isinstance(generator, RegnetGenerator):
                mel = generator.generate(x, noise=noise.expand(b, -1))
            else:  # any other mel generator with generate(visual): seeded through torch's global RNG
                with _seeded(seed, device):
                    mel = generator.generate(x)
            assert mel.dim() == 3 and mel.shape[0] == b, f"{mel.shape=}"
            outs.append(mel.float())
    return torch.cat(outs)


def generate_gan_mel(
    generator: nn.Module,
    visual: Tensor,
    *,
    window: int,
    overlap: int,
    seed: int = 0,
    pad_mode: str = "loop",
    reference_mel: Tensor | None = None,
    batch_size: int = DEFAULT_BATCH_WINDOWS,
    curve: Curve = "linear",
    num_frames: int | None = None,
) -> Tensor:
    """Mel for a whole video: visual (T, D) -> (n_mels, M * T), M mel frames per video frame (4 for REGNET).

    Windows of `window` frames overlapping by >= `overlap` frames (module docstring), cross-faded on the mel.
    reference_mel (n_mels, L): VarietySound's timbre reference (required when the model has a timbre encoder).
    num_frames: the input's length T when `visual` was already fitted to one window (a short input's features
    computed on its looped or padded frames, (window, D)); the output is then cut to M * T.
    """
    total = _check_input(visual, num_frames)
    was_training = generator.training
    generator.eval()
    try:
        plan = plan_windows(total, window, overlap)
        mels = _mel_windows(
            generator,
            _window_batch(visual, plan, pad_mode),
            seed=seed,
            reference_mel=reference_mel,
            batch_size=batch_size,
        )  # (N, n_mels, M * window)
    finally:
        generator.train(was_training)
    factor = mels.shape[-1] // window
    assert mels.shape[-1] == factor * window, f"{mels.shape=} {window=}"
    if plan.num_windows == 1:
        return mels[0, :, : factor * total]
    return crossfade(mels, plan.scaled(factor, factor * total), curve)


def _split_flow(generator: nn.Module, x: Tensor) -> tuple[Tensor, Tensor | None]:
    seq = getattr(generator, "seq_encoder", None)
    if seq is not None and hasattr(seq, "flow_dim"):
        return x[..., : seq.visual_dim], x[..., seq.visual_dim :]
    return x, None


def generate_autoregressive(
    generator: nn.Module,
    visual: Tensor,
    *,
    window: int,
    overlap: int,
    samples_per_frame: float,
    num_samples: int,
    seed: int = 0,
    pad_mode: str = "loop",
    batch_size: int = DEFAULT_BATCH_WINDOWS,
    temperature: float = 1.0,
    curve: Curve = "equal_power",
    num_frames: int | None = None,
) -> Tensor:
    """Waveform for a whole video with a VisualSampleRNN: visual (T, D) -> (num_samples,) float32 in [-1, 1].

    Each window (`window` frames, `samples_per_frame` = sample_rate / fps) is sampled only as far as the output
    uses it; windows are batched and cross-faded on the waveform. num_frames: as in `generate_gan_mel`.
    """

    total = _check_input(visual, num_frames)
    device = _module_device(generator)
    plan = plan_windows(total, window, overlap)
    wav_plan = plan.scaled(samples_per_frame, num_samples)
    windows = _window_batch(visual, plan, pad_mode)
    q_levels = int(generator.sample_rnn.q_levels)
    g = torch.Generator(device=device).manual_seed(int(seed))
    wav_window = int(round(window * samples_per_frame))
    pieces = []
    was_training = generator.training
    generator.eval()
    try:
        for lo in range(0, windows.shape[0], batch_size):
            idx = range(lo, min(lo + batch_size, windows.shape[0]))
            need = max(min(wav_plan.used_end(i), num_samples) - wav_plan.starts[i] for i in idx)
            need = max(1, min(need, wav_window))
            x, flow = _split_flow(generator, windows[lo : lo + len(idx)].to(device))
            q = generator.generate(x, flow=flow, num_samples=need, temperature=temperature, generator=g)
            wav = torch.from_numpy(dequantize_linear(q.cpu().numpy(), q_levels))  # (B, need)
            pieces.append(torch.nn.functional.pad(wav, (0, wav_window - need)))
    finally:
        generator.train(was_training)
    chunks = torch.cat(pieces)[:, None]  # (N, 1, wav_window)
    if plan.num_windows == 1:
        out = chunks[0, 0, :num_samples]
        return torch.nn.functional.pad(out, (0, num_samples - out.shape[0]))
    return crossfade(chunks, wav_plan, curve)[0]


# ---------------------------------------------------------------------------------------------------------
# Inputs: visual features of a video, reference mel
