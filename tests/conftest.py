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


def build_tiny_data(dest: Path) -> None:
    """Runs the data pipeline's four stages on the tiny built-in SynthFoley set into `dest`."""
    import subprocess
    import sys

    import yaml

    dest.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["generate"].update(size="tiny", num_clips=None)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for args in (
        ["dataprep.generate", "data/raw/synthfoley"],
        ["dataprep.decode", "data/raw/synthfoley", "data/decoded", "--no-progress"],
        ["dataprep.features", "data/decoded", "data/features", "--no-progress"],
        ["dataprep.splits", "data/raw/synthfoley", "data/decoded", "data/features", "data/prepared"],
    ):
        subprocess.run([sys.executable, "-m", *args], cwd=dest, env=env, check=True, capture_output=True)


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The prepared tiny data set (16 clips: 8 train, 8 test), built once per test session.

    V2S_TEST_TINY_ROOT may name an already prepared copy (a developer's shortcut); CI builds it.
    """
    given = os.environ.get("V2S_TEST_TINY_ROOT")
    if given and (Path(given) / "data/prepared/manifest.jsonl").is_file():
        return Path(given)
    dest = tmp_path_factory.getbasetemp() / "tiny_data"
    if not (dest / "data/prepared/manifest.jsonl").is_file():
        build_tiny_data(dest)
    return dest
