"""DVC stage `features`: each paper's features for every decoded clip.

    python -m dataprep.features DECODED OUT [--params params.yaml]

Per preset (params `features.presets`, e.g. `regnet: [mel, mel_hifigan, visual]`), writes
`OUT/<preset>/<clip_id>/<name>.npy`:

| name          | shape, dtype                    | what                                                            |
|---------------|---------------------------------|-----------------------------------------------------------------|
| `mel`         | (80, 860) float32               | RegNet-convention mel (v2s_models.audio.regnet_mel)             |
| `mel_hifigan` | (80, 860) float32               | HiFi-GAN-convention log mel, for vocoder training               |
| `wav_q`       | (num_samples,) uint8            | waveform linearly quantised to 256 levels (SampleRNN)           |
| `visual`      | (num_frames, 2 * D) float16     | appearance + motion (network on RGB, same network on flow image) |

and, with `features.per_second`, `OUT/persecond/<clip_id>/{appearance,audio}.npy` (one row per second) for the
correlation-filtered system. `meta.json`, written last, holds the cache key. Audio comes from the decode stage's
16-bit wav; frames are decoded from the source at the preset's frame rate, then looped like the audio.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dataprep import progress as progress_args
from dataprep.decode import pcm16
from dataprep.progress import clip_stage
from dataprep.runner import ClipResult, run_clips, summarize
from v2s_models import audio as audio_lib
from v2s_models import io
from v2s_models.media import decoding, probe
from v2s_models.media.persecond import clip_frames_per_second, per_second_features
from v2s_models.media.visual import build_extractor as _build
from v2s_models.media.visual import clip_visual_features
from v2s_models.params import data_settings, load_params, section
from v2s_models.settings import HIFIGAN_MEL, DataSettings

FEATURES_VERSION = "2"  # 2: EfficientNet with folded BatchNorm (values change ~1e-5)
KNOWN_OUTPUTS = ("mel", "mel_hifigan", "wav_q", "visual")


def validate_config(cfg: dict[str, Any]) -> None:
    presets = cfg.get("presets")
    if not isinstance(presets, dict) or not presets:
        raise ValueError("params.yaml: features.presets must map preset names to lists of outputs")
    for preset, outputs in presets.items():
        if not isinstance(outputs, list) or not outputs:
            raise ValueError(f"params.yaml: features.presets.{preset} must be a non-empty list of outputs")
        unknown = set(outputs) - set(KNOWN_OUTPUTS)
        if unknown:
            raise ValueError(
                f"params.yaml: features.presets.{preset}: unknown outputs {sorted(unknown)}; "
                f"known: {list(KNOWN_OUTPUTS)}"
            )
    if cfg.get("flow") not in ("tvl1", "dis"):
        raise ValueError(f"params.yaml: features.flow = {cfg.get('flow')!r}; expected 'tvl1' or 'dis'")
    size = cfg.get("image_size")
    if not isinstance(size, int) or size < 32:
        raise ValueError(f"params.yaml: features.image_size = {size!r}; expected an integer >= 32")


def build_extractor(cfg: dict[str, Any], threads: int | None = None) -> Any:
    return _build(
        cfg["extractor"],
        weights=cfg.get("extractor_weights"),
        image_size=int(cfg["image_size"]),
        threads=threads,
    )


def compute_clip_features(
    audio: np.ndarray,
    clip: Any | None,
    settings: DataSettings,
    outputs: list[str],
    cfg: dict[str, Any],
    extractor: Any | None,
) -> dict[str, np.ndarray]:
    """All requested features of one clip.

    audio: mono float32 (settings.num_samples,), 16-bit values as the decode stage stores them.
    clip: the `decoding.DecodedClip` at the extractor's frame size (needed for "visual" only).
    """
    assert audio.shape == (settings.num_samples,), f"{audio.shape=} {settings.num_samples=}"
    out: dict[str, np.ndarray] = {}
    if "mel" in outputs:
        out["mel"] = audio_lib.mel(audio, settings.sample_rate, settings.mel, settings.num_mel_frames)
    if "mel_hifigan" in outputs:
        out["mel_hifigan"] = audio_lib.hifigan_mel(
            audio, settings.sample_rate, HIFIGAN_MEL, settings.num_mel_frames
        )
    if "wav_q" in outputs:
        out["wav_q"] = audio_lib.quantize_linear(audio, 256)
    if "visual" in outputs:
        if extractor is None or clip is None:
            raise ValueError("visual features need an extractor and the decoded frames")
        feats = clip_visual_features(
            clip.frames,
            extractor=extractor,
            flow_method=cfg["flow"],
            bound=float(cfg.get("flow_bound", 20.0)),
            loop_index=clip.loop_index,
        )
        assert feats.shape[0] == settings.num_frames, f"{feats.shape=} {settings.num_frames=}"
        out["visual"] = feats.astype(np.float16)
    return out


def decode_for_features(
    path: Path, settings: DataSettings, cfg: dict[str, Any], expected_audio: np.ndarray | None = None
) -> Any:
    """Decodes frames at the extractor's size; the audio must equal what the decode stage stored."""

    size = int(cfg["image_size"])
    clip = decoding.decode_clip(path, settings, frame_size=(size, size), require_audio=True)
    if expected_audio is not None and not np.array_equal(pcm16(clip.audio), expected_audio):
        raise ValueError(
            f"{path}: the decoded audio differs from the decode stage's; re-run the decode stage"
        )
    return clip


