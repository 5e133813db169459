"""The clips of a split, the model's sound for each, and the baselines built from the same clips.

Systems (keys of `Synthesis.systems`): `model` (the model's sound), `revoiced` (the real mel through the model's
vocoder, or the real waveform through the 8-bit quantiser for SampleRNN models), `same_category` (the real audio
of another clip of the category), `silence`, `model_other_video` (the model's sound for another clip of the
category: its own timbre, the wrong picture) and, with `retrieval_baseline`, `retrieval_oracle` (Zhou et al.'s
baseline after Owens et al. 2016: each 2 s of the real sound replaced by the nearest 2 s of the training sound).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf
import torch

from v2s_models.audio import dequantize_linear, quantize_linear
from v2s_models.data import decoded_dir, feature_dir, read_manifest
from v2s_models.evaluation.cluster import ClipRunner
from v2s_models.evaluation.progress import progress
from v2s_models.generation import generate_sound, visual_steps
from v2s_models.interface import ModelInputs, sound_model
from v2s_models.metrics.stats import stratified_sample
from v2s_models.vocoding import build_vocoder, vocode

SYSTEM = "model"  # the model's rows are written under its own name; this is only the internal key
BASELINES = ("revoiced", "same_category", "silence")
CONTROL = (
    "model_other_video"  # the model's output for another clip of the category (wrong timing, same model)
)
RETRIEVAL_BASELINE = "retrieval_oracle"
PER_SECOND_FEATURES = (
    "persecond"  # data/features/persecond/<clip>/: the per-second features (dataprep.features)
)
Background = Literal["silence", "real"]


@dataclass
class EvalClip:
    """One clip of the split: its model inputs, real audio and ground truth."""

    clip_id: str
    category: str
    visual: np.ndarray  # (T, D) float32, the prepared features: per frame, or per second (`visual_input`)
    real_wav: np.ndarray  # (N,) float32 at the preset's rate, looped to the window as in training
    real_mel: np.ndarray | None  # (n_mels, L) RegNet convention, when the preset has mels
    gt: dict[str, Any] | None  # SynthFoley ground truth (events in the clip's own time), else None
    source: Path  # the original video
    duration: float  # the original clip's length in seconds (one loop period)


@dataclass
class Synthesis:
    """What `synthesize` made: {system: {clip: wav (N,)}}, the model's mels, and VarietySound's references.

    mels: {clip: (n_mels, L)} generated with the cross reference (gan_mel models); own_reference_mels: the same
    with each clip as its own timbre reference (VarietySound's "original pairs", Tables 7-8); references:
    {clip: the clip whose real mel was the timbre reference}.
    """

    systems: dict[str, dict[str, np.ndarray]]
    mels: dict[str, np.ndarray] = field(default_factory=dict)
    own_reference_mels: dict[str, np.ndarray] = field(default_factory=dict)
    references: dict[str, str] = field(default_factory=dict)


def preset_of(package: Any) -> str:
    """The data preset a package was trained on (its config's `data.preset`, else its data settings' name)."""
    preset = (package.config.get("data") or {}).get("preset")
    return str(preset) if preset else str(package.data_settings.name)


def select_rows(rows: Sequence[dict[str, Any]], max_clips: int | None, seed: int) -> list[dict[str, Any]]:
    """`max_clips` manifest rows spread evenly over the categories (seeded), or all of them."""
    if max_clips is None or max_clips >= len(rows):
        return list(rows)
    ids = [str(r["clip_id"]) for r in rows]
    keep = set(stratified_sample(ids, [str(r["category"]) for r in rows], max_clips, seed=seed))
    return [r for r in rows if str(r["clip_id"]) in keep]


def load_clips(
    package: Any,
    *,
    root: Path,
    split: str = "test",
    max_clips: int | None = None,
    seed: int = 0,
) -> list[EvalClip]:
    """The split's clips with the inputs this model was trained on (read through the pipeline's manifest);
    `max_clips`: a category-stratified seeded sample of that many (the manifest is sorted by category, so
    its head would be one category)."""
    data = package.config.get("data") or {}
    manifest = data.get("manifest", "data/prepared/manifest.jsonl")
    rows = select_rows(read_manifest(manifest, split=split, root=root), max_clips, seed)
    return [_load_clip(package, r, root=root) for r in rows]


def visual_input(package: Any, r: dict[str, Any], *, root: Path) -> np.ndarray:
    """The visual features a clip's model input is made of, as training read them, (T, D) float32: the per-second
    appearance features (`persecond/<clip>/appearance.npy`, one row a second) for a model whose
    `model_inputs().per_second` is set, else the preset's per-frame `visual.npy` (its `visual_part`)."""
    if sound_model(package).model_inputs().per_second:
        return np.load(feature_dir(r, PER_SECOND_FEATURES, root) / "appearance.npy").astype(np.float32)
    data = package.config.get("data") or {}
    part = package.features.get("visual_part") or data.get("visual_part") or "all"
    visual = np.load(feature_dir(r, preset_of(package), root) / "visual.npy").astype(np.float32)
    if part != "all":
        half = visual.shape[1] // 2
        visual = visual[:, :half] if part == "appearance" else visual[:, half:]
    return visual


