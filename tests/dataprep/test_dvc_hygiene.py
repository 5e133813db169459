"""Real DVC on the tiny data set: stage outputs hold content only, so a setting that changes no clip leaves every
downstream stage cached (issue 15 item 4); odd entries in the source folder (pipes, device links, loops,
dangling links, non-UTF-8 names) do not stop `dvc repro` once `dataprep.sources --dvcignore` has listed them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DVC = Path(sys.executable).parent / "dvc"
pytestmark = pytest.mark.slow

# The train stage's data dependencies (dvc.yaml) for an experiment on the prepared data (its params.yaml entry's
# `manifest`, the stage's `${item.manifest}`); the probe stage below depends on exactly these.
TRAIN_DATA_DEPS = ("data/prepared/manifest.jsonl", "data/features")


def _dvc(repo: Path, *args: str, ok: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(DVC), *args], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout
    )
    if ok:
        assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _lock_md5(repo: Path, stage: str, path: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]
    return next(o["md5"] for o in lock["outs"] if o["path"] == path)


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory, tiny_data_root) -> Path:
    """The data stages of this checkout's dvc.yaml plus a `probe` stage with the train stage's data deps, in a
    fresh git + DVC repository seeded with the tiny prepared data (the per-clip caches make the first repro
    quick)."""
    repo = tmp_path_factory.mktemp("dvc_hygiene")
    for rel in ("dataprep", "v2s_models"):
        shutil.copytree(REPO / rel, repo / rel, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"].update(size="tiny", num_clips=None)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    train = stages["train"]["do"]
    assert {"${item.manifest}", "data/features"} <= set(train["deps"]), train["deps"]
    assert params["train"]["experiments"]["regnet_demo"]["manifest"] == TRAIN_DATA_DEPS[0]
    pipeline = {k: stages[k] for k in ("generate", "decode", "features", "splits")}
    pipeline["probe"] = {
        "cmd": "python -c \"open('probe.txt', 'w').write('ran')\"",
        "deps": list(TRAIN_DATA_DEPS),
        "outs": [{"probe.txt": {"cache": False}}],
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": pipeline}, sort_keys=False))
    shutil.copytree(tiny_data_root / "data", repo / "data")
    shutil.rmtree(repo / "data" / "prepared")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc(repo, "init", "-q")
    _dvc(repo, "repro", "probe")
    return repo


def test_a_setting_that_changes_no_clip_keeps_training_cached(dvc_repo):
    assert not (dvc_repo / "data/decoded/summary.json").exists()  # a stale counter file was removed
    assert not (dvc_repo / "data/features/summary.json").exists()
    counters = json.loads((dvc_repo / "data/metrics/decode.json").read_text())
    assert counters["clips"] == 16 and counters["quarantined"] == 0
    before = {
        s: _lock_md5(dvc_repo, s, f"data/{p}") for s, p in (("decode", "decoded"), ("features", "features"))
    }
    p = dvc_repo / "params.yaml"
    params = yaml.safe_load(p.read_text())
    params["decode"]["workers"] = 1  # the decode stage re-runs; no clip changes
    p.write_text(yaml.safe_dump(params, sort_keys=False))
    out = _dvc(dvc_repo, "repro", "probe").stdout
    assert "Running stage 'decode'" in out, out
    for stage in ("features", "splits", "probe"):
        assert f"Stage '{stage}' didn't change, skipping" in out, out
    after = {
        s: _lock_md5(dvc_repo, s, f"data/{p}") for s, p in (("decode", "decoded"), ("features", "features"))
    }
    assert after == before
    assert json.loads((dvc_repo / "data/metrics/decode.json").read_text())["cached"] == 16
    status = _dvc(dvc_repo, "status", "probe").stdout
    assert "up to date" in status.lower(), status


def test_odd_source_entries_survive_dvc_once_listed_in_dvcignore(dvc_repo):
    """DVC blocks on a pipe or a link to /dev/zero in a dependency folder (it reads them to hash them) and fails
    on a symlink loop, a dangling link and a name that is not UTF-8, before any stage runs; with the entries in
    `.dvcignore` (`python -m dataprep.sources SOURCE --dvcignore`) the pipeline runs and names each one."""
    cat = dvc_repo / "data/raw/synthfoley/drum"
    (cat / "loop.mp4").symlink_to("loop.mp4")
    (cat / "gone.mp4").symlink_to("/nonexistent/gone.mp4")
    Path(os.fsdecode(bytes(cat) + b"/caf\xe9.mp4")).write_bytes(b"not even a video")
    failed = _dvc(dvc_repo, "status", "decode", ok=False, timeout=120)
    assert failed.returncode != 0, failed.stdout  # DVC stops on these (measured: DVC 3.67)
    os.mkfifo(cat / "pipe.mp4")  # these two make DVC block: not run here without the ignore list
    (cat / "zero.mp4").symlink_to("/dev/zero")
    env = {**os.environ, "PYTHONPATH": str(dvc_repo)}
    subprocess.run(
        [sys.executable, "-m", "dataprep.sources", "data/raw/synthfoley", "--dvcignore"],
        cwd=dvc_repo,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    # Ignored entries change no hash DVC sees, so they are named the next time decode runs: force it here.
    _dvc(dvc_repo, "repro", "--force", "--single-item", "decode", timeout=600)
    _dvc(dvc_repo, "repro", "splits", timeout=600)
    q = json.loads((dvc_repo / "data/decoded/quarantine.json").read_text())
    reasons = {Path(s["source_path"]).name: s["reason"] for s in q["skipped"]}
    assert reasons == {
        "pipe.mp4": "named_pipe",
        "zero.mp4": "not_a_regular_file",
        "loop.mp4": "symlink_loop",
        "gone.mp4": "dangling_symlink",
        "caf\\xe9.mp4": "non_utf8_name",
    }
    manifest = (dvc_repo / "data/prepared/manifest.jsonl").read_text().splitlines()
    assert sum(json.loads(r)["status"] == "ok" for r in manifest) == 16  # every good clip still goes through
