"""The MLflow UI (`v2s ui`) over the store an ablation grid wrote, in headless Chromium (tests/browser.py).

The grid is the REGNET regularizer grid's smoke variant (`tests.test_sweeps.run_grid_smoke`: trained once per test
session, reused when tests/test_sweeps.py ran it already). The test starts `v2s ui` on the grid's project, opens
the grid's experiment (the parent run, its child runs listed by name once expanded, the objective's metric among
the columns), the parent run's comparison table, and the registered model with its `candidate` alias, and saves a
screenshot of each page under the test's temporary folder (the paths are printed). It also checks what a model
chooser reads (issue 18): the experiment is a model-training experiment with a description, a child run shows
its dataset and its model card, and the registered version's description is the card.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ray_jobs.sweep_trial import param_label
from tests.test_sweeps import base_env, run_grid_smoke
from v2s_models.tracking import DESCRIPTION_TAG, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_ui(root: str | Path) -> Iterator[str]:
    """`v2s ui` serving the store under `root` on a free loopback port, until the block ends; yields its URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "v2s_models.cli", "ui", "--root", str(root), "--port", str(port)],
        cwd=REPO, env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    pytest.fail(f"v2s ui did not answer on port {port}: {err[-2000:]}")
                time.sleep(1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture()
def ui(tmp_path_factory: pytest.TempPathFactory, tiny_data_root: Path) -> Iterator[dict[str, Any]]:
    """The grid's store served by `v2s ui` on a free loopback port."""
    from tests.browser import find_chromium

    why = find_chromium()
    if isinstance(why, str):
        pytest.skip(f"headless Chromium unavailable: {why}")
    grid = run_grid_smoke(tmp_path_factory.getbasetemp(), tiny_data_root)
    with serve_ui(grid["root"]) as url:
        yield {**grid, "url": url}


def _wait_for(web: Any, check: Callable[[str], bool], what: str, timeout_s: float = 60.0) -> str:
    """The page's visible text once `check(text)` holds (the UI renders asynchronously)."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = web.find_element("tag name", "body").text
        if check(text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"{what}: not shown within {timeout_s:.0f} s; the page said:\n{text[:3000]}")


def _click_first(web: Any, selector: str, by: str = "css selector") -> bool:
    """Clicks the first visible element matching `selector`; False when there is none."""
    for el in web.find_elements(by, selector):
        if el.is_displayed():
            web.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
            el.click()
            return True
    return False


def _click_text(web: Any, text: str) -> bool:
    """Clicks the first visible element whose own text is `text`; False when there is none."""
    for el in web.find_elements("xpath", f"//*[normalize-space(text())='{text}']"):
        if el.is_displayed():
            web.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
            el.click()
            return True
    return False


def test_trial_run_names_say_their_values() -> None:
    assert param_label({"model.aux_dim": 32, "losses.mel": 1000.0}) == "aux_dim=32,mel=1e3"
    assert param_label({"optim.lr": 2e-4, "batch_size": 4}) == "lr=0.0002,batch_size=4"
    assert param_label({"a.x": 1, "b.x": "s/t u"}) == "a.x=1,b.x=s_t_u", (
        "full keys when the last parts collide"
    )
    assert len(param_label({f"k{i}": "v" * 20 for i in range(20)})) == 120


@pytest.mark.slow
def test_mlflow_ui_shows_the_grid_and_its_registered_model(ui: dict[str, Any], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from tests.browser import chromium_session

    client = MlflowClient(tracking_uri=ui["uri"])
    exp = client.get_experiment_by_name(ui["experiment"])
    assert exp is not None
    assert exp.tags.get(EXPERIMENT_KIND_TAG) == MODEL_TRAINING_KIND and exp.tags.get(DESCRIPTION_TAG)
    log = Path(ui["log"]).read_text()
    assert "View run" not in log, "the sweep's log links to its temporary MLflow server, stopped by now"
    assert "tensorboard --logdir" not in log, "Tune suggests TensorBoard, which v2s does not use"
    labels, objective = ui["labels"], "onset_corr"
    shots: list[Path] = []

    def shot(web: Any, name: str) -> None:
        shots.append(tmp_path / f"{name}.png")
        web.save_screenshot(str(shots[-1]))
        print(f"screenshot: {shots[-1]}")

    with chromium_session(width=2200, height=1000) as web:
        # the grid's experiment ("Training runs"): the parent run, then its child runs once it is expanded
        web.get(f"{ui['url']}/#/experiments/{exp.experiment_id}/runs")
        _wait_for(web, lambda t: ui["experiment"] in t, "the parent run")
        _click_first(web, "button[aria-label='Close']")  # the assistant's side panel
        shot(web, "experiment")
        _click_first(web, "button[data-component-id*='runnamecellrenderer']")  # the parent row's expander
        _wait_for(web, lambda t: all(label in t for label in labels), "the child runs' names")
        shot(web, "experiment_child_runs")
        # the objective's metric as a column of the runs table: chosen in "Columns" (metric columns start hidden)
        _click_first(web, "[data-testid='column-selection-dropdown']")
        _wait_for(web, lambda t: objective in t, f"the objective among the columns ({objective})")
        search = web.find_elements("css selector", "input[placeholder='Search columns']")
        if search:
            search[0].send_keys(objective)
            time.sleep(1)
        # the metric's full key (val/onset_corr, or val/test_split/onset_corr on data without a validation split)
        child = client.search_runs(
            [exp.experiment_id], f"tags.`mlflow.parentRunId` = '{ui['parent_run_id']}'"
        )[0]
        key = next(k for k in child.data.metrics if k.startswith("val/") and k.endswith(f"/{objective}"))
        matches = [
            el for el in web.find_elements("xpath", f"//*[normalize-space(.)='{key}']") if el.is_displayed()
        ]
        assert matches, f"no entry {key} in the Columns menu"
        matches[-1].click()  # the innermost element with exactly that text: the menu entry
        shot(web, "experiment_objective_column")
        web.find_element("tag name", "body").send_keys("\ue00c")  # Escape: close the menu
        # with the menu closed, the objective's name on the page is the new column's header
        text = _wait_for(web, lambda t: objective in t, f"the column of {key} after ticking it", timeout_s=20)
        print(
            f"runs table with the objective's column: {[line for line in text.splitlines() if objective in line]}"
        )
        shot(web, "experiment_with_objective")

        # a child run's page: its description (the model card) and its dataset
        child_id = child.info.run_id
        assert child.data.tags.get("v2s.card.synthetic") == "all" and child.inputs.dataset_inputs
        web.get(f"{ui['url']}/#/experiments/{exp.experiment_id}/runs/{child_id}")
        _wait_for(web, lambda t: "synthetic video only" in t, "the child run's description (its model card)")
        _wait_for(web, lambda t: "prepared" in t, "the child run's dataset (data/prepared/manifest.jsonl)")
        shot(web, "child_run_card_and_dataset")

        # the parent run: the comparison table among its artifacts
        web.get(f"{ui['url']}/#/experiments/{exp.experiment_id}/runs/{ui['parent_run_id']}/artifacts")
        _wait_for(web, lambda t: "comparison" in t, "the comparison artifacts")
        _click_text(web, "comparison")
        _wait_for(web, lambda t: "comparison.md" in t and "comparison.png" in t, "the comparison files")
        _click_text(web, "comparison.md")
        _wait_for(web, lambda t: all(label in t for label in labels), "the comparison table's rows")
        shot(web, "parent_comparison")

        # the registered model: its version with the candidate alias
        name = ui["registered"].removeprefix("models:/").split("@")[0]
        web.get(f"{ui['url']}/#/models/{name}")
        _wait_for(web, lambda t: name in t and "candidate" in t, "the registered model and its alias")
        shot(web, "registered_model")
        version = client.get_model_version_by_alias(name, "candidate").version
        web.get(f"{ui['url']}/#/models/{name}/versions/{version}")
        _wait_for(web, lambda t: ui["parent_run_id"] in t, "the version's tag naming the grid's parent run")
        _wait_for(web, lambda t: "synthetic video only" in t, "the version's description (the model card)")
        shot(web, "registered_version")
    assert all(p.stat().st_size > 10_000 for p in shots)
