from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_MEDIA = REPO.parent / "shared" / "media" / "real"

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def real_media() -> Path:
    if not REAL_MEDIA.is_dir():
        pytest.skip(f"real clips not found at {REAL_MEDIA} (../shared/media/real beside the repository)")
    return REAL_MEDIA


@pytest.fixture(autouse=True)
def _few_threads():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(min(n, 2))
    yield
    torch.set_num_threads(n)
