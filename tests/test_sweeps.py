"""Sweeps and ablation grids on Ray Tune (ray_jobs/sweep.py), with real components: a local Ray cluster started
with `ray start --head`, a real `ray job submit --working-dir`, the real solvers on the prepared tiny data set, and
a real MLflow SQLite store (through the loopback MLflow server the sweep starts for its concurrent trials).

- declarations: every shipped study and grid loads and checks (configs built), bad ones fail naming the key;
- the REGNET bottleneck study's smoke variant (4 trials, Optuna + ASHA, 2 at once) submitted as a Ray job: one
  parent MLflow run with 4 child runs, none left RUNNING, per-epoch metrics in each, the comparison table on the
  parent, the best finished trial registered as `candidate` with a tag naming its parent run; submitting the
  finished sweep again runs nothing;
- the REGNET regularizer ablation grid's smoke variant (a local Ray instance): every entry trained to the end,
  the table with one row per entry.

The grid's store is kept in the session's temporary folder (`run_grid_smoke`), so tests/test_mlflow_ui.py
looks at the same runs without training them again.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
STUDY = "experiments/sweeps/regnet_bottleneck.py"
GRID = "experiments/sweeps/ablations/regnet_regularizer.py"
UPLOAD_EXCLUDES = [".git", ".venv", "data", "mlruns", "mlartifacts", "ray_results", "mlflow.db", "test-artifacts",
                   "bench-out", ".pytest_cache", ".ruff_cache"]  # fmt: skip


# ------------------------------------------------------------------------------------------------- helpers
def make_project(dest: Path, tiny: Path) -> Path:
    """A project folder whose data/ is the prepared tiny data set (linked, read only) with its own params.yaml,
    so the sweep's mlflow.db, mlartifacts/ and ray_results/ stay in `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    if not (dest / "data").exists():
        (dest / "data").symlink_to(tiny / "data", target_is_directory=True)
    shutil.copy(tiny / "params.yaml", dest / "params.yaml")
    return dest


