"""Lineage of a fine-tuned model in the MLflow UI (`v2s ui`), in headless Chromium (tests/browser.py).

Uses the store of the end-to-end fine-tuning in tests/test_finetune.py (`run_finetune_smoke`: run once per test
session, reused when that test ran already). Opens the fine-tuning run's page (its description names the source
model version, its tags the source run) and the new registered version's page (its description says where it came
from), and saves a screenshot of each under the test's temporary folder (the paths are printed).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_finetune import run_finetune_smoke
from tests.test_mlflow_ui import _wait_for, serve_ui

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def ui(
    tmp_path_factory: pytest.TempPathFactory, tiny_data_root: Path, real_media: Path
) -> Iterator[dict[str, Any]]:
    """The fine-tuning store served by `v2s ui` on a free loopback port."""
    from tests.browser import find_chromium

    why = find_chromium()
    if isinstance(why, str):
        pytest.skip(f"headless Chromium unavailable: {why}")
    result = run_finetune_smoke(tmp_path_factory.getbasetemp(), tiny_data_root, real_media)
    with serve_ui(result["root"]) as url:
        yield {**result, "url": url}


@pytest.mark.slow
def test_mlflow_ui_shows_where_a_finetuned_model_came_from(ui: dict[str, Any], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from tests.browser import chromium_session

    client = MlflowClient(tracking_uri=ui["uri"], registry_uri=ui["uri"])
    run = client.get_run(ui["finetune"]["mlflow_run_id"])
    name, version = ui["promoted"]["name"], ui["promoted"]["version"]
    shots: list[Path] = []

    def shot(web: Any, label: str) -> None:
        shots.append(tmp_path / f"{label}.png")
        web.save_screenshot(str(shots[-1]))
        print(f"screenshot: {shots[-1]}")

    with chromium_session(width=1800, height=1400) as web:
        # the fine-tuning run: its description names the source version, its tags the source's run
        web.get(f"{ui['url']}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}")
        _wait_for(web, lambda t: "Fine-tuned from regnet version 1" in t, "the run's lineage description")
        _wait_for(web, lambda t: "v2s.init_from" in t or ui["source_run_id"] in t, "the run's lineage tags")
        shot(web, "finetune_run")
        # the new registered version: its description says where it came from
        web.get(f"{ui['url']}/#/models/{name}/versions/{version}")
        text = _wait_for(web, lambda t: "Fine-tuned from regnet version 1" in t, "the version's description")
        assert "models:/regnet@champion" in text and "visual_encoder" in text
        shot(web, "finetune_registered_version")
    assert all(p.stat().st_size > 10_000 for p in shots)