def compute_per_second(
    path: Path, audio: np.ndarray, settings: DataSettings, cfg: dict[str, Any], extractor: Any
) -> dict[str, np.ndarray]:
    frames = clip_frames_per_second(path, image_size=int(cfg["image_size"]), duration=settings.duration)
    feats = per_second_features(frames, audio, sample_rate=settings.sample_rate, extractor=extractor)
    return {k: v.astype(np.float32) for k, v in feats.items()}


def _features_one(
    item: tuple[dict[str, Any], str, str, dict[str, Any], dict[str, Any]], state: dict[str, Any]
) -> ClipResult:
    import soundfile as sf

    row, decoded_root, out_root, cfg, preset_dicts = item
    clip_id, path = row["clip_id"], Path(row["source_path"])
    outputs_by_preset: dict[str, list[str]] = cfg["presets"]
    written: list[Path] = []
    all_cached = True
    try:
        jobs: list[tuple[str, DataSettings, list[str]]] = [
            (name, DataSettings.from_dict(preset_dicts[name]), outs)
            for name, outs in outputs_by_preset.items()
        ]
        if cfg.get("per_second"):
            jobs.append(
                (
                    "persecond",
                    DataSettings.from_dict(preset_dicts[cfg.get("per_second_preset", "regnet")]),
                    ["appearance", "audio"],
                )
            )
        for name, settings, outs in jobs:
            clip_dir = Path(out_root) / name / clip_id
            written.append(clip_dir)
            relevant = {
                k: cfg.get(k) for k in ("flow", "flow_bound", "extractor", "extractor_weights", "image_size")
            }
            key = io.json_sha256(
                {
                    "src": row["source_sha256"],
                    "settings": settings.to_dict(),
                    "outputs": outs,
                    "cfg": relevant,
                    "v": FEATURES_VERSION,
                }
            )
            meta_path = clip_dir / "meta.json"
            if meta_path.is_file() and io.read_cache_key(meta_path) == key:
                continue
            all_cached = False
            wav, sr = sf.read(Path(decoded_root) / settings.name / clip_id / "audio.wav", dtype="float32")
            if sr != settings.sample_rate:
                raise ValueError(
                    f"decoded audio of {clip_id} is at {sr} Hz, preset {settings.name} wants "
                    f"{settings.sample_rate}: re-run the decode stage"
                )
            if "extractor" not in state and ("visual" in outs or name == "persecond"):
                state["extractor"] = build_extractor(cfg)
            if name == "persecond":
                arrays = compute_per_second(path, wav, settings, cfg, state["extractor"])
            else:
                clip = None
                if "visual" in outs:
                    clip = decode_for_features(path, settings, cfg, expected_audio=wav)
                arrays = compute_clip_features(wav, clip, settings, outs, cfg, state.get("extractor"))
            for arr_name, arr in arrays.items():
                io.write_npy(clip_dir / f"{arr_name}.npy", arr)
            io.write_json(
                meta_path,
                {
                    "key": key,
                    "clip_id": clip_id,
                    "preset": settings.name,
                    "shapes": {k: list(v.shape) for k, v in arrays.items()},
                    "dtypes": {k: str(v.dtype) for k, v in arrays.items()},
                },
            )
    except (probe.MediaError, ValueError, RuntimeError, OSError) as e:
        for d in written:
            shutil.rmtree(d, ignore_errors=True)
        reason = getattr(e, "reason", "features_failed")
        return ClipResult(
            clip_id,
            "quarantined",
            f"{reason}: {e}",
            {"clip_id": clip_id, "status": "quarantined", "reason": reason, "detail": str(e)},
        )
    dirs = {p.relative_to(out_root).parts[0]: p.as_posix() for p in written}
    return ClipResult(
        clip_id,
        "cached" if all_cached else "ok",
        None,
        {"clip_id": clip_id, "status": "ok", "reason": None, "features": dirs},
    )


