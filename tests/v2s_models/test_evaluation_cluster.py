"""The evaluation's clips as Ray tasks (`evaluate.cluster`, `v2s evaluate --cluster`): the same metrics.json as
the in-process path, progress per clip, and the runner's order and refusals. The Ray evaluations run in fresh
processes (`v2s evaluate`), as users run them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.v2s_models.test_evaluation import REPO, _debug_package
from v2s_models import evaluation as ev
from v2s_models.evaluation.cluster import ClipRunner, check_cluster


def _square(state: dict[str, int], item: int) -> int:
    return item * item + state["offset"]


def _offset() -> dict[str, int]:
    return {"offset": 1}


def test_in_process_runner_keeps_order_builds_state_once_and_reports_each_clip(capsys):
    built = []

    def shared() -> dict[str, int]:
        built.append(1)
        return {"offset": 1}

    with ClipRunner(None) as runner:
        assert runner.map(_square, [3, 1, 2], shared=shared, desc="square") == [10, 2, 5]
    assert built == [1]
    err = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in err] == [f"square: {i}/3 clips" for i in (1, 2, 3)]


@pytest.mark.parametrize("bad", ["", "  ", 3])
def test_an_empty_or_odd_cluster_is_refused_by_name(tmp_path, bad):
    with pytest.raises(ValueError, match="evaluate.cluster"):
        check_cluster(bad)
    with pytest.raises(ValueError, match="evaluate.cluster"):  # before the model is looked for
        ev.evaluate(tmp_path / "no-such-model", root=tmp_path, cluster=bad)


def test_a_cluster_with_a_gpu_device_is_refused(tmp_path):
    with pytest.raises(ValueError, match="runs its clips on CPUs"):
        ev.evaluate(tmp_path / "no-such-model", root=tmp_path, cluster="local", device="cuda")


@pytest.mark.slow
def test_ray_runner_keeps_order_and_builds_state_per_worker():
    with ClipRunner("local") as runner:
        assert runner.map(_square, list(range(7)), shared=_offset, desc="square") == [
            i * i + 1 for i in range(7)
        ]
    import ray

    assert not ray.is_initialized()  # the runner stopped the instance it started


@pytest.mark.slow
def test_v2s_evaluate_on_ray_writes_the_same_metrics_as_in_process(tiny_data_root, tmp_path):
    """`v2s evaluate` run as a user runs it (a fresh process each), VarietySound debug on 4 clips of the tiny data
    (its timbre references and own-reference MCD cross clips): metrics.json, per_clip.csv, per_category.csv and
    table.md with `--cluster local` equal, byte for byte, those without, and both print a line per generated and
    per scored clip."""
    package = _debug_package(tmp_path, "experiments/configs/varietysound/debug.yaml")
    files = ("metrics.json", "per_clip.csv", "per_category.csv", "table.md")
    outputs = {}
    for label, extra in (("process", []), ("ray", ["--cluster", "local"])):
        cmd = [
            sys.executable,
            "-m",
            "v2s_models.cli",
            "evaluate",
            str(package),
            "--root",
            str(tiny_data_root),
        ]
        cmd += ["--out", str(tmp_path / label), "--max-clips", "4", "--samples", "0", "--bootstrap", "100"]
        proc = subprocess.run(
            [*cmd, "--no-log", *extra], cwd=REPO, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        for desc in ("generate", "score"):
            for i in (1, 4):
                assert f"{desc}: {i}/4 clips" in proc.stderr, (label, proc.stderr[-2000:])
        outputs[label] = {f: (tmp_path / label / f).read_bytes() for f in files}
    doc = json.loads(outputs["ray"]["metrics.json"])
    assert doc["clips"] == 4 and "mcd_own_reference_db" in doc["systems"][doc["model"]]
    for f in files:
        assert outputs["ray"][f] == outputs["process"][f], f"{f} differs between Ray and the process"