def base_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
           "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}  # fmt: skip
    for k in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI", "V2S_PROJECT_ROOT"):
        env.pop(k, None)
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_runs(uri: str, experiment: str) -> tuple[Any, list[Any]]:
    """(parent run, child runs) of a sweep's experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {uri}"
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1, f"expected one parent run, got {[r.info.run_name for r in parents]}"
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return parents[0], children


def comparison_rows(uri: str, run_id: str, tmp: Path) -> tuple[list[dict[str, str]], str]:
    """The parent run's comparison table: (CSV rows, Markdown text); asserts the PNG chart is there too."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    names = {Path(f.path).name for f in client.list_artifacts(run_id, "comparison")}
    assert {"comparison.md", "comparison.csv", "comparison.png"} <= names, f"{names=}"
    local = Path(client.download_artifacts(run_id, "comparison", str(tmp)))
    assert (local / "comparison.png").stat().st_size > 1000
    with open(local / "comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return rows, (local / "comparison.md").read_text()


def run_grid_smoke(basetemp: Path, tiny: Path) -> dict[str, Any]:
    """Runs the REGNET regularizer grid's smoke variant once per test session (a local Ray instance of 2 CPUs)
    and returns {"root", "uri", "experiment", "parent_run_id", "labels", "registered", "log", "seconds"}; later
    calls return the same result. V2S_TEST_SWEEP_GRID may name the result.json of an earlier run to reuse."""
    given = os.environ.get("V2S_TEST_SWEEP_GRID")  # a developer's shortcut: a result.json of an earlier run
    if given and Path(given).is_file():
        return json.loads(Path(given).read_text())
    out = basetemp / "v2s-sweep-grid"
    done = out / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    root = make_project(out / "project", tiny)
    ray_tmp = Path(f"/tmp/v2s-g-{uuid.uuid4().hex[:6]}")  # short: Ray's socket paths must stay < 108 chars
    log = out / "grid.log"
    t0 = time.perf_counter()
    try:
        with open(log, "w") as f:
            proc = subprocess.run(
                [sys.executable, "-m", "ray_jobs.sweep", GRID, "--smoke-test", "--root", str(root), "--num-cpus", "2",
                 "--register-as", "regnet-smoke"],  # a smoke sweep registers only when told to
                cwd=REPO, env=base_env(RAY_TMPDIR=str(ray_tmp)), stdout=f, stderr=subprocess.STDOUT, timeout=900,
            )  # fmt: skip
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    seconds = time.perf_counter() - t0
    text = log.read_text()
    assert proc.returncode == 0, f"grid sweep failed (rc {proc.returncode}):\n{text[-6000:]}"
    # the summary line; Ray may print worker log lines after it
    summary = json.loads(next(line for line in reversed(text.splitlines()) if line.startswith('{"name": ')))
    from ray_jobs.studies import load_sweep

    result = {
        "root": str(root), "uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": summary["name"],
        "parent_run_id": summary["parent_run_id"], "labels": load_sweep(GRID, smoke=True).labels,
        "registered": summary["registered"], "log": str(log), "seconds": seconds,
    }  # fmt: skip
    done.write_text(json.dumps(result))
    return result


# ------------------------------------------------------------------------------------------- declarations
SHIPPED = ["regnet_bottleneck", "varietysound_bottleneck", "zhou_width", "varietysound_table7", "varietysound_table8",
           "regnet_regularizer", "zhou_encoders", "correlation_subsets"]  # fmt: skip


@pytest.mark.parametrize("study", SHIPPED)
def test_shipped_declarations_load_and_check(study: str) -> None:
    from ray_jobs.studies import load_sweep, trial_config

    for smoke in (False, True):
        sweep = load_sweep(study, smoke=smoke)
        assert sweep.question and sweep.objective.metric.startswith("val/")
        if sweep.kind == "grid":
            for label in sweep.grid:
                assert trial_config(sweep, label=label)["name"].endswith(label)
    assert sweep.smoke and sweep.name == f"{study}-smoke"


def test_grid_entries_change_what_they_declare() -> None:
    from ray_jobs.studies import load_sweep, trial_config

    t7 = load_sweep("varietysound_table7")
    assert set(trial_config(t7, label="proposed")["model"]) == {"generator", "tdad", "mel_discriminator"}
    no_tdad = trial_config(t7, label="without_tdad")
    assert "tdad" not in no_tdad["model"] and "tdad" not in no_tdad["optim"]
    zhou = load_sweep("zhou_encoders", smoke=True)
    assert trial_config(zhou, label="flow")["model"]["model"]["preset"] == "flow_debug"
    corr = load_sweep("correlation_subsets")
    assert trial_config(corr, label="low_correlation")["data"]["manifest"] == "data/filtered/low.jsonl"
    regnet = load_sweep("regnet_bottleneck")
    cfg = trial_config(regnet, {"model.generator.aux_dim": 2, "losses.mel": 123.0})
    assert cfg["model"]["generator"]["aux_dim"] == 2 and cfg["losses"]["mel"] == 123.0


def test_bad_declarations_name_the_key(tmp_path: Path) -> None:
    from ray_jobs.studies import StudyError, load_sweep, resolve_metric

    def declaration(body: str) -> Path:
        path = tmp_path / f"s{uuid.uuid4().hex[:6]}.py"
        path.write_text('"""A question."""\nBASE = "experiments/configs/regnet/debug.yaml"\n'
                        'OBJECTIVE = {"metric": "val/onset_corr", "mode": "max"}\n' + body)  # fmt: skip
        return path

    cases = {
        'SPACE = {"model.generator.aux_dimm": {"choice": [2, 4]}}': "aux_dimm",
        'SPACE = {"model.generatr.aux_dim": {"choice": [2, 4]}}': "model.generatr",
        'SPACE = {"losses.mel": {"loguniform": [0, 10]}}': "SPACE.losses.mel.loguniform",
        'SPACE = {"losses.mel": {"normal": [0, 10]}}': "SPACE.losses.mel",
        'GRID = {"a/b": {}}': "GRID.a/b",
        'GRID = {"x": {"model.tdad": "__delete__"}}': "DELETE names a key that does not exist",
        'GRID = {"x": {}}\nASHA = {"grace_period": 1}': "ASHA",
        'SPACE = {"losses.mel": {"choice": [1.0]}}\nNUM_SAMPLE = 3': "NUM_SAMPLE",
        'SPACE = {"losses.mel": {"choice": [1.0]}}\nASHA = {"grace_period": 5}': "ASHA.grace_period",
        'SPACE = {"losses.mel": {"choice": [1.0]}}\nSEARCH = {"n_startup_trial": 2}': "SEARCH",
        'SPACE = {"losses.mel": {"choice": [1.0]}}\nSEARCH = {"n_startup_trials": 0}': "SEARCH.n_startup_trials",
        'SPACE = {"losses.mel": {"choice": [1.0]}}\nSEARCH = {"multivariate": 1}': "SEARCH.multivariate",
        'GRID = {"x": {}}\nSEARCH = {"n_startup_trials": 2}': "SEARCH",
        'SPACE = {"losses.mel": {"choice": [1.0]}}\nOBJECTIVE = {"metric": "val/x", "mode": "max", "window": 0}': "OBJECTIVE.window",
        'SPACE = {"losses.mel": {"choice": [1.0]}}\nOBJECTIVE = {"metric": "val/x", "mode": "max", "last": 2}': "OBJECTIVE",
    }
    for body, expected in cases.items():
        with pytest.raises(StudyError, match=expected.replace(".", r"\.").replace("/", "/")):
            load_sweep(declaration(body))
    with pytest.raises(StudyError, match="SMOKE"):
        load_sweep(declaration('SPACE = {"losses.mel": {"choice": [1.0]}}'), smoke=True)
    with pytest.raises(StudyError, match="OBJECTIVE.mode"):
        load_sweep(
            declaration(
                'SPACE = {"losses.mel": {"choice": [1.0]}}\nOBJECTIVE = {"metric": "val/x", "mode": "up"}'
            )
        )
    with pytest.raises(StudyError, match="not found"):
        load_sweep("no_such_study")
    assert resolve_metric({"val/test_split/onset_corr": 0.5}, "val/onset_corr") == 0.5
    with pytest.raises(KeyError, match="val/nll"):
        resolve_metric({"val/test_split/onset_corr": 0.5}, "val/nll")


def test_cli_rejects_a_bad_study_before_starting_ray(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ray_jobs.sweep import main

    assert main(["no_such_study", "--root", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err
    assert main([STUDY, "--set", "model.generator.nope=1", "--root", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err
    assert main([GRID, "--num-samples", "3", "--root", str(tmp_path)]) == 2


def test_a_grid_on_missing_subsets_fails_before_ray_starts(tmp_path: Path) -> None:
    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import check_data, run_sweep

    corr = load_sweep("correlation_subsets")
    (tmp_path / "data/prepared").mkdir(parents=True)
    (tmp_path / "data/prepared/manifest.jsonl").write_text("")
    with pytest.raises(FileNotFoundError, match=r"GRID\.high_correlation: .*high\.jsonl.*dvc repro filter"):
        run_sweep(corr, root=tmp_path, register=False)
    assert not (tmp_path / "ray_results").exists() and not (tmp_path / "mlflow.db").exists()
    (tmp_path / "data/filtered").mkdir()
    (tmp_path / "data/filtered/high.jsonl").write_text("")
    with pytest.raises(FileNotFoundError, match=r"GRID\.low_correlation"):
        check_data(corr, tmp_path)
    (tmp_path / "data/filtered/low.jsonl").write_text("")
    check_data(corr, tmp_path)


def test_a_trial_larger_than_the_cluster_is_refused() -> None:
    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import check_fits, trial_resources

    check_fits({"CPU": 2.0}, 2.0, 0.0, 0.1)
    with pytest.raises(ValueError, match=r"needs 2\.1 CPUs .* has 2: .*--set scaling\.cpus_per_worker=1\.9"):
        check_fits({"CPU": 2.0}, 2.1, 0.0, 0.1)
    with pytest.raises(ValueError, match=r"needs 1 GPUs .* has 0: --set scaling\.use_gpu=false"):
        check_fits({"CPU": 16.0}, 1.1, 1.0, 0.1)
    for study in SHIPPED:  # every shipped declaration fits a 2-core machine, one trial per core
        cpus, gpus, _ = trial_resources(load_sweep(study))
        assert (cpus, gpus) == (1.0, 0.0), study
        check_fits({"CPU": 2.0}, cpus, gpus, 0.1)


def test_studies_do_not_repeat_points_of_a_finite_space() -> None:
    """Seeded TPE repeats points of a small categorical space (5 distinct in 8 draws over 12 points, with seed 0);
    the sweep's searcher gives 8 distinct ones, deterministically, and repeats only once every point was seen."""
    from ray.tune.search.optuna import OptunaSearch

    from ray_jobs.sweep import tune_space
    from ray_jobs.sweep_trial import DistinctOptunaSearch, finite_size

    space = {"a": {"choice": [4, 32, 256]}, "b": {"choice": ["x", "y"]}, "c": {"choice": [1.0, 10.0]}}
    assert finite_size(space) == 12 and finite_size({**space, "d": {"randint": [1, 4]}}) == 48
    assert finite_size({"a": {"loguniform": [1.0, 10.0]}}) is None

    def draws(searcher: Any, n: int) -> list[str]:
        searcher.set_search_properties("objective", "max", tune_space(space))
        out = []
        for i in range(n):
            out.append(json.dumps(searcher.suggest(f"t{i}"), sort_keys=True))
            searcher.on_trial_complete(f"t{i}", {"objective": float(i % 3), "training_iteration": 1})
        return out

    plain = draws(OptunaSearch(seed=0), 8)
    assert len(set(plain)) < 8  # the failure this searcher exists for (fixed by the seed)
    distinct = draws(DistinctOptunaSearch(space, seed=0), 8)
    assert len(set(distinct)) == 8 and distinct == draws(DistinctOptunaSearch(space, seed=0), 8)
    # once TPE's model has a favourite it proposes it on nearly every draw: the searcher then takes the unseen
    # point nearest to it (here every draw after 2 start-up trials, with (256, y, 10.0) scoring best)
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=2)
    searcher = DistinctOptunaSearch(space, sampler=sampler)
    searcher.set_search_properties("objective", "max", tune_space(space))
    points = []
    for i in range(12):
        config = searcher.suggest(f"t{i}")
        points.append(json.dumps(config, sort_keys=True))
        score = float(config["a"] == 256) + float(config["b"] == "y") + float(config["c"] == 10.0)
        searcher.on_trial_complete(f"t{i}", {"objective": score, "training_iteration": 1})
    assert len(set(points)) == 12  # every point once, TPE's favourites first
    tiny = {"a": {"choice": [1, 2]}}
    searcher = DistinctOptunaSearch(tiny, seed=0)
    searcher.set_search_properties("objective", "max", tune_space(tiny))
    got = [searcher.suggest(f"t{i}")["a"] for i in range(3)]
    assert sorted(got[:2]) == [1, 2] and got[2] in (1, 2)  # every point seen: a repeat is allowed


def test_nearest_unseen_point() -> None:
    from ray_jobs.sweep_trial import nearest_unseen

    choices = {"a": [4, 32, 256], "b": ["x", "y", "z"]}
    key = lambda p: json.dumps(p, sort_keys=True)  # noqa: E731
    seen = {key({"a": 32, "b": "x"})}
    # ordered numbers: one step along `a` (4 or 256, 0.5 each) is nearer than another category (1)
    got = {key(nearest_unseen({"a": 32, "b": "x"}, choices, seen, seed=s)) for s in range(20)}
    assert got == {key({"a": 4, "b": "x"}), key({"a": 256, "b": "x"})}  # a tie, broken by the seed
    seen |= {key({"a": a, "b": "x"}) for a in (4, 256)}
    assert nearest_unseen({"a": 32, "b": "x"}, choices, seen)["a"] == 32
    every = {key({"a": a, "b": b}) for a in choices["a"] for b in choices["b"]}
    assert nearest_unseen({"a": 4, "b": "x"}, choices, every) is None


def test_objective_window_averages_the_last_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    from ray.tune.integration.ray_train import TuneReportCallback

    from ray_jobs.sweep_trial import OBJECTIVE_KEY, ReportToTune

    sent: list[float] = []
    monkeypatch.setattr(TuneReportCallback, "__init__", lambda self: None)  # (it must run in a Tune session)
    monkeypatch.setattr(
        TuneReportCallback, "after_report", lambda self, ctx, m, ckpt: sent.append(m[0][OBJECTIVE_KEY])
    )
    cb = ReportToTune("val/onset_corr", window=3)
    for v in (0.1, 0.4, -0.2, 0.7):
        cb.after_report(None, [{"val/test_split/onset_corr": v}], None)
    assert sent == pytest.approx([0.1, 0.25, 0.1, 0.3])
    sent.clear()
    plain = ReportToTune("val/onset_corr")
    for v in (0.1, 0.4):
        plain.after_report(None, [{"val/onset_corr": v}], None)
    assert sent == pytest.approx([0.1, 0.4])


def test_concurrency_follows_the_cluster() -> None:
    from ray_jobs.studies import load_sweep
    from ray_jobs.sweep import derive_concurrency, trial_resources

    cpus, gpus, epochs = trial_resources(load_sweep("regnet_bottleneck", smoke=True))
    assert (cpus, gpus, epochs) == (pytest.approx(1.0), 0.0, 2)
    assert derive_concurrency({"CPU": 2.0}, cpus, gpus) == 2
    assert derive_concurrency({"CPU": 0.5}, cpus, gpus) == 1
    assert derive_concurrency({"CPU": 16.0, "GPU": 2.0}, 2.1, 1.0) == 2


# ----------------------------------------------------------------------------------------- a real cluster
def _session_pids(sid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "-s", str(sid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory, tiny_data_root: Path) -> Iterator[dict[str, Any]]:
    """`ray start --head --block` (2 CPUs, private ports and temp dir, auth disabled: loopback only), with
    V2S_PROJECT_ROOT pointing at a project over the tiny data. Stopped by signalling the session it runs in (only
    the processes this fixture started; `ray stop` would stop every Ray cluster on the machine)."""
    root = make_project(tmp_path_factory.mktemp("sweep-project"), tiny_data_root)
    tmp = Path(f"/tmp/v2s-c-{uuid.uuid4().hex[:6]}")
    ports = {k: free_port() for k in ("gcs", "dashboard", "client", "agent")}
    env = base_env(RAY_TMPDIR=str(tmp), RAY_AUTH_MODE="disabled", V2S_PROJECT_ROOT=str(root))
    log = open(tmp_path_factory.getbasetemp() / "ray-head.log", "w")  # noqa: SIM115 (closed below)
    head = subprocess.Popen(
        [str(VENV_BIN / "ray"), "start", "--head", "--block", f"--port={ports['gcs']}", "--num-cpus=2",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={ports['dashboard']}",
         f"--ray-client-server-port={ports['client']}", f"--dashboard-agent-listen-port={ports['agent']}",
         "--disable-usage-stats"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{dashboard}/api/version", timeout=3):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"the Ray head did not start: {(tmp_path_factory.getbasetemp() / 'ray-head.log').read_text()[-3000:]}"
                    )
                time.sleep(1)
        yield {"root": root, "dashboard": dashboard, "env": env, "gcs": f"127.0.0.1:{ports['gcs']}"}
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            pids = _session_pids(head.pid)
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while _session_pids(head.pid) and time.monotonic() < deadline:
                time.sleep(0.5)
        head.wait(timeout=10)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
def test_smoke_sweep_as_a_ray_job(ray_cluster: dict[str, Any], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    root, env = ray_cluster["root"], ray_cluster["env"]
    t0 = time.perf_counter()
    job = subprocess.run(
        [str(VENV_BIN / "ray"), "job", "submit", "--address", ray_cluster["dashboard"], "--working-dir", str(REPO),
         "--runtime-env-json", json.dumps({"excludes": UPLOAD_EXCLUDES}),
         "--", "python", "-m", "ray_jobs.sweep", STUDY, "--smoke-test",
         "--register-as", "regnet-smoke"],  # a smoke sweep registers only when told to
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    logs = job.stdout + job.stderr
    (tmp_path / "job.log").write_text(logs)
    print(f"smoke sweep job: {seconds:.0f} s, log {tmp_path / 'job.log'}")
    assert job.returncode == 0, f"ray job submit failed ({job.returncode}):\n{logs[-8000:]}"
    assert f"[sweep] python: {VENV_BIN}" in logs, "the job must run the project's virtual environment"
    assert "working_dir_files" in logs, "the job runs in the uploaded working directory"

    uri = f"sqlite:///{root / 'mlflow.db'}"
    parent, children = child_runs(uri, "regnet_bottleneck-smoke")
    assert parent.info.status == "FINISHED"
    assert len(children) == 4, [c.info.run_name for c in children]
    statuses = sorted(c.info.status for c in children)
    assert "RUNNING" not in statuses and set(statuses) <= {"FINISHED", "KILLED"}, statuses
    finished = [c for c in children if c.info.status == "FINISHED"]
    assert finished, "at least the first trial runs to its last epoch"
    client = MlflowClient(tracking_uri=uri)
    for c in children:
        steps = [m.step for m in client.get_metric_history(c.info.run_id, "train/g_total")]
        killed = c.info.status == "KILLED"
        assert steps and steps == sorted(set(steps)), f"{c.info.run_name}: per-epoch metrics {steps}"
        assert killed or steps == [1, 2], f"{c.info.run_name}: a finished trial logs both epochs, got {steps}"
        assert killed == (c.data.tags.get("v2s.sweep.stopped_early") == "true")
        assert c.data.params["model.generator.aux_type"] in ("lstm_last", "lstm_sample", "conv")

    rows, md = comparison_rows(uri, parent.info.run_id, tmp_path / "table")
    assert len(rows) == 4 and {r["mlflow_run_id"] for r in rows} == {c.info.run_id for c in children}
    assert "val/onset_corr (objective)" in rows[0] and "(best)" in md

    version = client.get_model_version_by_alias("regnet-smoke", "candidate")
    assert version.tags["v2s.sweep.parent_run_id"] == parent.info.run_id
    assert version.run_id == parent.data.tags["v2s.sweep.best_run_id"]
    assert version.run_id in {c.info.run_id for c in finished}
    assert len(client.search_model_versions("name = 'regnet-smoke'")) == 1

    # submitting the finished sweep again runs no trial (nothing new in MLflow, no Ray started)
    again = subprocess.run([sys.executable, "-m", "ray_jobs.sweep", STUDY, "--smoke-test", "--root", str(root)],
                           cwd=REPO, env=base_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already finished" in again.stdout
    assert len(child_runs(uri, "regnet_bottleneck-smoke")[1]) == 4


@pytest.mark.slow
def test_ablation_grid_runs_every_entry_and_writes_its_table(
    tmp_path_factory: pytest.TempPathFactory, tiny_data_root: Path, tmp_path: Path
) -> None:
    grid = run_grid_smoke(tmp_path_factory.getbasetemp(), tiny_data_root)
    print(f"grid smoke: {grid['seconds']:.0f} s, log {grid['log']}")
    parent, children = child_runs(grid["uri"], grid["experiment"])
    assert parent.info.run_id == grid["parent_run_id"] and parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children) == sorted(grid["labels"])
    assert all(c.info.status == "FINISHED" for c in children), "a grid runs every entry to completion"
    rows, md = comparison_rows(grid["uri"], parent.info.run_id, tmp_path)
    assert [r["variant"] for r in rows] == grid["labels"], "one row per entry, in the declaration's order"
    assert all(r["status"] == "finished" and r["val/onset_corr (objective)"] for r in rows)
    for label in grid["labels"]:
        assert f"| {label}" in md or f"| **{label}**" in md
    assert grid["registered"] == "models:/regnet-smoke@candidate"


@pytest.mark.slow
def test_a_killed_sweep_resumes_without_rerunning_finished_trials(
    tiny_data_root: Path, tmp_path: Path
) -> None:
    """The grid's driver is killed (SIGKILL) while its second trial trains; the same command restores the Tune
    experiment: the finished trial is not trained again, the interrupted one is, into the same parent run."""
    root = make_project(tmp_path / "project", tiny_data_root)
    ray_tmp = Path(f"/tmp/v2s-r-{uuid.uuid4().hex[:6]}")
    cmd = [sys.executable, "-m", "ray_jobs.sweep", GRID, "--smoke-test", "--root", str(root), "--num-cpus", "2",
           "--max-concurrent", "1"]  # fmt: skip
    env = base_env(RAY_TMPDIR=str(ray_tmp))
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    try:
        with open(first_log, "w") as f:
            driver = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while "[train] done: without_regularizer" not in first_log.read_text():
            assert driver.poll() is None and time.monotonic() < deadline, first_log.read_text()[-4000:]
            time.sleep(1)
        while "Trial conv started" not in first_log.read_text() and time.monotonic() < deadline:
            time.sleep(1)
        time.sleep(5)
        driver.kill()  # no cleanup at all: Ray's processes share its fate, the MLflow server dies with it
        driver.wait()
        state = json.loads((root / "ray_results/sweeps/regnet_regularizer-smoke/v2s_sweep.json").read_text())
        assert state["status"] == "RUNNING"
        with open(second_log, "w") as f:
            again = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=900)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    text = second_log.read_text()
    assert again.returncode == 0, text[-6000:]
    assert "restoring" in text
    assert "[train] done: without_regularizer" not in text, "the finished trial must not train again"
    assert "[train] done: conv" in text
    parent, children = child_runs(f"sqlite:///{root / 'mlflow.db'}", "regnet_regularizer-smoke")
    assert parent.info.run_id == state["parent_run_id"] and parent.info.status == "FINISHED"
    assert sorted(c.info.run_name for c in children if c.info.status == "FINISHED") == [
        "conv",
        "without_regularizer",
    ]
    assert all(c.info.status in ("FINISHED", "KILLED") for c in children)
