"""MLflow's compare view of two models' evaluation runs, in headless Chromium (tests/browser.py), issue 18.

The REGNET and VarietySound debug networks (untrained, seeded) are evaluated on the tiny prepared data set
(`v2s_models.evaluation.evaluate`, 2 clips drawn from 2 categories) and logged by the evaluate stage's own
`log_to_mlflow` into a fresh store; `v2s ui` serves it. The compare view of the two models' runs must list every
metric both runs have under one name, each row holding both models' values (no model-named metrics, no empty
cells), and VarietySound's own figures (its reference clip) on rows of their own. Screenshots go to
test-artifacts/mlflow_compare/ (git-ignored).
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.test_mlflow_ui import _wait_for, serve_ui

REPO = Path(__file__).resolve().parents[1]
SHOTS = REPO / "test-artifacts" / "mlflow_compare"
CONFIGS = ("experiments/configs/regnet/debug.yaml", "experiments/configs/varietysound/debug.yaml")
pytestmark = pytest.mark.slow

# The compare page's metrics table is a pair of react-virtualized grids (names | values), rows by their `top`.
GRID_JS = """
let box = document.querySelector('[data-v2s-metrics]');  // marked on the first call (rows scroll away)
if (!box) {
  const link = Array.from(document.querySelectorAll('a')).find(e => e.innerText.trim() === arguments[0]);
  if (!link) return null;
  box = link.closest('.du-bois-light-collapse-content-box');
  box.setAttribute('data-v2s-metrics', '1');
}
const grids = Array.from(box.querySelectorAll('.ReactVirtualized__Grid'));
grids.forEach(g => { g.scrollTop = arguments[1]; });
return grids.map(g => ({height: g.scrollHeight, cells: Array.from(
    g.querySelectorAll('.ReactVirtualized__Grid__innerScrollContainer > *')).map(
    c => [parseFloat(c.style.top), parseFloat(c.style.left), c.innerText.trim()])}));
"""


def _debug_package(out: Path, config: str) -> Path:
    from v2s_models.config import instantiate, load_config
    from v2s_models.package import save_package
    from v2s_models.settings import get_preset

    cfg = load_config(REPO / config)
    torch.manual_seed(0)
    return save_package(
        out / cfg["name"],
        paradigm=cfg["paradigm"],
        config=cfg,
        data_settings=get_preset("regnet"),
        features={"visual_part": cfg["data"].get("visual_part", "all")},
        modules={name: instantiate(spec) for name, spec in cfg["model"].items()},
    )


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory, tiny_data_root: Path) -> Iterator[dict[str, Any]]:
    """Both debug models evaluated and logged; `v2s ui` serving the store on a free loopback port."""
    from tests.browser import find_chromium
    from v2s_models.evaluation import evaluate
    from v2s_models.evaluation.stage import log_to_mlflow

    why = find_chromium()
    if isinstance(why, str):
        pytest.skip(f"headless Chromium unavailable: {why}")
    root = tmp_path_factory.mktemp("compare")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = {}
    for config in CONFIGS:
        package = _debug_package(root / "packages", config)
        result = evaluate(
            package,
            root=tiny_data_root,
            out=root / "evaluations" / package.name,
            max_clips=2,
            samples=0,
            bootstrap=50,
            bootstrap_sets=20,
        )
        runs[result.name] = log_to_mlflow(
            result, None, tracking_uri=uri, max_clips=2, artifact_root=(root / "mlartifacts").as_uri()
        )
    with serve_ui(str(root)) as url:
        yield {"uri": uri, "url": url, "runs": runs}


def _metric_rows(web: Any, first: str) -> dict[str, list[str]]:
    """{metric name: [value of each run, left to right]} read from the compare page's metrics grids, scrolled
    through (the grids render only the rows in view)."""
    names: dict[float, str] = {}
    values: dict[float, dict[float, str]] = {}
    offset, height = 0.0, 1.0
    while offset < height + 200.0:
        web.execute_script(GRID_JS, first, offset)  # scrolls; the grids render the new rows after the event
        time.sleep(0.3)
        grids = web.execute_script(GRID_JS, first, offset)
        assert grids and len(grids) == 2, f"expected a names grid and a values grid, got {grids}"
        height = max(g["height"] for g in grids)
        for top, _, text in grids[0]["cells"]:
            names[top] = text
        for top, left, text in grids[1]["cells"]:
            values.setdefault(top, {})[left] = text
        offset += 200.0
    return {names[top]: [values.get(top, {})[k] for k in sorted(values.get(top, {}))] for top in names}


def test_compare_view_lines_two_models_up_metric_by_metric(evaluated: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    from tests.browser import chromium_session

    client = MlflowClient(tracking_uri=evaluated["uri"])
    ids = [evaluated["runs"]["regnet_debug"], evaluated["runs"]["varietysound_debug"]]
    metrics = [client.get_run(i).data.metrics for i in ids]
    shared = set(metrics[0]) & set(metrics[1])
    assert {"onset_f1", "onset_f1_ci95_low", "mcd_db", "fd_soundnet"} <= shared, sorted(shared)
    assert not any("debug" in k or "/" in k for k in set(metrics[0]) | set(metrics[1])), "no model-named keys"
    exp_id = client.get_run(ids[0]).info.experiment_id
    assert client.get_run(ids[1]).info.experiment_id == exp_id, "one experiment holds every evaluation"
    query = urllib.parse.urlencode({"runs": json.dumps(ids), "experiments": json.dumps([exp_id])})
    SHOTS.mkdir(parents=True, exist_ok=True)
    first = sorted(shared)[0]
    with chromium_session(width=2000, height=2400) as web:
        web.get(f"{evaluated['url']}/#/compare-runs?{query}")
        _wait_for(web, lambda t: "regnet_debug" in t and "varietysound_debug" in t, "both runs' names")
        _wait_for(web, lambda t: first in t, "the metrics table")
        link = next(a for a in web.find_elements("link text", first) if a.is_displayed())
        web.execute_script("arguments[0].scrollIntoView({block: 'center'});", link)
        web.save_screenshot(str(SHOTS / "compare_metrics.png"))
        rows = _metric_rows(web, first)
        web.execute_script("window.scrollTo(0, 0);")
        web.save_screenshot(str(SHOTS / "compare_top.png"))
    print(f"screenshots: {SHOTS}; rows: {json.dumps(rows)}")
    assert set(rows) == set(metrics[0]) | set(metrics[1]), "one row per metric name, nothing else"
    for name in sorted(shared):
        cells = rows[name]
        assert len(cells) == 2 and all(cells), f"{name}: both models' values on one row, got {cells}"
        for cell, m in zip(cells, metrics, strict=True):
            assert float(cell) == pytest.approx(m[name], rel=1e-2, abs=1e-2), (name, cell, m[name])
    for name in set(metrics[1]) - shared:  # VarietySound's own-reference figures: its column only
        assert rows[name][-1], name
    assert all((SHOTS / f).stat().st_size > 10_000 for f in ("compare_metrics.png", "compare_top.png"))
