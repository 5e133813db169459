"""The stability table's script (tests/bench/stability.py, issue 13 item 3): its plan, its arithmetic on made-up
evaluations, the package comparison behind the determinism check, and, slow, a real end-to-end run of both debug
configs (Ray Train, the evaluation, the tables) that a second call resumes without training again."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch

from ray_jobs.train import parse_overrides
from tests.bench import stability
from tests.bench.stability import (
    FIGURES,
    Run,
    _experiments,
    build_parser,
    compare_packages,
    eval_settings,
    main,
    markdown,
    plan,
    run_row,
    summarize,
    train_command,
    write_tables,
)
from v2s_models.evaluation.baselines import CONTROL
from v2s_models.package import WEIGHTS_FILE


def _metrics(
    name: str, f1: float, offset: float, mcd: float, control_f1: float, same_category_f1: float = 0.08
) -> dict[str, Any]:
    """The evaluation's metrics.json layout: systems -> metric -> {value, ci95}."""
    own = {"onset_f1": f1, "av_offset_abs_ms": offset, "mcd_db": mcd, "av_offset_ms": -offset}
    return {
        "model": name,
        "clips": 32,
        "systems": {
            name: {k: {"value": v, "ci95": [v - 1, v + 1]} for k, v in own.items()},
            CONTROL: {"onset_f1": {"value": control_f1, "ci95": [0, 1]}, "mcd_db": {"value": 1.0}},
            "silence": {"onset_f1": {"value": 0.0}},
            "same_category": {"onset_f1": {"value": same_category_f1}},
        },
    }


def test_plan_crosses_seeds_and_threads_seed_outermost() -> None:
    runs = plan({"a": {"config": "c.yaml", "set": {"epochs": 3}}}, [0, 1], [1, 2], {"batch_size": 2})
    assert [(r.seed, r.threads) for r in runs] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    assert runs[3].name == "a-seed1-threads2"
    assert runs[3].train_overrides() == {
        "epochs": 3,
        "batch_size": 2,
        "seed": 1,
        "scaling.cpus_per_worker": 2,
    }


def test_train_command_sets_seed_threads_and_overrides_as_training_reads_them(tmp_path: Path) -> None:
    run = Run(
        "k", "experiments/configs/regnet/debug.yaml", 2, 2, {"losses.mel": 100.0, "data.val_split": "test"}
    )
    cmd = train_command(run, root=tmp_path, storage=tmp_path / "s")
    assert cmd[cmd.index("--run-name") + 1] == "k-seed2-threads2"
    assert cmd[cmd.index("--num-cpus") + 1] == "2", "a local Ray instance must hold the worker's CPUs"
    assert "--no-tracking" in cmd
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--set"]
    assert parse_overrides(sets) == {
        "losses.mel": 100.0,
        "data.val_split": "test",
        "seed": 2,
        "scaling.cpus_per_worker": 2,
    }
    assert Path(cmd[3]).is_absolute() and Path(cmd[3]).is_file()


def test_experiments_from_a_params_file_pass_the_manifest_as_training_does(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "train:\n  experiments:\n"
        "    a: {config: experiments/configs/regnet/debug.yaml, manifest: data/filtered/high.jsonl, set: {epochs: 1}}\n"
        "    b: {config: experiments/configs/varietysound/debug.yaml, set: {}}\n"
        "evaluate: {split: val, max_clips: 7}\n"
    )
    args = build_parser().parse_args(["--params", str(params), "--out", str(tmp_path)])
    experiments = _experiments(args)
    assert experiments["a"]["set"] == {"data.manifest": "data/filtered/high.jsonl", "epochs": 1}
    assert experiments["b"]["set"] == {}
    args = build_parser().parse_args(["--params", str(params), "--experiments", "b"])
    assert list(_experiments(args)) == ["b"]
    cfg = eval_settings(params, None, 0)
    assert (cfg["split"], cfg["max_clips"], cfg["samples"]) == ("val", 7, 0)
    assert eval_settings(params, 3, None)["max_clips"] == 3


def test_run_row_reads_the_model_and_the_wrong_timing_control() -> None:
    row = run_row(Run("m", "c", 0, 1), _metrics("m", 0.3, 40.0, 47.0, 0.1))
    assert (row["onset_f1"], row["av_offset_abs_ms"], row["mcd_db"]) == (0.3, 40.0, 47.0)
    assert row["control_onset_f1"] == 0.1 and row["wrong_timing_onset_f1"] == 0.08
    assert row["beats_wrong_timing"] is True
    tie = run_row(Run("m", "c", 0, 1), _metrics("m", 0.1, 40.0, 47.0, 0.1))
    assert tie["beats_wrong_timing"] is False, "a tie does not beat the control"
    below = run_row(Run("m", "c", 0, 1), _metrics("m", 0.3, 40.0, 47.0, 0.1, same_category_f1=0.3))
    assert below["beats_wrong_timing"] is False, "a tie with the same-category baseline beats nothing"


