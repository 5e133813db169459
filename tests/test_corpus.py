"""The corpus of bad and odd inputs (tests/corpus, >= 80 inputs, seeded) through the decode stage (one run over
the whole folder), `v2s features` (every input) and `v2s generate` (a representative subset: every kind that
decodes, and one of each error kind; all 80 would take minutes of Griffin-Lim). Every input must get a named
outcome: processed, quarantined with a reason, or a clear error; no traceback, no hang, no input lost, and each
written mp4's audio lasts as long as its video within one frame (issue 15 items 5 to 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import av
import pytest
import yaml

from dataprep.sources import printable
from tests.corpus import CorpusEntry, build_corpus
from v2s_models.media.mux import video_duration

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
SEED = 15
MEDIA_REASONS = {"unreadable", "zero_length", "corrupt", "no_video_stream", "no_audio_stream", "silent_audio"}


def _python(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[CorpusEntry], Path]:
    root = tmp_path_factory.mktemp("corpus")
    entries = build_corpus(root / "source", SEED)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["features"].update(extractor="random_projection", image_size=32, per_second=False)
    for section in ("decode", "features"):
        params[section].pop("cluster", None)  # local processes
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root, entries, root / "params.yaml"


def _run_cli(root: Path, name: str, jobs: list[dict], limit_s: int, timeout: float) -> dict[str, dict]:
    spec = root / f"{name}_jobs.json"
    spec.write_text(json.dumps({"limit_s": limit_s, "jobs": jobs}))
    proc = _python("-m", "tests.corpus.run_cli", str(spec), timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["key"]: r for r in map(json.loads, proc.stdout.splitlines())}


def _audio_video_durations(path: Path) -> tuple[float, float]:
    """(audio, video) seconds of a written file, from its packets (first presentation to last end)."""
    with av.open(str(path)) as c:
        a = c.streams.audio[0]
        starts, ends = [], []
        for p in c.demux(a):
            if p.pts is None:
                continue
            starts.append(p.pts)
            ends.append(p.pts + (p.duration or 0))
        audio = float((max(ends) - max(min(starts), 0)) * a.time_base)
    return audio, video_duration(path)


def test_corpus_every_input_named_no_traceback_no_hang(corpus, tmp_path):
    root, entries, params = corpus
    assert len(entries) >= 80
    out = tmp_path / "decoded"

    # 1. the decode stage over the whole folder, once
    proc = _python(
        "-m", "dataprep.decode", str(root / "source"), str(out), "--params", str(params),
        "--metrics", str(tmp_path / "decode.json"), "--no-progress", timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    ok = {r["clip_id"] for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())
          if r["status"] == "ok"}  # fmt: skip
    q = json.loads((out / "quarantine.json").read_text())
    by_id = {c["clip_id"]: c for c in q["clips"]}
    by_path = {s["source_path"]: s for s in q["skipped"]}
    decode: dict[Path, str] = {}
    for e in entries:
        if e.clip_id in ok:
            decode[e.path] = "ok"
        elif e.clip_id in by_id:
            decode[e.path] = by_id[e.clip_id]["reason"]
        elif printable(e.path) in by_path:
            decode[e.path] = by_path[printable(e.path)]["reason"]
    lost = [printable(e.path) for e in entries if e.path not in decode]
    unexpected = [(printable(e.path), decode[e.path], sorted(e.expected)) for e in entries
                  if e.path in decode and decode[e.path] not in e.expected]  # fmt: skip
    unnamed = [c for c in q["clips"] if c["reason"] not in MEDIA_REASONS]

    # 2. `v2s features` on every input (pipes and device links included: refused before they are opened)
    feats = _run_cli(
        root, "features",
        [{"key": str(i), "argv": ["features", str(e.path), "--preset", "regnet", "--out",
                                  str(tmp_path / "features" / str(i)), "--params", str(params)]}
         for i, e in enumerate(entries)],
        limit_s=60, timeout=900,
    )  # fmt: skip
    feature_outcome = {e.path: feats[str(i)]["outcome"] for i, e in enumerate(entries)}
    inconsistent = [(printable(e.path), decode[e.path], feature_outcome[e.path]) for e in entries
                    if decode.get(e.path) == "ok" and feature_outcome[e.path] != "processed"]  # fmt: skip

    # 3. `v2s generate` on the representative subset
    from tests.test_generate import save_debug_regnet

    package = save_debug_regnet(root / "regnet_debug")
    subset = [e for e in entries if e.generate]
    gens = _run_cli(
        root, "generate",
        [{"key": str(i), "argv": ["generate", str(e.path), "--model", str(package), "--out",
                                  str(tmp_path / "generated" / f"{i}.mp4")]}
         for i, e in enumerate(subset)],
        limit_s=120, timeout=900,
    )  # fmt: skip
    mismatches = []
    for i, e in enumerate(subset):
        written = tmp_path / "generated" / f"{i}.mp4"
        if gens[str(i)]["outcome"] != "processed":
            assert not written.exists(), f"{written}: written although generate failed"
            continue
        audio, video = _audio_video_durations(written)
        with av.open(str(written)) as c:
            fps = float(c.streams.video[0].average_rate or 25)
        if abs(audio - video) > 1.0 / fps:
            mismatches.append((printable(e.path), round(audio, 3), round(video, 3)))

    outcomes = list(feats.values()) + list(gens.values())
    tracebacks = [
        (r["key"], r["outcome"], r["stderr"][-500:]) for r in outcomes if r["outcome"].startswith("traceback")
    ]
    hangs = [r["key"] for r in outcomes if r["outcome"] == "hang"]
    counts = {
        "inputs": len(entries),
        "processed": sum(v == "ok" for v in decode.values()),
        "quarantined_by_reason": dict(sorted(Counter(v for v in decode.values() if v != "ok").items())),
        "features_processed": sum(v == "processed" for v in feature_outcome.values()),
        "features_errors_by_reason": dict(sorted(Counter(
            v.split(":", 1)[1] for v in feature_outcome.values() if v.startswith("error:")).items())),
        "generate_inputs": len(subset),
        "generate_processed": sum(gens[str(i)]["outcome"] == "processed" for i in range(len(subset))),
        "generate_errors_by_reason": dict(sorted(Counter(
            r["outcome"].split(":", 1)[1] for r in gens.values() if r["outcome"].startswith("error:")).items())),
        "tracebacks": len(tracebacks),
        "hangs": len(hangs),
        "lost": len(lost),
        "duration_mismatches": len(mismatches),
    }  # fmt: skip
    print("corpus counts:", json.dumps(counts, indent=1))
    assert not lost, lost
    assert not unexpected, unexpected
    assert not unnamed, unnamed
    assert not tracebacks, tracebacks
    assert not hangs, hangs
    assert not inconsistent, inconsistent
    assert not mismatches, mismatches
    assert counts["processed"] >= 25 and counts["generate_processed"] >= 8, counts