def run(
    decoded: Path,
    out: Path,
    params: dict[str, Any],
    *,
    progress: bool | str = True,
    metrics: Path | None = None,
) -> dict[str, Any]:
    """Features of every decoded clip into `out`; the run's counters go to the metrics file `metrics`.

    progress: "bar", "lines" or "none" (dataprep.progress); True is "bar", False "none".
    """
    cfg = section(params, "features")
    validate_config(cfg)
    preset_dicts = {name: data_settings(params, name).to_dict() for name in cfg["presets"]}
    if cfg.get("per_second"):
        ps = cfg.get("per_second_preset", "regnet")
        preset_dicts[ps] = data_settings(params, ps).to_dict()
    rows = [r for r in io.read_jsonl(decoded / "manifest.jsonl") if r["status"] == "ok"]
    items = [(r, str(decoded), str(out), cfg, preset_dicts) for r in rows]
    mode = ("bar" if progress else "none") if isinstance(progress, bool) else progress
    with clip_stage("features", len(items), mode) as bar:
        results = run_clips(
            _features_one,
            items,
            workers=int(cfg.get("workers", 2)),
            desc="features",
            progress=bar,
            cluster=cfg.get("cluster"),
        )
    counts = summarize(results, "features")
    keep = {r.clip_id for r in results if r.status != "quarantined"}
    for name in [*cfg["presets"], "persecond"]:
        base = out / name
        for meta in base.glob("*/*/meta.json") if base.is_dir() else []:
            if meta.parent.relative_to(base).as_posix() not in keep:
                shutil.rmtree(meta.parent, ignore_errors=True)
    quarantine = [{"clip_id": r.clip_id, "reason": r.reason} for r in results if r.status == "quarantined"]
    for q in quarantine:
        print(f"[features] quarantined {q['clip_id']}: {q['reason']}", file=sys.stderr)
    io.write_json(out / "quarantine.json", {"count": len(quarantine), "clips": quarantine})
    io.write_jsonl(out / "manifest.jsonl", [r.row for r in results if r.row is not None])
    summary = {"clips": len(rows), **counts}
    io.write_run_metrics(out, metrics, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dataprep.features", description=__doc__.split("\n\n")[0])
    ap.add_argument("decoded", type=Path, help="output folder of the decode stage (data/decoded)")
    ap.add_argument("out", type=Path, help="output folder (data/features)")
    ap.add_argument(
        "--metrics", type=Path, help="run counters (JSON), outside OUT (dvc.yaml: a metrics file)"
    )
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    progress_args.add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        run(
            args.decoded,
            args.out,
            load_params(args.params),
            progress=progress_args.resolve(args),
            metrics=args.metrics,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
