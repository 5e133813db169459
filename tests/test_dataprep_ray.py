"""The decode and features stages as Ray tasks (`decode.cluster` / `features.cluster`): the same files, byte for
byte, as the local process pool, with the same per-clip cache and quarantine."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest

from dataprep import decode, features
from dataprep.runner import ClipResult, run_clips
from v2s_models.params import load_params

pytestmark = pytest.mark.slow


def _tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path -> its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _assert_same_tree(ours: Path, reference: Path) -> None:
    a, b = _tree_bytes(ours), _tree_bytes(reference)
    assert sorted(a) == sorted(b), (
        f"files differ: only in {ours}: {sorted(set(a) - set(b))[:5]}, "
        f"only in {reference}: {sorted(set(b) - set(a))[:5]}"
    )
    differ = [k for k in a if a[k] != b[k]]
    assert not differ, f"{len(differ)} of {len(a)} files differ in bytes, e.g. {differ[:5]}"


def _with_cluster(params: dict[str, Any], cluster: str | None, workers: int = 2) -> dict[str, Any]:
    out = copy.deepcopy(params)
    for stage in ("decode", "features"):
        out[stage].update(cluster=cluster, workers=workers)
    return out


SUBSET = 5  # clips (one per category) taken from the tiny set: the Ray run stays near a minute on 2 cores


def test_ray_stages_write_the_local_pools_bytes(tiny_data_root, tmp_path, monkeypatch):
    """Both stages on a local Ray instance over clips of the tiny data set: every per-clip file (audio, features,
    meta.json with its cache key) equals the one the local pool wrote for the fixture, byte for byte, and so does
    every manifest line; a second Ray run finds every clip in the cache."""
    params = _with_cluster(load_params(tiny_data_root / "params.yaml"), "local")
    raw = tiny_data_root / "data/raw/synthfoley"
    categories = sorted(p for p in raw.iterdir() if p.is_dir() and p.name != "splits")[:SUBSET]
    clip_ids = []
    for category in categories:
        video = sorted(category.glob("*.mp4"))[0]
        dest = tmp_path / "data/raw/synthfoley" / category.name
        dest.mkdir(parents=True)
        for f in category.glob(f"{video.stem}.*"):  # the video and its ground-truth JSON
            shutil.copy(f, dest / f.name)
        clip_ids.append(f"{category.name}/{video.stem}")
    monkeypatch.chdir(
        tmp_path
    )  # relative paths, as the DVC stages (and the fixture) use: manifests hold them
    summary = decode.run(Path("data/raw/synthfoley"), Path("data/decoded"), params, progress=False)
    assert summary["ok"] == summary["clips"] == SUBSET, summary
    summary = features.run(Path("data/decoded"), Path("data/features"), params, progress=False)
    assert summary["ok"] == SUBSET, summary

    for stage, folders in (("decoded", ["regnet", "zhou"]), ("features", ["regnet", "zhou", "persecond"])):
        ours, reference = tmp_path / "data" / stage, tiny_data_root / "data" / stage
        for folder in folders:
            for clip_id in clip_ids:
                _assert_same_tree(ours / folder / clip_id, reference / folder / clip_id)
        reference_lines = set((reference / "manifest.jsonl").read_bytes().splitlines())
        our_lines = (ours / "manifest.jsonl").read_bytes().splitlines()
        assert len(our_lines) == SUBSET and set(our_lines) <= reference_lines, (
            f"{stage}/manifest.jsonl differs"
        )
        assert (ours / "quarantine.json").read_bytes() == (reference / "quarantine.json").read_bytes()

    again = features.run(Path("data/decoded"), Path("data/features"), params, progress=False)
    assert again["cached"] == SUBSET and again["ok"] == 0, again


def test_ray_decode_quarantines_like_the_local_pool(tiny_data_root, tmp_path, monkeypatch):
    """A corrupt file and a truncated one among good clips: the Ray path quarantines the same clips with the
    same reasons and writes the same bytes as the local pool (quarantine.json included)."""
    params = load_params(tiny_data_root / "params.yaml")
    source = tmp_path / "source"
    good = sorted((tiny_data_root / "data/raw/synthfoley").rglob("*.mp4"))[:2]
    for clip in good:
        dest = source / clip.parent.name / clip.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, dest)
    (source / "bad").mkdir()
    (source / "bad" / "noise.mp4").write_bytes(b"not a video" * 100)
    (source / "bad" / "truncated.mp4").write_bytes(good[0].read_bytes()[:2000])
    monkeypatch.chdir(tmp_path)
    results = {}
    for label, cluster in (("pool", None), ("ray", "local")):
        results[label] = decode.run(
            Path("source"), Path(label), _with_cluster(params, cluster), progress=False
        )
    assert results["ray"] == results["pool"], results
    assert results["ray"]["quarantined"] == 2 and results["ray"]["ok"] == 2, results["ray"]
    _assert_same_tree(tmp_path / "ray", tmp_path / "pool")


def _square(item: int, state: dict[str, Any]) -> ClipResult:
    state["calls"] = state.get("calls", 0) + 1
    return ClipResult(str(item), "ok", None, {"value": item * item, "built": state["built"]})


def _init() -> dict[str, Any]:
    return {"built": "yes"}


def test_run_clips_on_ray_keeps_order_and_builds_state(tmp_path):
    """Results come back in the order of the items, with at most `workers` tasks in flight, and every task
    sees the state its process's `init` built."""
    items = list(range(7))
    out = run_clips(_square, items, workers=2, desc="square", init=_init, progress=False, cluster="local")
    assert [r.row["value"] for r in out] == [i * i for i in items]
    assert {r.row["built"] for r in out} == {"yes"}


def test_run_clips_refuses_an_empty_cluster_name():
    with pytest.raises(ValueError, match="square.cluster"):
        run_clips(_square, [1], workers=1, desc="square", progress=False, cluster=" ")