def _rows() -> list[dict[str, Any]]:
    values = [(0, 1, 0.30, 40.0, 47.0, 0.1), (0, 2, 0.20, 60.0, 45.0, 0.1), (1, 1, 0.10, 50.0, 49.0, 0.15)]
    rows = [run_row(Run("m", "c", s, t), _metrics("m", *v)) for s, t, *v in values]
    rows.append(run_row(Run("n", "c", 0, 1), _metrics("n", 0.5, 10.0, 30.0, 0.2)))
    return rows


def test_summary_arithmetic() -> None:
    per_model = {s["model"]: s for s in summarize(_rows())}
    m = per_model["m"]
    assert m["runs"] == 3 and m["beat_wrong_timing"] == 2
    assert m["onset_f1_mean"] == pytest.approx(0.2)
    assert m["onset_f1_std"] == pytest.approx(0.1), "the sample standard deviation (n - 1)"
    assert (m["onset_f1_min"], m["onset_f1_max"]) == (0.1, 0.3)
    assert m["mcd_db_std"] == pytest.approx(statistics.stdev([47.0, 45.0, 49.0]))
    assert m["av_offset_abs_ms_mean"] == pytest.approx(50.0)
    n = per_model["n"]
    assert n["runs"] == 1 and n["onset_f1_mean"] == 0.5 and math.isnan(n["onset_f1_std"])
    by_threads = {(s["model"], s["threads"]): s for s in summarize(_rows(), ("model", "threads"))}
    assert by_threads[("m", 1)]["runs"] == 2 and by_threads[("m", 1)]["onset_f1_mean"] == pytest.approx(0.2)
    assert by_threads[("m", 2)]["onset_f1_mean"] == pytest.approx(0.2)


def test_summary_leaves_out_missing_figures() -> None:
    rows = _rows()[:3]
    rows[0]["mcd_db"] = math.nan
    s = summarize(rows)[0]
    assert s["mcd_db_mean"] == pytest.approx(47.0) and s["mcd_db_min"] == 45.0


def test_tables_written_and_strict_json(tmp_path: Path) -> None:
    md = write_tables(tmp_path, _rows(), {"evaluate": {"split": "test"}})
    assert md == (tmp_path / "stability.md").read_text()
    assert "| m | 1 | 1 | 0.100 | 50.0 | 49.0 | 0.080 | 0.150 | **no** |" in md
    assert "| m | 3 | 2/3 | 0.200 ± 0.100 [0.100, 0.300] |" in md
    lines = (tmp_path / "stability.csv").read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("model,seed,threads,run,onset_f1")

    def refuse(c: str) -> None:
        raise ValueError(f"not strict JSON: {c}")

    doc = json.loads((tmp_path / "stability.json").read_text(), parse_constant=refuse)
    assert len(doc["runs"]) == 4 and doc["per_model"][1]["onset_f1_std"] is None
    assert {s["threads"] for s in doc["per_model_and_thread_count"]} == {1, 2}


def test_markdown_of_no_rows_is_only_the_header() -> None:
    assert markdown([], {}).count("\n") == 2


