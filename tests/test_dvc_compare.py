"""`dvc plots show` on the project's own declarations (dvc.yaml, params.yaml, .dvc/config, .dvc/plots/) writes a
page that loads nothing from the internet and draws a training-curve panel per metric for every default model
and the evaluation's bar charts, checked in headless Chromium (tests/browser.py; a screenshot is saved).

The outputs the plots read are small hand-written files in a copy of the declarations: the point is what DVC
and the page template do with them, not training. The curves file's format is the one the train stage writes
(`experiments.stages.write_curves`, checked here on a real MLflow store).
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from experiments.stages import CURVES_FILE, headline_metrics, write_curves
from v2s_models.tracking import MLflowTracker

REPO = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).parent / "dvc"
# URLs a page may name without fetching them: the SVG namespace and Vega-Lite's schema identifier
IDENTIFIERS = ("http://www.w3.org/2000/svg", "https://vega.github.io/schema/vega-lite/v5.json")
METRICS = ("train/g", "val/onset_corr")


def test_write_curves_reads_the_runs_history(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = MLflowTracker.create(tracking_uri=uri, experiment="e", run_name="r")
    for epoch in (1, 2, 3):
        tracker.log_metrics(
            {"train/g": 1.0 / epoch, "val/onset_corr": 0.1 * epoch, "perf/epoch_s": 5.0}, step=epoch
        )
    tracker.log_metrics({"train/g": 0.25}, step=3)  # a resumed run logs an epoch again: the last value wins
    tracker.end()
    root = tmp_path / "project"
    root.mkdir()
    (root / "mlflow.db").symlink_to(tmp_path / "mlflow.db")
    path = write_curves(root / CURVES_FILE, tracker.run_id, root=root)
    rows = list(csv.DictReader(path.open()))
    assert [(r["epoch"], r["metric"]) for r in rows] == [
        (str(e), m) for m in ("train/g", "val/onset_corr") for e in (1, 2, 3)
    ], "train/ and val/ metrics only (no perf/), sorted by metric then epoch"
    assert float(rows[2]["value"]) == 0.25
    empty = write_curves(root / "untracked.csv", None, root=root)
    assert empty.read_text().strip() == "epoch,metric,value"


def test_headline_metrics_are_flat_numbers() -> None:
    record = {
        "key": "regnet_demo",
        "run_dir": "/somewhere/ray_results/regnet_demo",
        "model_uri": "models:/m-1",
        "epochs": 10,
        "wall_s": 312.5,
        "metrics": {"val/onset_corr": 0.3, "train/g_total": 2.0, "perf/epoch_s": 20.0, "epoch": 10.0},
    }
    assert headline_metrics(record) == {"train/g_total": 2.0, "val/onset_corr": 0.3, "epochs": 10.0}


def _project(dest: Path) -> tuple[list[str], int]:
    """A copy of the declarations with small plot inputs for every default model; returns the model keys and
    the number of evaluation CSV plots written."""
    dest.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, dest / name)
    (dest / ".dvc").mkdir()
    shutil.copy(REPO / ".dvc" / "config", dest / ".dvc" / "config")
    shutil.copytree(REPO / ".dvc" / "plots", dest / ".dvc" / "plots")
    keys = list(yaml.safe_load((REPO / "params.yaml").read_text())["train"]["experiments"])
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    bar_plots = 0
    for i, key in enumerate(keys):
        lines = ["epoch,metric,value"] + [
            f"{e},{m},{(1 + i) * (0.5 + 0.1 * e if m.startswith('val') else 2.0 / e):.3f}"
            for m in METRICS
            for e in (1, 2, 3, 4)
        ]
        (dest / "models" / key).mkdir(parents=True)
        (dest / "models" / key / CURVES_FILE).write_text("\n".join(lines) + "\n")
        for entry in stages["evaluate"]["do"].get("plots", []):  # the evaluation's own CSV plots, if declared
            if isinstance(entry, str):  # a plot without properties (the summary image)
                continue
            ((path, props),) = entry.items()
            if path.endswith(".csv"):
                out = dest / path.replace("${key}", key)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(f"system,{props['x']}\n{key},0.5\nsilence,0.1\n")
                bar_plots += 1
    return keys, bar_plots


@pytest.mark.slow
def test_plots_show_renders_curves_offline(tmp_path: Path) -> None:
    from tests.browser import chromium_session

    project = tmp_path / "project"
    keys, bar_plots = _project(project)
    done = subprocess.run(
        [str(DVC), "plots", "show", "-o", "plots_out"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    page = project / "plots_out" / "index.html"
    html = page.read_text()
    loads = re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.I)
    assert not loads, f"the page loads resources from the internet: {loads}"
    assert not re.search(r"""url\(\s*["']?(?:https?:)?//|@import|fetch\(""", html), "CSS or script fetches"
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= set(IDENTIFIERS), f"URLs other than identifiers: {urls - set(IDENTIFIERS)}"
    for key in keys:
        assert f"models/{key}/{CURVES_FILE}" in html

    with chromium_session(width=1500, height=1400) as web:
        web.get(page.as_uri())
        headers = [h.text for h in web.find_elements("css selector", ".v2s-plot h3")]
        panels = web.find_elements("css selector", ".v2s-plot svg")
        lines = web.find_elements("css selector", ".v2s-plot svg path")
        bars = web.find_elements("css selector", ".v2s-plot svg rect:not([fill='none'])")
        web.save_screenshot(str(tmp_path / "plots.png"))
        print(f"screenshot: {tmp_path / 'plots.png'}")
    for key in keys:
        assert f"models/{key}/{CURVES_FILE}" in headers, headers
    assert len(lines) >= len(keys) * len(METRICS), "one line per metric panel of every model"
    assert len(panels) >= len(keys) * len(METRICS)
    assert len(bars) >= 2 * bar_plots, "every bar of the evaluation's bar charts is drawn"