def _load_clip(package: Any, r: dict[str, Any], *, root: Path) -> EvalClip:
    preset = preset_of(package)
    sr = package.data_settings.sample_rate
    fdir = feature_dir(r, preset, root)
    visual = visual_input(package, r, root=root)
    wav, file_sr = sf.read(decoded_dir(r, preset, root) / "audio.wav", dtype="float32", always_2d=False)
    if wav.ndim > 1:
        wav = wav.mean(axis=1)
    if file_sr != sr:
        raise ValueError(
            f"clip {r['clip_id']}: decoded audio is {file_sr} Hz, the model's data settings say {sr} Hz "
            "(the data was prepared with other presets than the model was trained on)"
        )
    mel = np.load(fdir / "mel.npy").astype(np.float32) if (fdir / "mel.npy").is_file() else None
    gt = None
    if r.get("ground_truth"):
        gt_path = Path(r["ground_truth"])
        gt_path = gt_path if gt_path.is_absolute() else root / gt_path
        if gt_path.is_file():
            gt = json.loads(gt_path.read_text())
    src = Path(r["source_path"])
    return EvalClip(
        clip_id=r["clip_id"],
        category=r["category"],
        visual=visual,
        real_wav=wav.astype(np.float32),
        real_mel=mel,
        gt=gt,
        source=src if src.is_absolute() else root / src,
        duration=float(r.get("duration") or len(wav) / sr),
    )


def partners(clips: Sequence[EvalClip]) -> dict[str, str]:
    """Each clip's partner: the next clip of its category (sorted, cyclic); another category's if alone."""
    by_cat: dict[str, list[str]] = defaultdict(list)
    for c in sorted(clips, key=lambda c: c.clip_id):
        by_cat[c.category].append(c.clip_id)
    everyone = sorted(c.clip_id for c in clips)
    out = {}
    for ids in by_cat.values():
        for i, cid in enumerate(ids):
            if len(ids) > 1:
                out[cid] = ids[(i + 1) % len(ids)]
            elif len(everyone) > 1:
                out[cid] = everyone[(everyone.index(cid) + 1) % len(everyone)]
            else:
                out[cid] = cid
    return out


def fit_length(wav: np.ndarray, n: int) -> np.ndarray:
    """`wav` cut or zero-padded to `n` samples, float32."""
    out = np.zeros(n, np.float32)
    out[: min(n, len(wav))] = wav[:n]
    return out