def test_compare_packages(tmp_path: Path) -> None:
    state = {"generator": {"w": torch.ones(3), "b": torch.zeros(2)}}
    for name, s in (("a", state), ("b", state)):
        (tmp_path / name).mkdir()
        torch.save(s, tmp_path / name / WEIGHTS_FILE)
    assert compare_packages(tmp_path / "a", tmp_path / "b") == {"generator": 0.0}
    (tmp_path / "c").mkdir()
    torch.save({"generator": {"w": torch.ones(3) * 1.5, "b": torch.zeros(2)}}, tmp_path / "c" / WEIGHTS_FILE)
    assert compare_packages(tmp_path / "a", tmp_path / "c") == {"generator": 0.5}
    (tmp_path / "d").mkdir()
    torch.save({"generator": {"w": torch.ones(3)}}, tmp_path / "d" / WEIGHTS_FILE)
    assert compare_packages(tmp_path / "a", tmp_path / "d") == {"generator": math.inf}
    assert main(["--compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert main(["--compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 1


@pytest.mark.slow
def test_end_to_end_on_the_debug_configs(tiny_data_root: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "stability"
    args = [
        "--root",
        str(tiny_data_root),
        "--out",
        str(out),
        "--max-clips",
        "4",
        "--seeds",
        "0",
        "--threads",
        "1",
    ]
    # one system keeps the suite short; the plan over several systems, seeds and threads is unit-tested above
    args += [
        "--config",
        "varietysound_debug=experiments/configs/varietysound/debug.yaml",
        "--set",
        "epochs=1",
    ]
    rc = main(args)
    rows = json.loads((out / "stability.json").read_text())["runs"]
    assert [r["run"] for r in rows] == ["varietysound_debug-seed0-threads1"]
    for r in rows:
        assert r["clips"] == 4
        assert all(isinstance(r[k], float) and math.isfinite(r[k]) for k in FIGURES), r
        metrics = json.loads((out / "evaluations" / r["run"] / "metrics.json").read_text())
        assert metrics["split"] == "test" and metrics["clips"] == 4
        assert (out / "storage" / r["run"] / "package" / WEIGHTS_FILE).is_file()
    assert rc == (0 if all(r["beats_wrong_timing"] for r in rows) else 1)
    weights = out / "storage" / rows[0]["run"] / "package" / WEIGHTS_FILE
    mtime = weights.stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == rc
    said = capsys.readouterr().out
    assert said.count("done earlier") == 1 and "training:" not in said, said
    assert weights.stat().st_mtime_ns == mtime
    assert json.loads((out / "stability.json").read_text())["runs"] == rows


def test_do_run_resumes_only_runs_made_with_the_same_settings(tmp_path: Path, monkeypatch: Any) -> None:
    """Without Ray: a stand-in training writes a package, a stand-in evaluation a metrics.json."""
    calls: list[str] = []

    def fake_train(cmd: list[str], **_: Any) -> None:
        name = cmd[cmd.index("--run-name") + 1]
        calls.append(f"train {name}")
        (Path(cmd[cmd.index("--storage") + 1]) / name / "package").mkdir(parents=True)

    def fake_evaluate(package: Path, out: Path, *, name: str, **_: Any) -> Path:
        calls.append(f"evaluate {out.name}")
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps(_metrics(name, 0.3, 40.0, 47.0, 0.1)))
        return out / "metrics.json"

    monkeypatch.setattr(stability.subprocess, "run", fake_train)
    monkeypatch.setattr(stability, "evaluate_package", fake_evaluate)
    run = Run("m", "c.yaml", 0, 1)
    cfg = {"split": "test", "max_clips": None}
    row = stability.do_run(run, root=tmp_path, out=tmp_path / "out", cfg=cfg)
    assert row["beats_wrong_timing"] and calls == ["train m-seed0-threads1", "evaluate m-seed0-threads1"]
    assert stability.do_run(run, root=tmp_path, out=tmp_path / "out", cfg=cfg) == row
    assert len(calls) == 2, "a finished run is not redone"
    stability.do_run(run, root=tmp_path, out=tmp_path / "out", cfg={**cfg, "max_clips": 4})
    assert calls[2:] == ["train m-seed0-threads1", "evaluate m-seed0-threads1"], "other settings: made again"
    (tmp_path / "out" / "evaluations" / run.name / stability.RUN_FILE).unlink()  # evaluation interrupted
    stability.do_run(run, root=tmp_path, out=tmp_path / "out", cfg=cfg)
    assert calls[4:] == ["evaluate m-seed0-threads1"], "a package without its evaluation is only evaluated"


def test_report_only_tables_the_finished_runs(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    def no_training(*_: Any, **__: Any) -> None:
        raise AssertionError("--report-only must not train")

    monkeypatch.setattr(stability.subprocess, "run", no_training)
    out = tmp_path / "out"
    args = ["--root", str(tmp_path), "--out", str(out), "--config", "m=c.yaml", "--seeds", "0", "1"]
    args += ["--threads", "1", "--max-clips", "4"]
    cfg = stability.eval_settings(stability.REPO / "params.yaml", 4, 0)
    done = Run("m", "c.yaml", 1, 1)
    eval_dir = out / "evaluations" / done.name
    eval_dir.mkdir(parents=True)
    (out / "storage" / done.name / "package").mkdir(parents=True)
    (eval_dir / "metrics.json").write_text(json.dumps(_metrics("m", 0.3, 40.0, 47.0, 0.1)))
    (eval_dir / stability.RUN_FILE).write_text(json.dumps(stability._record(done, root=tmp_path, cfg=cfg)))
    assert main([*args, "--report-only"]) == 0
    said = capsys.readouterr().out
    assert "m-seed0-threads1: not finished, left out" in said
    assert [r["run"] for r in json.loads((out / "stability.json").read_text())["runs"]] == [done.name]
