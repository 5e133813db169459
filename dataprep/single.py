"""Features of one video, exactly as the pipeline computes them (`v2s features VIDEO --preset P --out DIR`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from dataprep.decode import decode_audio_for
from dataprep.features import build_extractor, compute_clip_features, compute_per_second, validate_config
from v2s_models import io
from v2s_models.params import DEFAULT_PARAMS, data_settings, load_params


def video_features(
    video: Path, preset: str, out: Path, *, params_path: Path | None = None, outputs: list[str] | None = None
) -> dict[str, Any]:
    """Writes audio.wav, the preset's features (.npy) and meta.json for one video into `out`."""
    import soundfile as sf

    params = load_params(params_path) if params_path is not None else DEFAULT_PARAMS
    cfg = params["features"]
    validate_config(cfg)
    settings = data_settings(params, preset)
    outs = outputs or cfg["presets"].get(preset) or ["mel", "visual"]
    size = int(cfg["image_size"])
    audio, meta, clip = decode_audio_for(Path(video), settings, frame_size=(size, size))
    extractor = build_extractor(cfg) if "visual" in outs or cfg.get("per_second") else None
    arrays = compute_clip_features(audio, clip, settings, outs, cfg, extractor)
    if cfg.get("per_second") and preset == cfg.get("per_second_preset", "regnet"):
        arrays.update(
            {
                f"persecond_{k}": v
                for k, v in compute_per_second(Path(video), audio, settings, cfg, extractor).items()
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(out / "audio.wav") as tmp:
        sf.write(tmp, audio, settings.sample_rate, subtype="PCM_16", format="WAV")
    for name, arr in arrays.items():
        io.write_npy(out / f"{name}.npy", arr)
    summary = {
        "video": str(video),
        "preset": preset,
        "settings": settings.to_dict(),
        **meta,
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
        "dtypes": {k: str(v.dtype) for k, v in arrays.items()},
    }
    io.write_json(out / "meta.json", summary)
    for name, arr in arrays.items():
        print(f"{out / (name + '.npy')}: {arr.dtype} {tuple(arr.shape)}", file=sys.stderr)
    return summary