def synthesize(
    package: Any,
    clips: Sequence[EvalClip],
    *,
    vocoder: str = "griffin_lim",
    seed: int = 0,
    device: str = "cpu",
    seconds: float | None = None,
    background: Background = "silence",
    own_reference: bool = True,
    runner: ClipRunner | None = None,
) -> Synthesis:
    """The model's sound and the baselines for every clip (module docstring).

    seconds: keep only the first `seconds` of every system (SampleRNN models generate only that much).
    background: what VarietySound's background encoder hears: `silence` (the paper's inference) or the clip's
    `real` mel (Table 8's "with background information"); models without one ignore it.
    own_reference: VarietySound also generates each clip with its own mel as the timbre reference (the mel is
    kept for `mcd_own_reference_db`, not voiced).
    runner: where the clips are generated (`evaluation.cluster`: this process by default, or Ray tasks); each
    clip is seeded on its own, so the sound does not depend on it.
    """
    if background not in ("silence", "real"):
        raise ValueError(f"background must be 'silence' or 'real', got {background!r}")
    try:
        sound_model(package)
    except ValueError as e:
        raise ValueError(
            f"evaluation generates sound: it needs a model that generates sound, not this {package.paradigm!r} "
            f"one ({e}; a correlation tower is evaluated by retrieval: v2s_models.evaluation.tower_retrieval)"
        ) from e
    settings = package.data_settings
    n = (
        settings.num_samples
        if seconds is None
        else min(settings.num_samples, int(round(seconds * settings.sample_rate)))
    )
    mate = partners(clips)
    by_id = {c.clip_id: c for c in clips}
    shared = partial(_generation_state, package, vocoder, seed, device, n, background, own_reference)
    made = (runner or ClipRunner()).map(
        _generate_clip, [(c, by_id[mate[c.clip_id]]) for c in clips], shared=shared, desc="generate"
    )
    out = Synthesis(systems={s: {} for s in (SYSTEM, *BASELINES)})
    for c, m in zip(clips, made, strict=True):
        if m.reference is not None:
            out.references[c.clip_id] = m.reference
        if m.mel is not None:
            out.mels[c.clip_id] = m.mel
        if m.own_reference_mel is not None:
            out.own_reference_mels[c.clip_id] = m.own_reference_mel
        out.systems[SYSTEM][c.clip_id] = m.wav
        out.systems["revoiced"][c.clip_id] = m.revoiced
        out.systems["same_category"][c.clip_id] = fit_length(by_id[mate[c.clip_id]].real_wav, n)
        out.systems["silence"][c.clip_id] = np.zeros(n, np.float32)
    # The control: the model's own sound for the partner clip's video (same model, same category, the wrong
    # picture). Beating `same_category` shows the sound has the right density of events; beating this shows
    # the model's timing follows the picture it was given.
    out.systems[CONTROL] = {c.clip_id: out.systems[SYSTEM][mate[c.clip_id]] for c in clips}
    return out


@dataclass
class _GenerationState:
    """What generating one clip needs, built once per process (`ClipRunner.map`'s shared state)."""

    package: Any
    generator: torch.nn.Module  # the package's SoundModel
    inputs: ModelInputs
    vocoder: Any
    seed: int
    num_samples: int
    real_background: bool
    own_reference: bool


@dataclass
class _ClipSound:
    """One clip's generated sound (and, for models that write a mel, its mels and timbre reference)."""

    wav: np.ndarray
    revoiced: np.ndarray
    mel: np.ndarray | None = None
    own_reference_mel: np.ndarray | None = None
    reference: str | None = None


def _generation_state(
    package: Any,
    vocoder: str,
    seed: int,
    device: str,
    num_samples: int,
    background: Background,
    own_reference: bool,
) -> _GenerationState:
    generator = sound_model(package).to(device).eval()
    inputs = generator.model_inputs()
    voc = None
    if inputs.output == "mel":
        voc = build_vocoder(vocoder, settings=package.data_settings, device=device, seed=seed)
    return _GenerationState(
        package=package,
        generator=generator,
        inputs=inputs,
        vocoder=voc,
        seed=seed,
        num_samples=num_samples,
        real_background=background == "real" and inputs.takes_background,
        own_reference=own_reference,
    )


def _generate_clip(state: _GenerationState, item: tuple[EvalClip, EvalClip]) -> _ClipSound:
    """The model's sound for clip `c` (its partner: the timbre reference) and `c`'s re-voiced real audio."""

    c, partner = item
    package, generator, seed, n = state.package, state.generator, state.seed, state.num_samples
    settings = package.data_settings
    window, steps_per_second = visual_steps(state.inputs, settings)
    visual = torch.from_numpy(c.visual)
    if visual.shape[0] < window:
        step = "seconds" if state.inputs.per_second else "frames"
        raise ValueError(f"clip {c.clip_id}: {visual.shape[0]} feature {step}, the model needs {window}")
    visual = visual[:window]
    out = _ClipSound(wav=np.zeros(0, np.float32), revoiced=np.zeros(0, np.float32))
    if state.inputs.output == "mel":
        if c.real_mel is None:
            raise ValueError(f"clip {c.clip_id} has no mel features: cannot re-voice its real audio")
        ref = None
        if state.inputs.takes_reference:
            if partner.real_mel is None:
                raise ValueError(f"clip {partner.clip_id} has no mel features to use as a timbre reference")
            ref = partner.real_mel
            out.reference = partner.clip_id
        background = c.real_mel if state.real_background else None
        mel = _mel(generator, visual, ref, background, window, seed)
        out.mel = mel
        if state.inputs.takes_reference and state.own_reference:
            out.own_reference_mel = _mel(generator, visual, c.real_mel, background, window, seed)
        wav = vocode(state.vocoder, torch.from_numpy(mel), hop=settings.mel.hop)
        revoiced = vocode(state.vocoder, torch.from_numpy(c.real_mel), hop=settings.mel.hop)
    else:
        wav = generate_sound(
            generator,
            visual,
            window=window,
            overlap=0,
            samples_per_frame=settings.sample_rate / steps_per_second,
            num_samples=n,
            seed=seed,
            num_frames=window,
        ).numpy()
        revoiced = dequantize_linear(quantize_linear(c.real_wav), 256)
    out.wav = fit_length(wav, n)
    out.revoiced = fit_length(np.asarray(revoiced, np.float32), n)
    return out


