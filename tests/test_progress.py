"""Progress of long commands: `v2s_models.progress` (stage lines and a heartbeat), and `v2s generate` run as a
user runs it (a fresh process, so its cold start counts) on a real clip with a small REGNET debug package that
carries a model card: every stage is announced with its time, no 10 s pass without a line, the card's summary
is printed, and the SynthFoley-only warning appears for the real clip."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.test_generate import DEBUG_REGNET, _save
from v2s_models import model_card, progress

REPO = Path(__file__).resolve().parents[1]
MAX_SILENCE_S = 10.0
GENERATE_STAGES = ("loading libraries", "loading model", "features", "generation", "vocoding", "muxing")


def test_stage_prints_start_heartbeat_and_time() -> None:
    out = io.StringIO()
    progress.enable(out, prefix="t", heartbeat_s=0.1)
    try:
        with progress.stage("work"):
            time.sleep(0.35)
        with pytest.raises(RuntimeError), progress.stage("broken"):
            raise RuntimeError("boom")
    finally:
        progress.disable()
    lines = out.getvalue().splitlines()
    assert lines[0] == "[t] work ..."
    assert sum("work: still running" in line for line in lines) >= 2
    assert any(line.startswith("[t] work: 0.3") or line.startswith("[t] work: 0.4") for line in lines)
    assert lines[-1].startswith("[t] broken: failed after")
    before = out.getvalue()
    with progress.stage("quiet"):  # disabled again: nothing printed
        progress.say("nor this")
    assert out.getvalue() == before
    with pytest.raises(ValueError, match="heartbeat_s"):
        progress.enable(out, heartbeat_s=0)


def _timed_lines(
    cmd: list[str], env: dict[str, str], timeout_s: float
) -> tuple[int, list[tuple[float, str]]]:
    """Runs `cmd`; every line of its merged stdout and stderr with the seconds since the start it arrived at."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - t0, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    lines.append((time.monotonic() - t0, "<exit>"))
    return rc, lines


@pytest.mark.slow
def test_generate_prints_every_stage_and_never_stays_silent(real_media: Path, tmp_path: Path) -> None:
    data = {
        "manifest": "data/prepared/manifest.jsonl",
        "manifest_digest": "0" * 64,
        "sources": ["data/raw/synthfoley"],
        "categories": ["hammer"],
        "clips": {"train": 8},
        "synthetic": "all",
    }
    card = model_card.make_card(model="regnet_debug", paradigm="gan_mel", config="regnet_debug", data=data)
    package = _save(tmp_path / "regnet", "gan_mel", DEBUG_REGNET, extra={model_card.CARD_KEY: card})
    clip = real_media / "hammer_anvil.mp4"  # 4 s of a real hammer on an anvil
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "v2s_models.cli", "generate", str(clip), "--model", str(package)]
    rc, lines = _timed_lines([*cmd, "--out", str(tmp_path / "out.mp4")], env, timeout_s=300)
    text = "\n".join(f"{t:6.1f} {line}" for t, line in lines)
    print(text)
    assert rc == 0, text
    gaps = [b[0] - a[0] for a, b in zip([(0.0, "<start>"), *lines], lines, strict=False)]
    assert max(gaps) < MAX_SILENCE_S, f"{max(gaps):.1f} s without a line:\n{text}"
    for name in GENERATE_STAGES:
        assert any(line.startswith(f"[generate] {name}: ") and line.endswith(" s") for _, line in lines), (
            f"stage {name!r} not reported with its time:\n{text}"
        )
    assert any(
        "model card: regnet_debug (gan_mel): trained on synthetic video only" in line for _, line in lines
    )
    assert any(
        line.startswith("warning: regnet_debug was trained only on synthetic SynthFoley") for _, line in lines
    )
