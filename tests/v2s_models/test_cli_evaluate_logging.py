"""Unit test: `v2s evaluate` hands its selection to the evaluation's MLflow logging (issue 18), so a quick
evaluation from the CLI is tagged quick and never annotates the registered version. The evaluation and the
logging are replaced by recorders here; tests/test_tracking_evaluation.py runs the real logging."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from experiments import cli
from v2s_models import evaluation


@pytest.mark.parametrize("max_clips", [None, 8])
def test_evaluate_passes_its_clip_selection_and_model_to_the_logging(
    max_clips: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_evaluate(model: str, *, out: Path, **kwargs: Any) -> Any:
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text("| figure |\n")
        return SimpleNamespace(run_id="train-run-1")

    def fake_log(result: Any, run_id: str | None, **kwargs: Any) -> str:
        calls.append({"run_id": run_id, **kwargs})
        return "eval-run-9"

    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    monkeypatch.setattr(evaluation, "log_to_mlflow", fake_log)
    argv = ["evaluate", "models:/regnet@champion", "--root", str(tmp_path), "--out", str(tmp_path / "ev")]
    argv += ["--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]
    if max_clips is not None:
        argv += ["--max-clips", str(max_clips)]
    assert cli.main(argv) == 0
    assert len(calls) == 1
    assert calls[0]["run_id"] == "train-run-1"
    assert calls[0]["max_clips"] == max_clips
    assert calls[0]["model_uri"] == "models:/regnet@champion"
    assert "eval-run-9" in capsys.readouterr().err