def _mel(
    generator: torch.nn.Module,
    visual: torch.Tensor,
    reference: np.ndarray | None,
    background: np.ndarray | None,
    window: int,
    seed: int,
) -> np.ndarray:
    """One window's mel: visual (window, D) -> (n_mels, M * window), with the timbre `reference` (n_mels, L)
    and the real `background` mel (Table 8's "w Bi") where given."""
    mel = generate_sound(
        generator,
        visual,
        window=window,
        overlap=0,
        seed=seed,
        reference_mel=None if reference is None else torch.from_numpy(reference),
        background_mel=None if background is None else torch.from_numpy(background),
        num_frames=window,
    )
    return mel.numpy()


# ------------------------------------------------------------------ Zhou et al.'s retrieval baseline
def _log_mel(wav: np.ndarray, sample_rate: int, hop: int) -> np.ndarray:
    """(n_mels=64, L) log-mel of a waveform: the sound features the retrieval baseline matches on."""
    import librosa  # heavy (numba): only this baseline needs it here

    mel = librosa.feature.melspectrogram(y=wav, sr=sample_rate, n_fft=4 * hop, hop_length=hop, n_mels=64)
    return np.log(mel + 1e-6).astype(np.float32)


def _segments(feat: np.ndarray, frames: int) -> Iterator[tuple[int, np.ndarray]]:
    for lo in range(0, feat.shape[1] - frames + 1, frames):
        yield lo, feat[:, lo : lo + frames].reshape(-1)


def retrieval_oracle(
    clips: Sequence[EvalClip],
    pool: Iterable[EvalClip],
    *,
    sample_rate: int,
    num_samples: int,
    segment_seconds: float = 2.0,
    hop: int = 256,
) -> dict[str, np.ndarray]:
    """Zhou et al.'s retrieval baseline (their reference [9], Owens et al. 2016) in the "upper bound" form
    they ran: the test clip's real sound features are given (cochleograms there, 64-band log-mels here),
    each `segment_seconds` of the test clip is replaced by the training segment (cut with a stride of
    `segment_seconds`) nearest in those features (L2), and the retrieved waveforms are concatenated.

    clips: the clips to make sound for; pool: the training split's clips. Returns {clip: wav (num_samples,)}.
    """
    frames = max(1, int(round(segment_seconds * sample_rate / hop)))
    seg_samples = frames * hop
    keys: list[tuple[EvalClip, int]] = []
    feats: list[np.ndarray] = []
    for p in pool:
        for lo, seg in _segments(_log_mel(p.real_wav, sample_rate, hop), frames):
            keys.append((p, lo))
            feats.append(seg)
    if not feats:
        raise ValueError("retrieval baseline: the training split has no segment to retrieve from")
    bank = np.stack(feats)  # (S, 64 * frames)
    bank_sq = np.einsum("ij,ij->i", bank, bank)
    out: dict[str, np.ndarray] = {}
    for c in progress(clips, desc="retrieval baseline"):
        pieces = []
        for _, q in _segments(_log_mel(c.real_wav, sample_rate, hop), frames):
            src, lo = keys[int(np.argmin(bank_sq - 2.0 * bank @ q))]
            pieces.append(fit_length(src.real_wav[lo * hop :], seg_samples))
        out[c.clip_id] = fit_length(
            np.concatenate(pieces) if pieces else np.zeros(0, np.float32), num_samples
        )
    return out
