"""The checkpoint file of a training run (`checkpoint.pt`; its contents: training/loop.py) and reading it back.

Apart from the loop so that packaging a checkpoint (registry) does not import the training loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

CHECKPOINT_FILE = "checkpoint.pt"


def load_checkpoint(path: Path) -> dict[str, Any]:
    f = path / CHECKPOINT_FILE if path.is_dir() else path
    if not f.is_file():
        raise FileNotFoundError(f"no checkpoint at {f}")
    return torch.load(f, map_location="cpu", weights_only=True)
