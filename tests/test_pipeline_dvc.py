"""A real `dvc repro` of the whole pipeline on the tiny SynthFoley set, in a temporary copy of the repository:
data stages, then the train and evaluate stages with the debug presets (1 epoch), the correlation filter, then
the report."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
PREPARED = "data/prepared/manifest.jsonl"
ZHOU_DEBUG = "experiments/configs/zhou/flow_debug.yaml"  # params.yaml zhou_flow_demo, debug size
AUTOREGRESSIVE = ("zhou_flow_debug", "seq2seq_debug")


def _copy_repo(dst: Path) -> None:
    files = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True, capture_output=True
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file() and not rel.startswith("tests/") and rel != "dvc.lock":  # the checkout's own runs
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _dvc(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args],
        cwd=repo,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _set_params(repo: Path, **updates: object) -> None:
    p = repo / "params.yaml"
    params = yaml.safe_load(p.read_text())
    for dotted, value in updates.items():
        node = params
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node[k]
        node[leaf] = value
    p.write_text(yaml.safe_dump(params, sort_keys=False))


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("v2s_repo")
    _copy_repo(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _set_params(
        repo,
        **{
            "generate.size": "tiny",
            "train.experiments": {
                "regnet_debug": {
                    "config": "experiments/configs/regnet/debug.yaml",
                    "manifest": PREPARED,
                    "set": {"epochs": 1},
                },
                "varietysound_debug": {
                    "config": "experiments/configs/varietysound/debug.yaml",
                    "manifest": PREPARED,
                    "set": {"epochs": 1},
                },
                # the autoregressive systems (issue 13 item 5): SampleRNN generates only evaluate.excerpt_seconds
                AUTOREGRESSIVE[0]: {
                    "config": ZHOU_DEBUG,
                    "manifest": PREPARED,
                    "set": {"epochs": 1},
                },
                AUTOREGRESSIVE[1]: {  # trains on the filter stage's output: DVC runs the filter first
                    "config": "experiments/configs/correlation/seq2seq_debug.yaml",
                    "manifest": "data/filtered/high.jsonl",
                    "set": {"epochs": 1},
                },
            },
            "filter.tower": {
                "config": "experiments/configs/correlation/tower_debug.yaml",
                "set": {"epochs": 1},
            },
            "evaluate.max_clips": 4,
            "evaluate.samples": 1,
            "evaluate.excerpt_seconds": 1.0,  # SampleRNN generates sample by sample: keep the tiny run short
            "evaluate.retrieval_seconds": 1.0,
        },
    )
    _dvc(repo, "repro")
    return repo


def test_repro_tiny_produces_paper_features(tiny_repo):
    rows = [
        json.loads(line) for line in (tiny_repo / "data/prepared/manifest.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 16 and all(r["status"] == "ok" for r in rows), rows
    assert {r["category"] for r in rows} == {
        "drum",
        "hammer",
        "bouncing_ball",
        "gun",
        "fireworks",
        "dog_bark",
        "cough",
        "cry",
    }
    assert {r["split"] for r in rows} <= {"train", "val", "test"} and "train" in {r["split"] for r in rows}
    for r in rows:
        regnet = Path(r["features"]["regnet"])
        regnet = regnet if regnet.is_absolute() else tiny_repo / regnet
        mel = np.load(regnet / "mel.npy")
        assert mel.shape == (80, 860) and mel.dtype == np.float32
        assert 0.0 <= mel.min() and mel.max() <= 1.0
        visual = np.load(regnet / "visual.npy")
        assert visual.shape[0] == 215 and visual.shape[1] % 2 == 0 and np.isfinite(visual).all()
        assert np.load(regnet / "mel_hifigan.npy").shape == (80, 860)
        zhou = Path(r["features"]["zhou"])
        zhou = zhou if zhou.is_absolute() else tiny_repo / zhou
        wav_q = np.load(zhou / "wav_q.npy")
        assert wav_q.shape == (160000,) and wav_q.dtype == np.uint8
        assert np.load(zhou / "visual.npy").shape[0] == 156
        ps = Path(r["features"]["persecond"])
        ps = ps if ps.is_absolute() else tiny_repo / ps
        assert np.load(ps / "appearance.npy").shape[0] == 10 and np.load(ps / "audio.npy").shape == (10, 128)
    splits = {
        s: (tiny_repo / "data/prepared/splits" / f"{s}.txt").read_text().split()
        for s in ("train", "val", "test")
    }
    assert sorted(sum(splits.values(), [])) == sorted(r["clip_id"] for r in rows)


def test_repro_trains_evaluates_and_reports_every_default_model(tiny_repo):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_repo / 'mlflow.db'}")
    for key in ("regnet_debug", "varietysound_debug"):
        record = _read(tiny_repo / "models" / key / "train.json")
        assert (tiny_repo / "models" / key / "package" / "v2s_model.yaml").is_file()
        assert record["model_uri"].startswith("models:/") and record["epochs"] == 1
        doc = _read(tiny_repo / "evaluations" / key / "metrics.json")
        assert list(doc["systems"]) == [key, "revoiced", "same_category", "silence", "model_other_video"]
        assert doc["clips"] == 4 and doc["split"] == "test"
        silence = doc["systems"]["silence"]
        assert silence["onset_f1"]["value"] == 0.0, silence  # every figure: {"value", "ci95": [low, high]}
        assert doc["systems"]["revoiced"]["onset_f1"]["value"] > silence["onset_f1"]["value"]
        for f in ("table.md", "table.csv", "per_category.md", "per_category.csv", "plots/summary.png"):
            assert (tiny_repo / "evaluations" / key / f).is_file(), f
        mp4s = sorted((tiny_repo / "evaluations" / key / "samples").glob("*/*.mp4"))
        assert {p.parent.name for p in mp4s} == {"real", key, "revoiced", "same_category", "silence"}
        runs = _evaluation_runs(client, record["mlflow_run_id"])  # each evaluation is a run of its own
        (own,) = [r for r in runs if r.data.tags["v2s.system"] == key]
        silence = [r for r in runs if r.data.tags["v2s.system"] == "silence"]
        assert "onset_f1" in own.data.metrics and silence and "onset_f1" in silence[0].data.metrics
        assert own.data.tags["v2s.max_clips"] == "4" and own.data.tags["v2s.selection"] == "quick"
        assert not any(k.startswith("eval/") for k in client.get_run(record["mlflow_run_id"]).data.metrics)
        arts = {a.path for a in client.list_artifacts(own.info.run_id, "evaluation")}
        assert "evaluation/table.md" in arts, arts
        headline = _read(tiny_repo / "evaluations" / key / "headline.json")
        assert headline["clips"] == 4 and headline["onset_f1"] == doc["systems"][key]["onset_f1"]["value"]
    results = (tiny_repo / "results" / "results.md").read_text()
    assert "regnet_debug" in results and "varietysound_debug" in results and "same_category" in results
    # every evaluation also scores every system on the first excerpt_seconds; the mel models' whole-clip
    # figures (headline.json) stay those of the whole clip
    seconds = yaml.safe_load((tiny_repo / "params.yaml").read_text())["evaluate"]["excerpt_seconds"]
    excerpt_table = results.split(f"## Every default model on the same excerpts: the first {seconds:g} s")[1]
    for key in ("regnet_debug", "varietysound_debug", *AUTOREGRESSIVE):
        doc = _read(tiny_repo / "evaluations" / key / "metrics.json")
        assert doc["excerpt"]["seconds"] == pytest.approx(seconds, abs=1e-3), key
        excerpt = doc["excerpt"]["systems"]
        assert {key, "same_category", "silence", "model_other_video"} <= set(excerpt), (key, list(excerpt))
        assert excerpt["silence"]["onset_f1"]["value"] == 0.0
        assert f"| {key} | same_category |" in excerpt_table and f"| {key} | {key} |" in excerpt_table, key
    for key in AUTOREGRESSIVE:  # SampleRNN: generated only the excerpt, so it is scored on it alone
        record = _read(tiny_repo / "models" / key / "train.json")
        assert record["epochs"] == 1 and record["model_uri"].startswith("models:/"), record
        doc = _read(tiny_repo / "evaluations" / key / "metrics.json")
        assert doc["generated_seconds"] == pytest.approx(seconds) and doc["clips"] == 4, doc
        assert doc["systems"][key] == doc["systems"][key] | doc["excerpt"]["systems"][key]
        assert f"| {key} | {key} |" in results  # in the main table too
    assert _read(tiny_repo / "models/seq2seq_debug/train.json")["manifest"] == "data/filtered/high.jsonl"
    lock = yaml.safe_load((tiny_repo / "dvc.lock").read_text())["stages"]
    deps = {d["path"] for d in lock["train@seq2seq_debug"]["deps"]}
    assert "data/filtered/high.jsonl" in deps and PREPARED not in deps, deps
    assert "data/filtered/high.jsonl" not in {d["path"] for d in lock["train@regnet_debug"]["deps"]}
    out = _dvc(tiny_repo, "metrics", "show")
    assert "onset_f1" in out, out
    # the timbre swap test: an output of every evaluate stage; it runs on mel models (or says why not)
    for key in ("regnet_debug", "varietysound_debug", *AUTOREGRESSIVE):
        swap = _read(tiny_repo / "evaluations" / key / "swap_test.json")
        assert "rows" in swap or swap["why"], (key, swap)
    for key in AUTOREGRESSIVE:
        assert "waveform model" in _read(tiny_repo / "evaluations" / key / "swap_test.json")["why"]
    assert "## Timbre swap test" in results and "Not run: " in results


def test_repro_filters_the_data_by_correlation(tiny_repo):
    """The filter stage: a tower trained on the data scores the training clips; the other splits go to both."""
    summary = _read(tiny_repo / "data/filtered/summary.json")
    assert summary["splits"] == ["train"] and summary["tower"]["model_uri"].startswith("models:/")
    assert (tiny_repo / "models/correlation_tower/package/v2s_model.yaml").is_file()
    rows = [json.loads(x) for x in (tiny_repo / "data/prepared/manifest.jsonl").read_text().splitlines()]
    train = {r["clip_id"] for r in rows if r["split"] == "train"}
    others = {r["clip_id"] for r in rows if r["split"] != "train"}
    assert summary["scored"] == len(train)
    subsets = {}
    for name in ("high", "low"):
        subset = [json.loads(x) for x in (tiny_repo / f"data/filtered/{name}.jsonl").read_text().splitlines()]
        subsets[name] = {r["clip_id"]: r["correlation"] for r in subset if r["split"] == "train"}
        assert {r["clip_id"] for r in subset if r["split"] != "train"} == others
        assert 0 < len(subsets[name]) < len(train), name
    assert min(subsets["high"].values()) >= summary["high_threshold"]
    assert max(subsets["low"].values()) <= summary["low_threshold"]
    assert set(subsets["high"]) | set(subsets["low"]) == train


def _evaluation_runs(client, training_run_id: str) -> list:
    exp = client.get_experiment_by_name("evaluation")
    return client.search_runs(
        [exp.experiment_id], filter_string=f"tags.`v2s.training_run_id` = '{training_run_id}'"
    )


def _metric_cells(rows: list) -> dict[tuple[str, str], bool]:
    """`dvc exp show --json` -> {(row, metrics file): has values} for the workspace, the baseline and every
    experiment (a file without values is what the table shows as "!")."""
    cells: dict[tuple[str, str], bool] = {}

    def visit(entry: dict, label: str) -> None:
        metrics = (entry.get("data") or {}).get("metrics") or {}
        for path, value in metrics.items():
            cells[(label, path)] = bool(isinstance(value, dict) and value.get("data")) and not value.get(
                "error"
            )

    for row in rows:
        visit(row, row.get("name") or row["rev"])
        for exp in row.get("experiments") or []:
            for rev in exp.get("revs") or []:
                visit(rev, rev.get("name") or rev["rev"])
    return cells


def test_quick_experiment_shows_its_metrics_and_keeps_the_recorded_figures(tiny_repo):
    """`dvc exp run -S evaluate.max_clips=2 --name quick` (issue 18): the saved experiment shows values for every
    metrics file (no "!"), and the figures recorded before it (training runs, evaluation runs) are unchanged."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_repo / 'mlflow.db'}")
    keys = ("regnet_debug", "varietysound_debug")
    training = {k: _read(tiny_repo / "models" / k / "train.json")["mlflow_run_id"] for k in keys}
    before = {r.info.run_id: r.data.metrics for k in keys for r in _evaluation_runs(client, training[k])} | {
        t: client.get_run(t).data.metrics for t in training.values()
    }
    git = ["git", "-c", "user.name=v2s test", "-c", "user.email=test@example.invalid"]
    subprocess.run(["git", "add", "-A"], cwd=tiny_repo, check=True)
    subprocess.run([*git, "commit", "-qm", "baseline"], cwd=tiny_repo, check=True)
    _dvc(tiny_repo, "exp", "run", "-S", "evaluate.max_clips=2", "--name", "quick")
    shown = json.loads(
        subprocess.run(
            [str(Path(sys.executable).parent / "dvc"), "exp", "show", "--json"],
            cwd=tiny_repo,
            env=_env(),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    cells = _metric_cells(shown)
    declared = {
        "data/metrics/decode.json",
        "data/metrics/features.json",
        "data/prepared/summary.json",
        "data/filtered/summary.json",
        *(f"models/{k}/metrics.json" for k in keys),
        *(f"evaluations/{k}/headline.json" for k in keys),
    }
    for row in {label for label, _ in cells} | {"quick"}:
        missing = sorted(p for p in declared if not cells.get((row, p)))
        assert not missing, f"{row}: no values for {missing} (shown as '!'):\n{json.dumps(shown)[:4000]}"
    for k in keys:
        assert _read(tiny_repo / "evaluations" / k / "headline.json")["clips"] == 2
        quick = [
            r
            for r in _evaluation_runs(client, training[k])
            if r.data.tags.get("v2s.dvc_experiment") == "quick" and r.data.tags["v2s.system"] == k
        ]
        assert len(quick) == 1 and quick[0].data.tags["v2s.max_clips"] == "2"
    for run_id, metrics in before.items():
        assert client.get_run(run_id).data.metrics == metrics, f"run {run_id}'s figures changed"


def test_second_repro_is_a_no_op(tiny_repo):
    mel = next((tiny_repo / "data/features/regnet").glob("*/*/mel.npy"))
    before = mel.stat().st_mtime_ns
    out = _dvc(tiny_repo, "repro")
    assert "up to date" in out.lower(), out
    assert mel.stat().st_mtime_ns == before


def test_added_clips_are_the_only_ones_processed_and_bad_ones_quarantined(tiny_repo, real_media):
    videos = tiny_repo / "videos"
    shutil.copytree(tiny_repo / "data/raw/synthfoley", videos)
    shutil.copy(real_media / "hammer_anvil.mp4", videos / "hammer" / "real_hammer.mp4")
    (videos / "drum" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    _set_params(tiny_repo, **{"data.source": "videos"})
    _dvc(tiny_repo, "repro", "splits")  # the data stages only (training on the new data is not this test's)
    decode = _read(tiny_repo / "data/metrics/decode.json")
    assert (decode["ok"], decode["cached"], decode["quarantined"]) == (1, 16, 1), decode
    features = _read(tiny_repo / "data/metrics/features.json")
    assert (features["ok"], features["cached"]) == (1, 16), features
    rows = {
        json.loads(x)["clip_id"]: json.loads(x)
        for x in (tiny_repo / "data/prepared/manifest.jsonl").read_text().splitlines()
    }
    assert rows["drum/broken"]["status"] == "quarantined" and rows["drum/broken"]["reason"]
    assert rows["drum/broken"]["split"] is None
    assert rows["hammer/real_hammer"]["status"] == "ok"
    quarantine = _read(tiny_repo / "data/decoded/quarantine.json")
    assert [q["clip_id"] for q in quarantine["clips"]] == ["drum/broken"]
