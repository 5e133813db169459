"""Sources, split assignment, params validation and atomic writes (no media decoding)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dataprep import io
from dataprep.params import data_settings, load_params
from dataprep.sources import read_split_lists, scan_source
from dataprep.splits import assign_splits, split_sizes

REPO = Path(__file__).resolve().parents[2]


def _touch(p: Path, data: bytes = b"x") -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def test_scan_source_layout(tmp_path):
    _touch(tmp_path / "dog" / "a.mp4")
    _touch(tmp_path / "dog" / "a.json", b"{}")
    _touch(tmp_path / "dog" / "notes.txt")
    _touch(tmp_path / "drum" / "b.MKV")
    _touch(tmp_path / "drum" / ".hidden.mp4")
    _touch(tmp_path / "splits" / "train.txt", b"dog/a\n")
    clips = scan_source(tmp_path)
    assert [c.clip_id for c in clips] == ["dog/a", "drum/b"]
    assert clips[0].ground_truth == tmp_path / "dog" / "a.json" and clips[1].ground_truth is None
    assert read_split_lists(tmp_path) == {"dog/a": "train"}


def test_scan_source_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        scan_source(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no videos"):
        scan_source(tmp_path)
    _touch(tmp_path / "dog" / "a.mp4")
    _touch(tmp_path / "dog" / "a.webm")
    with pytest.raises(ValueError, match="share the stem"):
        scan_source(tmp_path)


def test_split_lists_conflict(tmp_path):
    _touch(tmp_path / "splits" / "train.txt", b"dog/a.mp4\n")
    _touch(tmp_path / "splits" / "test.txt", b"dog/a\n")
    with pytest.raises(ValueError, match="both train and test"):
        read_split_lists(tmp_path)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, (0, 0, 0)), (1, (1, 0, 0)), (2, (1, 0, 1)), (3, (1, 1, 1)), (10, (6, 2, 2)), (100, (36, 32, 32))],
)
def test_split_sizes(n, expected):
    assert split_sizes(n, 32, 32) == expected


def test_assign_splits_deterministic_and_fixed():
    ids = {"dog": [f"dog/{i}" for i in range(100)], "drum": [f"drum/{i}" for i in range(5)]}
    a = assign_splits(ids, val=32, test=32, seed=0)
    assert a == assign_splits(ids, val=32, test=32, seed=0)
    assert a != assign_splits(ids, val=32, test=32, seed=1)
    dog = [a[i] for i in ids["dog"]]
    assert (dog.count("train"), dog.count("val"), dog.count("test")) == (36, 32, 32)
    fixed = assign_splits(ids, val=32, test=32, seed=0, fixed={"dog/0": "val"})
    assert fixed["dog/0"] == "val"


def test_params_file_is_valid():
    params = load_params(REPO / "params.yaml")
    regnet = data_settings(params, "regnet")
    assert (regnet.num_frames, regnet.num_samples, regnet.num_mel_frames) == (215, 220500, 860)
    assert data_settings(params, "zhou").num_samples == 160000
    from dataprep.features import validate_config
    from dataprep.single import DEFAULT_PARAMS

    validate_config(params["features"])
    assert DEFAULT_PARAMS["features"] == params["features"]  # the CLI's fallback equals the shipped params
    assert DEFAULT_PARAMS["presets"] == params["presets"]


def test_params_errors_name_the_key(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("presets:\n  regnet: {fps: -1, sample_rate: 22050}\n")
    with pytest.raises(ValueError, match=r"presets\.regnet.*fps"):
        data_settings(load_params(p), "regnet")
    with pytest.raises(ValueError, match="unknown data preset 'nope'"):
        data_settings(load_params(p), "nope")
    from dataprep.features import validate_config

    with pytest.raises(ValueError, match="features.flow"):
        validate_config({"presets": {"regnet": ["mel"]}, "flow": "farneback", "image_size": 112})
    with pytest.raises(ValueError, match="unknown outputs"):
        validate_config({"presets": {"regnet": ["melody"]}, "flow": "dis", "image_size": 112})


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "a" / "x.npy"
    io.write_npy(target, np.arange(3))
    with pytest.raises(RuntimeError), io.atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    np.testing.assert_array_equal(np.load(target), np.arange(3))  # the old file is intact
    assert os.listdir(target.parent) == ["x.npy"]  # no temporary left behind
