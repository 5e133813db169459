"""Progress of the per-clip stages without a terminal: lines every few seconds (issue 18 item 4)."""

from __future__ import annotations

import argparse
import time

from dataprep import progress


def test_lines_mode_prints_a_heartbeat_and_the_end(monkeypatch, capsys):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.05)
    with progress.clip_stage("decode", 12, "lines") as bar:
        assert bar is False  # no tqdm bar: lines instead
        time.sleep(0.3)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "[decode] 12 clips ..."
    assert sum("still running" in line for line in err) >= 2, err
    assert err[-1].startswith("[decode] 12 clips: ") and err[-1].endswith(" s")
    with progress.clip_stage("decode", 12, "bar") as bar:
        assert bar is True
    with progress.clip_stage("decode", 12, "none") as bar:
        assert bar is False
    assert capsys.readouterr().err == ""


def test_modes_from_arguments(monkeypatch):
    ap = argparse.ArgumentParser()
    progress.add_arguments(ap)
    assert progress.resolve(ap.parse_args(["--no-progress"])) == "none"
    assert progress.resolve(ap.parse_args(["--progress", "lines"])) == "lines"
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert progress.resolve(ap.parse_args([])) == "lines"  # under DVC piped to a log, in CI
