"""All twelve real clips of ../shared/media/real/ through the decode and features stages.

Each clip ends with features of the papers' shapes, or in the quarantine report with a named reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dataprep import decode, features, splits
from v2s_models.params import DEFAULT_PARAMS

pytestmark = pytest.mark.slow

CATEGORY = {  # a category per clip, as a VAS-like folder layout needs one
    "airplane_flyover": "vehicle",
    "cap_gun": "gun",
    "chopping": "tool",
    "conga_drums": "drum",
    "diver_mjpeg_mp2": "water",
    "dog_barking": "dog",
    "dog_quiet_1080p": "dog",
    "hammer_anvil": "hammer",
    "hitting_bag": "hit",
    "hitting_metal": "hit",
    "tennis_strokes": "sport",
    "webcam_talk_mjpeg_u8": "speech",
}


@pytest.fixture(scope="module")
def prepared(real_media, tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    source = root / "source"
    clips = sorted(p for p in real_media.iterdir() if p.suffix in {".mp4", ".avi", ".mov"})
    assert len(clips) == 12, clips
    for clip in clips:
        (source / CATEGORY[clip.stem]).mkdir(parents=True, exist_ok=True)
        (source / CATEGORY[clip.stem] / clip.name).symlink_to(clip)
    params = {
        **DEFAULT_PARAMS,
        "decode": {"presets": ["regnet", "zhou"], "workers": 2},
        "splits": {
            "seed": 0,
            "profile": "small",
            "profiles": {"small": {"val_fraction": 0.15, "test_fraction": 0.15}},
        },
    }
    decode.run(source, root / "decoded", params, progress=False)
    features.run(root / "decoded", root / "features", params, progress=False)
    splits.run(source, root / "decoded", root / "features", root / "prepared", params)
    return root


def test_every_real_clip_has_features_or_a_named_reason(prepared):
    rows = [json.loads(x) for x in (prepared / "prepared" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == 12
    for r in rows:
        if r["status"] != "ok":
            assert r["reason"], f"{r['clip_id']} quarantined without a reason"
            continue
        reg = Path(r["features"]["regnet"])
        mel = np.load(reg / "mel.npy")
        assert mel.shape == (80, 860) and mel.dtype == np.float32, r["clip_id"]
        assert np.load(reg / "visual.npy").shape[0] == 215
        zhou = Path(r["features"]["zhou"])
        assert np.load(zhou / "wav_q.npy").shape == (160000,)
        assert np.load(zhou / "visual.npy").shape[0] == 156
        assert r["duration"] > 0 and r["sample_rate"] and r["has_audio"] is True
    ok = [r["clip_id"] for r in rows if r["status"] == "ok"]
    # every one of the twelve is a usable clip with sound (the quiet one is quiet, not silent)
    assert len(ok) == 12, [(r["clip_id"], r["reason"]) for r in rows if r["status"] != "ok"]


def test_quiet_clip_keeps_its_sound(prepared):
    mel = np.load(prepared / "features" / "regnet" / "dog" / "dog_quiet_1080p" / "mel.npy")
    assert mel.max() > 0.05  # -41 dBFS is well above the mel's -100 dB floor


def test_single_video_command_matches_the_pipeline(prepared, tmp_path):
    from dataprep.single import video_features

    src = prepared / "source" / "hammer" / "hammer_anvil.mp4"
    video_features(src, "regnet", tmp_path)
    pipe = prepared / "features" / "regnet" / "hammer" / "hammer_anvil"
    # the mel matmul's summation order depends on BLAS threads (1 per pipeline worker here): float32 rounding
    np.testing.assert_allclose(np.load(tmp_path / "mel.npy"), np.load(pipe / "mel.npy"), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "visual.npy"), np.load(pipe / "visual.npy"))
    assert np.load(tmp_path / "mel.npy").shape == (80, 860)
