"""Sources, split assignment, params validation and atomic writes (no media decoding)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dataprep.sources import SKIP_REASONS, read_split_lists, scan, scan_source, write_dvcignore
from dataprep.splits import assign_splits, category_report, clip_hash, pin_assignment, split_profile
from dataprep.synthfoley.generate import official_split
from v2s_models import io
from v2s_models.params import data_settings, load_params

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
    with pytest.raises(ValueError, match="holds no usable videos"):
        scan_source(tmp_path)


def test_scan_names_every_odd_entry_without_opening_it(tmp_path):
    _touch(tmp_path / "dog" / "a.mp4")
    _touch(tmp_path / "dog" / "a.webm")
    _touch(tmp_path / "dog" / "ok.mp4")
    _touch(tmp_path / "dog" / "bark.wav")
    _touch(tmp_path / "dog" / "new\nline.mp4")
    _touch(Path(os.fsdecode(bytes(tmp_path / "dog") + b"/caf\xe9.mp4")))
    os.mkfifo(tmp_path / "dog" / "pipe.mp4")  # opening it would block: the scan must not
    (tmp_path / "dog" / "zero.mp4").symlink_to("/dev/zero")
    (tmp_path / "dog" / "loop.mp4").symlink_to("loop.mp4")
    (tmp_path / "dog" / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    (tmp_path / "dog" / "folder.mkv").mkdir()
    found = scan(tmp_path)
    assert [c.clip_id for c in found.clips] == ["dog/ok"]
    reasons = {s.path.name: s.reason for s in found.skipped}
    assert reasons == {
        "a.mp4": "duplicate_stem",
        "a.webm": "duplicate_stem",
        "bark.wav": "audio_only_file",
        "new\nline.mp4": "bad_clip_id",
        os.fsdecode(b"caf\xe9.mp4"): "non_utf8_name",
        "pipe.mp4": "named_pipe",
        "zero.mp4": "not_a_regular_file",
        "loop.mp4": "symlink_loop",
        "gone.mp4": "dangling_symlink",
        "folder.mkv": "directory_named_like_video",
    }
    assert all(s.reason in SKIP_REASONS for s in found.skipped)
    assert "caf\\xe9.mp4" in next(s.shown for s in found.skipped if s.reason == "non_utf8_name")
    with pytest.raises(OSError, match="not a regular file"):
        io.file_sha256(tmp_path / "dog" / "pipe.mp4")  # refused before open(): no hang
    entries = write_dvcignore(tmp_path, tmp_path)
    assert "/dog/pipe.mp4" in entries and "/dog/caf?.mp4" in entries and "/dog/a.mp4" not in entries
    assert write_dvcignore(tmp_path, tmp_path) == entries  # the block is replaced, not appended
    assert (tmp_path / ".dvcignore").read_text().count("/dog/pipe.mp4") == 1


def test_split_lists_conflict(tmp_path):
    _touch(tmp_path / "splits" / "train.txt", b"dog/a.mp4\n")
    _touch(tmp_path / "splits" / "test.txt", b"dog/a\n")
    with pytest.raises(ValueError, match="both train and test"):
        read_split_lists(tmp_path)


def _split(ids, **kw):
    return assign_splits(ids, seed=kw.pop("seed", 0), val_fraction=0.15, test_fraction=0.15, **kw)


def test_adding_removing_reordering_clips_never_moves_a_split():
    ids = [f"dog/{i}" for i in range(200)] + [f"drum/{i}" for i in range(7)]
    before = _split(ids)
    grown = [f"dog/new{i}" for i in range(300)] + list(reversed(ids)) + [f"cat/{i}" for i in range(50)]
    after = _split(grown)
    assert all(after[i] == before[i] for i in ids)
    shrunk = _split(ids[::3])
    assert all(shrunk[i] == before[i] for i in ids[::3])
    assert before != _split(ids, seed=1)  # the seed does matter
    fixed = _split(ids, fixed={"dog/0": "val", "dog/1": "test"})
    assert (fixed["dog/0"], fixed["dog/1"]) == ("val", "test")
    assert all(fixed[i] == before[i] for i in ids[2:])


def test_hash_rule_sizes_follow_the_fractions():
    ids = [f"c/{i}" for i in range(20000)]
    a = _split(ids)
    for split, f in (("test", 0.15), ("val", 0.15)):
        n = sum(s == split for s in a.values())
        assert abs(n - f * len(ids)) < 4 * (len(ids) * f * (1 - f)) ** 0.5, (split, n)
    assert 0.0 <= clip_hash("c/1", 0) < 1.0 and clip_hash("c/1", 0) != clip_hash("c/1", 1)


def test_profiles_and_targets_are_reported():
    params = load_params(REPO / "params.yaml")
    for name in params["splits"]["profiles"]:
        split_profile({**params["splits"], "profile": name})
    zhou = split_profile({**params["splits"], "profile": "zhou"})
    assert zhou.test_per_category == 128
    with pytest.raises(ValueError, match="splits.profile = 'nope'"):
        split_profile({**params["splits"], "profile": "nope"})
    with pytest.raises(ValueError, match="sum to less than 1"):
        split_profile({"profile": "p", "profiles": {"p": {"val_fraction": 0.5, "test_fraction": 0.5}}})
    ids = [f"big/{i}" for i in range(3000)] + [f"tiny/{i}" for i in range(20)]
    a = assign_splits(ids, seed=0, val_fraction=zhou.val_fraction, test_fraction=zhou.test_fraction)
    counts, below = category_report(a, {i: i.split("/")[0] for i in ids}, zhou)
    assert counts["big"]["test"] >= 128  # 3000 clips at 6 %: 180 expected, sd 13
    assert [(b["category"], b["split"]) for b in below] == [("tiny", "test")]
    assert "fewer clips than its targets need" in below[0]["why"]


def test_pin_keeps_an_earlier_assignment(tmp_path):
    source, prepared = tmp_path / "source", tmp_path / "prepared"
    _touch(source / "splits" / "test.txt", b"dog/a.mp4\n")
    for split, ids in {"train": "dog/b\ndog/c\n", "val": "", "test": "dog/a\n"}.items():
        _touch(prepared / "splits" / f"{split}.txt", ids.encode())
    assert pin_assignment(prepared, source) == {"train": 2, "val": 0, "test": 1}
    assert read_split_lists(source) == {"dog/a": "test", "dog/b": "train", "dog/c": "train"}
    _touch(prepared / "splits" / "val.txt", b"dog/a\n")
    _touch(prepared / "splits" / "test.txt", b"")
    with pytest.raises(ValueError, match="another split"):
        pin_assignment(prepared, source)


def test_synthfoley_split_never_moves_and_covers_tiny():
    assert [official_split(i) for i in range(2)] == ["train", "test"]
    thirty = [official_split(i) for i in range(30)]
    assert (thirty.count("train"), thirty.count("val"), thirty.count("test")) == (
        22,
        4,
        4,
    )  # the demo's sizes


def test_params_file_is_valid():
    params = load_params(REPO / "params.yaml")
    regnet = data_settings(params, "regnet")
    assert (regnet.num_frames, regnet.num_samples, regnet.num_mel_frames) == (215, 220500, 860)
    assert data_settings(params, "zhou").num_samples == 160000
    from dataprep.features import validate_config
    from v2s_models.params import DEFAULT_PARAMS

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
