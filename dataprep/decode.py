"""DVC stage `decode`: probe every clip of a source, quarantine bad ones, decode audio to each preset.

    python -m dataprep.decode SOURCE OUT [--params params.yaml]

For each clip and each preset in `decode.presets` it writes `OUT/<preset>/<clip_id>/audio.wav` (mono, the preset's
rate, 16-bit, padded to the preset's duration by its pad mode) and `meta.json` (probe information, the source's
content duration, the cache key). `OUT/manifest.jsonl` lists every clip with status and reason;
`OUT/quarantine.json` lists the bad inputs. Video frames are decoded where features need them (the features
stage): keeping 215 decoded frames per clip on disk would cost gigabytes for no gain.

A clip is re-processed only when its content or the preset's parameters change (per-clip cache key).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from dataprep import progress as progress_args
from dataprep.progress import clip_stage
from dataprep.runner import ClipResult, run_clips, summarize
from dataprep.sources import ClipSource, scan, scan_source
from v2s_models import io
from v2s_models.media import decoding, probe
from v2s_models.params import data_settings, load_params, section
from v2s_models.settings import DataSettings

DECODE_VERSION = "1"


def pcm16(audio: np.ndarray) -> np.ndarray:
    """Rounds float audio to 16-bit PCM values (what the decode stage stores), as float32 in [-1, 1)."""
    return (np.clip(np.round(audio * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)


def decode_audio_for(path: Path, settings: DataSettings, *, frame_size: tuple[int, int] = (16, 16)):
    """Decodes a clip to a preset: (pcm16-rounded mono float32 (num_samples,), meta, DecodedClip).

    Audio and frames are decoded together (`decoding.decode_clip`) so both loop with one common period; the
    decode stage asks for tiny frames, the features stage for frames at the extractor's size.
    """

    clip = decoding.decode_clip(path, settings, frame_size=frame_size, require_audio=True)
    meta = {
        "info": _jsonable(asdict(clip.info)),
        "source_duration": clip.source_duration,
        "audio_stream": clip.audio_stream,  # the first audio stream that is not silent
    }
    return pcm16(clip.audio), meta, clip


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def _decode_one(item: tuple[ClipSource, str, list[DataSettings]], state: dict[str, Any]) -> ClipResult:
    import soundfile as sf

    clip, out_root, presets = item
    out_root_p = Path(out_root)
    row: dict[str, Any] = {
        "clip_id": clip.clip_id,
        "category": clip.category,
        "source_path": str(clip.path),
        "ground_truth": str(clip.ground_truth) if clip.ground_truth else None,
    }
    try:
        source_sha = io.file_sha256(clip.path)  # refuses a file that is no longer regular before opening it
    except OSError as e:
        return ClipResult(
            clip.clip_id,
            "quarantined",
            f"unreadable: {e}",
            {**row, "status": "quarantined", "reason": "unreadable", "detail": str(e)},
        )
    row["source_sha256"] = source_sha
    all_cached = True
    try:
        for settings in presets:
            clip_dir = out_root_p / settings.name / clip.clip_id
            key = io.json_sha256({"src": source_sha, "settings": settings.to_dict(), "v": DECODE_VERSION})
            meta_path = clip_dir / "meta.json"
            if meta_path.is_file() and io.read_cache_key(meta_path) == key:
                meta = json.loads(meta_path.read_text())
            else:
                all_cached = False
                audio, meta, _ = decode_audio_for(clip.path, settings)
                with io.atomic_path(clip_dir / "audio.wav") as tmp:
                    sf.write(tmp, audio, settings.sample_rate, subtype="PCM_16", format="WAV")
                meta = {**meta, "key": key, "settings": settings.to_dict(), "clip_id": clip.clip_id}
                io.write_json(meta_path, meta)  # written last: its key marks the clip complete
            info = meta["info"]
            row.update(
                duration=meta["source_duration"],
                fps=info["fps"],
                sample_rate=info["sample_rate"],
                channels=info["channels"],
                width=info["width"],
                height=info["height"],
                has_audio=info["has_audio"],
                audio_stream=meta.get("audio_stream", 0),
            )
    except probe.MediaError as e:
        for settings in presets:  # never leave a stale, complete-looking output of a now-bad file
            shutil.rmtree(out_root_p / settings.name / clip.clip_id, ignore_errors=True)
        return ClipResult(
            clip.clip_id,
            "quarantined",
            f"{e.reason}: {e}",
            {**row, "status": "quarantined", "reason": e.reason, "detail": str(e)},
        )
    except Exception as e:  # a decoder crash on one file must not cost the user the rest
        for settings in presets:
            shutil.rmtree(out_root_p / settings.name / clip.clip_id, ignore_errors=True)
        return ClipResult(
            clip.clip_id,
            "quarantined",
            f"unreadable: {type(e).__name__}: {e}",
            {**row, "status": "quarantined", "reason": "unreadable", "detail": f"{type(e).__name__}: {e}"},
        )
    return ClipResult(
        clip.clip_id, "cached" if all_cached else "ok", None, {**row, "status": "ok", "reason": None}
    )


def prune(out_root: Path, presets: list[DataSettings], keep: set[str]) -> int:
    """Removes outputs of clips that are no longer in the source (or are now quarantined)."""
    removed = 0
    for settings in presets:
        base = out_root / settings.name
        if not base.is_dir():
            continue
        for meta in base.glob("*/*/meta.json"):
            clip_id = meta.parent.relative_to(base).as_posix()
            if clip_id not in keep:
                shutil.rmtree(meta.parent, ignore_errors=True)
                removed += 1
    return removed


def run(
    source: Path,
    out: Path,
    params: dict[str, Any],
    *,
    progress: bool | str = True,
    metrics: Path | None = None,
) -> dict[str, Any]:
    """Decodes every clip of `source` into `out`; the run's counters go to the metrics file `metrics`.

    progress: "bar", "lines" or "none" (dataprep.progress); True is "bar", False "none".
    """
    cfg = section(params, "decode")
    presets = [data_settings(params, name) for name in cfg.get("presets", ["regnet"])]
    workers = int(cfg.get("workers", 2))
    found = scan(source)
    if not found.clips:
        scan_source(source)  # raises the error that names the folder and what it expected
    clips = found.clips
    mode = ("bar" if progress else "none") if isinstance(progress, bool) else progress
    with clip_stage("decode", len(clips), mode) as bar:
        results = run_clips(
            _decode_one,
            [(c, str(out), presets) for c in clips],
            workers=workers,
            desc="decode",
            progress=bar,
            cluster=cfg.get("cluster"),
        )
    counts = summarize(results, "decode")
    rows = [r.row for r in results if r.row is not None]
    prune(out, presets, {r.clip_id for r in results if r.status != "quarantined"})
    quarantine = [
        {
            "clip_id": r.clip_id,
            "source_path": r.row.get("source_path") if r.row else None,
            "stage": "decode",
            "reason": (r.row or {}).get("reason") or (r.reason or "unreadable").split(":")[0],
            "detail": (r.row or {}).get("detail") or r.reason,
        }
        for r in results
        if r.status == "quarantined"
    ]
    skipped = [
        {"clip_id": None, "source_path": s.shown, "stage": "scan", "reason": s.reason, "detail": s.detail}
        for s in found.skipped
    ]
    for q in skipped + quarantine:
        print(f"[decode] quarantined {q['source_path']}: {q['reason']} ({q['detail']})", file=sys.stderr)
    by_reason: dict[str, int] = {}
    for q in skipped + quarantine:
        by_reason[q["reason"]] = by_reason.get(q["reason"], 0) + 1
    io.write_json(
        out / "quarantine.json",
        {
            "count": len(quarantine) + len(skipped),
            "by_reason": by_reason,
            "clips": quarantine,
            "skipped": skipped,
        },
    )
    io.write_jsonl(out / "manifest.jsonl", rows)
    summary = {
        "clips": len(clips),
        **counts,
        "skipped": len(skipped),
        "by_reason": by_reason,
        "presets": [p.name for p in presets],
    }
    io.write_run_metrics(out, metrics, summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dataprep.decode", description=__doc__.split("\n\n")[0])
    ap.add_argument("source", type=Path, help="folder of videos in category sub-folders")
    ap.add_argument("out", type=Path, help="output folder (data/decoded)")
    ap.add_argument(
        "--metrics", type=Path, help="run counters (JSON), outside OUT (dvc.yaml: a metrics file)"
    )
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    progress_args.add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        run(
            args.source,
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
