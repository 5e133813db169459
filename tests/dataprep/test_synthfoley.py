"""Tests of the SynthFoley generator: determinism, formats, schema, and audio-visual alignment.

The alignment test works on the written mp4 files only: it decodes them with PyAV, finds each visible
event in the pixels (the actors' reserved colours; see `dataprep/synthfoley/scenes.py`), finds each sound
onset in the decoded audio's energy envelope, and checks that the two agree within one video frame. The
JSON is compared against both, never used to find them (its off-screen list only excludes audio windows
that an off-screen sound overlaps).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dataprep.synthfoley import (
    CATEGORIES,
    EVENT_KINDS,
    clip_counts,
    generate,
    main,
    plan_clip,
    synthesize_clip,
)
from dataprep.synthfoley.plan import OFFSCREEN_KINDS, SAMPLE_RATES

av = pytest.importorskip("av")


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthfoley_tiny")
    generate(out, size="tiny", seed=0)
    return out


def _metas(root: Path) -> list[dict]:
    manifest = json.loads((root / "synthfoley.json").read_text())
    return [json.loads((root / c["meta"]).read_text()) for c in manifest["clips"]]


# ---------------------------------------------------------------- decoding and detection helpers


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Frames (T, H, W, 3) uint8, audio (C, N) float32 and stream facts of an mp4."""
    with av.open(str(path)) as container:
        vs, aus = container.streams.video[0], container.streams.audio[0]
        facts = {
            "video_start": float(vs.start_time * vs.time_base),
            "audio_start": float(aus.start_time * aus.time_base),
            "video_duration": float(vs.duration * vs.time_base),
            "audio_duration": float(aus.duration * aus.time_base),
            "video_codec": vs.codec_context.name,
            "audio_codec": aus.codec_context.name,
        }
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    with av.open(str(path)) as container:
        chunks = []
        first_pts = None
        for f in container.decode(audio=0):
            if first_pts is None:
                first_pts = f.pts
            chunks.append(f.to_ndarray().reshape(f.layout.nb_channels, -1))
        facts["first_audio_pts"] = first_pts
    return frames, np.concatenate(chunks, axis=1), facts


def _mask(frames: np.ndarray, category: str) -> np.ndarray:
    """Pixels of the part of the actor that marks the event, by its reserved colour (decoded, so tolerant)."""
    f = frames.astype(np.int16)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    if category == "drum":  # yellow stick tip
        return (r > 180) & (g > 150) & (b < 120)
    if category == "hammer":  # blue hammer head
        return (b > 170) & (r < 130) & (g < 160) & (b - r > 80)
    if category == "bouncing_ball":  # red ball
        return (r > 170) & (g < 110) & (b < 110)
    if category == "gun":  # pale yellow muzzle-flash core
        return (r > 225) & (g > 210) & (b < 175)
    if category == "fireworks":  # white burst flash
        return (r > 215) & (g > 215) & (b > 215)
    return (r > 120) & (g < 70) & (b < 120) & (r - g > 90)  # crimson open mouth


def _rising(flags: np.ndarray) -> list[int]:
    prev = np.concatenate([[False], flags[:-1]])
    return [int(i) for i in np.flatnonzero(flags & ~prev)]


def _falling(flags: np.ndarray) -> list[int]:
    nxt = np.concatenate([flags[1:], [False]])
    return [int(i) + 1 for i in np.flatnonzero(flags & ~nxt)]


def _visual_events(frames: np.ndarray, category: str) -> tuple[list[int], list[int]]:
    """(onset frames, end frames) of the visible events, found from the pixels alone."""
    t, h, w, _ = frames.shape
    u2 = (h / 120.0) ** 2
    mask = _mask(frames, category)
    if category in ("drum", "hammer", "bouncing_ball"):
        rows = np.arange(h)[None, :, None]
        present = mask.any(axis=(1, 2))
        bottom = np.where(mask, rows, -1).max(axis=(1, 2))
        low = present & (bottom >= bottom.max() - 2)  # the striker / ball at its lowest point: the contact
        if category == "bouncing_ball":  # and squashed: wider than tall
            cols = np.arange(w)[None, None, :]
            top = np.where(mask, rows, h).min(axis=(1, 2))
            width = np.where(mask, cols, -1).max(axis=(1, 2)) - np.where(mask, cols, w).min(axis=(1, 2)) + 1
            low &= width > 1.2 * (bottom - top + 1)
        flags = low
    else:
        flags = mask.sum(axis=(1, 2)) > 20 * u2
    return _rising(flags), _falling(flags)


def _highpass(audio: np.ndarray, sr: int, cutoff: float = 150.0) -> np.ndarray:
    """Causal second-order high-pass: twice x - lowpass(x), with a one-pole low-pass applied as its
    (truncated) exponential impulse response, so no energy moves earlier in time."""
    a = np.exp(-2 * np.pi * cutoff / sr)
    taps = int(np.log(1e-6) / np.log(a)) + 1
    h = (1 - a) * a ** np.arange(taps)
    n = audio.shape[1]
    size = 1 << (n + taps - 1).bit_length()
    x = audio.astype(np.float64)
    for _ in range(2):
        x = x - np.fft.irfft(np.fft.rfft(x, size, axis=1) * np.fft.rfft(h, size), size, axis=1)[:, :n]
    return x


def _step_db(audio: np.ndarray, sr: int, hop: int, window_s: float = 0.015) -> np.ndarray:
    """Energy step at every `hop` samples: dB of mean energy in the next `window_s` over the previous one.

    The audio is first high-passed at 150 Hz (causally; the usual first step of an onset detector): a
    rumbling background noise carries most of its power at low frequencies, where its energy fluctuates
    strongly within a few milliseconds. An onset is the largest positive step, a sound's end the largest
    negative one. Entry i is at time i * hop / sr.
    """
    energy = (_highpass(audio, sr) ** 2).sum(axis=0)
    win = int(window_s * sr)
    csum = np.concatenate([[0.0], np.cumsum(energy)])
    centres = np.arange(0, len(energy), hop)
    before_lo, after_hi = np.clip(centres - win, 0, None), np.clip(centres + win, None, len(energy))
    before = (csum[centres] - csum[before_lo]) / np.maximum(centres - before_lo, 1)
    after = (csum[after_hi] - csum[centres]) / np.maximum(after_hi - centres, 1)
    step = 10 * np.log10((after + 1e-12) / (before + 1e-12))
    step[(centres < win) | (centres + win > len(energy))] = 0.0  # a window reaching outside the clip
    return step


def _audio_onset(step: np.ndarray, hop_s: float, start_s: float, stop_s: float) -> float:
    """Time of the largest energy rise in [start_s, stop_s)."""
    a, b = int(round(start_s / hop_s)), int(round(stop_s / hop_s))
    return (a + int(np.argmax(step[a:b]))) * hop_s


def _audio_offset(step: np.ndarray, hop_s: float, start_s: float, stop_s: float) -> float:
    """Time of the largest energy fall in [start_s, stop_s)."""
    a, b = int(round(start_s / hop_s)), int(round(stop_s / hop_s))
    return (a + int(np.argmin(step[a:b]))) * hop_s


def _offscreen_overlaps(meta: dict, start_s: float, stop_s: float) -> bool:
    return any(o["onset_s"] < stop_s + 0.02 and o["offset_s"] > start_s - 0.02 for o in meta["offscreen"])


def _alignment(frames: np.ndarray, audio: np.ndarray, meta: dict) -> tuple[int, list[str]]:
    """Check one clip's visible events against its sound; returns (events checked, problems found).

    Visible onsets (and, for mouths, ends) come from the pixels; each sound onset is the largest energy rise
    between the midpoints to the neighbouring visible onsets (for voices, from the previous mouth closing);
    a cry's end is the largest energy fall before the next event. Windows that an off-screen sound
    overlaps are skipped: there the largest rise may be the off-screen sound's.
    """
    fps, sr, category = meta["fps"], meta["sample_rate"], meta["category"]
    onsets, ends = _visual_events(frames, category)
    problems = []
    wanted = [e["visual_onset_frame"] for e in meta["events"]]
    if onsets != wanted:
        problems.append(f"{meta['clip_id']}: visible onsets {onsets} in the pixels, {wanted} in the JSON")
        return 0, problems
    hop = max(1, sr // 1000)
    hop_s = hop / sr
    step = _step_db(audio[:, : meta["num_samples"]], sr, hop)
    times = [k / fps for k in onsets]
    voice = category in ("dog_bark", "cough", "cry")
    if voice:  # a voice's sound ends when its mouth closes
        closings = [round(e["offset_s"] * fps) for e in meta["events"]]
        if closings != ends:
            problems.append(f"{meta['clip_id']}: mouths close on frames {ends}, JSON offsets say {closings}")
    checked = 0
    for i, t in enumerate(times):
        lo = 0.0 if i == 0 else (times[i - 1] + t) / 2
        if voice and i > 0:
            lo = max(lo, (ends[i - 1] + 0.5) / fps)
        hi = meta["duration"] if i == len(times) - 1 else (t + times[i + 1]) / 2
        if _offscreen_overlaps(meta, lo, hi):
            continue
        checked += 1
        heard = _audio_onset(step, hop_s, lo, hi)
        if abs(heard - t) > 1.0 / fps:
            problems.append(f"{meta['clip_id']} event {i}: seen at {t:.4f} s, heard at {heard:.4f} s")
        stop = meta["duration"] if i == len(times) - 1 else times[i + 1] - 0.5 / fps
        if category == "cry" and not _offscreen_overlaps(meta, t, stop):
            closed, ended = ends[i] / fps, _audio_offset(step, hop_s, t + 1.5 / fps, stop)
            if abs(ended - closed) > 1.0 / fps:
                problems.append(
                    f"{meta['clip_id']} event {i}: mouth closed at {closed:.4f} s, cry ended {ended:.4f} s"
                )
    return checked, problems


@pytest.fixture(scope="module")
def decoded(tiny: Path) -> dict[str, tuple[np.ndarray, np.ndarray, dict, dict]]:
    out = {}
    for meta in _metas(tiny):
        frames, audio, facts = _decode(tiny / meta["category"] / meta["video"])
        out[meta["clip_id"]] = (frames, audio, facts, meta)
    return out


# ---------------------------------------------------------------- layout, schema, ranges


def test_categories_and_split() -> None:
    assert CATEGORIES == ("drum", "hammer", "bouncing_ball", "gun", "fireworks", "dog_bark", "cough", "cry")
    assert set(clip_counts(16).values()) == {2}
    counts = clip_counts(11)
    assert sum(counts.values()) == 11 and max(counts.values()) - min(counts.values()) == 1, f"{counts=}"
    assert counts["drum"] == 2 and counts["cry"] == 1, f"{counts=}"


def test_tiny_layout_and_manifest(tiny: Path) -> None:
    manifest = json.loads((tiny / "synthfoley.json").read_text())
    assert manifest["dataset"] == "SynthFoley" and manifest["seed"] == 0 and manifest["size"] == "tiny"
    assert manifest["categories"] == list(CATEGORIES) and manifest["num_clips"] == 16
    assert manifest["generator_version"]
    assert len(manifest["clips"]) == 16
    for category in CATEGORIES:
        names = sorted(p.name for p in (tiny / category).iterdir())
        assert names == [f"{category}_{i:04d}.{ext}" for i in range(2) for ext in ("json", "mp4")], names
    for clip in manifest["clips"]:
        assert (tiny / clip["video"]).is_file() and (tiny / clip["meta"]).is_file()
        assert clip["video"] == f"{clip['category']}/{clip['clip_id']}.mp4"
    assert not list(tiny.rglob("*.tmp")) and not list(tiny.rglob(".*"))


def _check_schema(meta: dict) -> None:
    cid = meta["clip_id"]
    for key, kind in {
        "category": str,
        "fps": int,
        "width": int,
        "height": int,
        "sample_rate": int,
        "channels": int,
        "duration": float,
        "events": list,
        "timbre": dict,
        "background": dict,
        "offscreen": list,
        "seed": int,
    }.items():
        assert isinstance(meta[key], kind), f"{cid}: {key}={meta[key]!r}"
    assert set(meta["timbre"]) == {"pitch_hz", "decay_s", "brightness"}, cid
    assert meta["timbre"]["pitch_hz"] > 0 and meta["timbre"]["decay_s"] > 0, cid
    assert 0.0 <= meta["timbre"]["brightness"] <= 1.0, cid
    assert set(meta["background"]) == {"snr_db", "kind"}, cid
    assert abs(meta["duration"] - meta["num_frames"] / meta["fps"]) < 1e-5, cid
    assert meta["num_samples"] * meta["fps"] == meta["num_frames"] * meta["sample_rate"], cid
    previous_end = -1.0
    for e in meta["events"]:
        assert set(e) == {"onset_s", "offset_s", "visual_onset_frame", "kind"}, cid
        assert e["kind"] == EVENT_KINDS[meta["category"]], cid
        assert abs(e["onset_s"] - e["visual_onset_frame"] / meta["fps"]) < 1e-5, cid
        assert previous_end < e["onset_s"] < e["offset_s"] <= meta["duration"] + 1e-6, cid
        previous_end = e["offset_s"]
    for o in meta["offscreen"]:
        assert set(o) == {"onset_s", "offset_s", "kind"} and o["kind"] in OFFSCREEN_KINDS, cid
        assert 0.0 <= o["onset_s"] < o["offset_s"] <= meta["duration"] + 1e-6, cid


def test_tiny_schema_and_ranges(tiny: Path) -> None:
    metas = _metas(tiny)
    assert sorted({m["category"] for m in metas}) == sorted(CATEGORIES)
    for m in metas:
        _check_schema(m)
        cid = m["clip_id"]
        assert 15 <= m["fps"] <= 30, cid
        assert 160 <= m["width"] <= 640 and 120 <= m["height"] <= 360, cid
        assert m["width"] % 2 == 0 and m["height"] % 2 == 0, cid
        assert m["sample_rate"] in SAMPLE_RATES and m["channels"] in (1, 2), cid
        assert 2.0 <= m["duration"] <= 10.0, cid
        assert 1 <= len(m["events"]) <= 8, cid
        assert (
            m["video_sha256"] == hashlib.sha256((tiny / m["category"] / m["video"]).read_bytes()).hexdigest()
        )


def test_full_ranges_are_covered() -> None:
    plans = [plan_clip(seed=0, category=c, index=i, size="full") for c in CATEGORIES for i in range(40)]
    fps = {p.fps for p in plans}
    sizes = {(p.width, p.height) for p in plans}
    durations = [p.duration for p in plans]
    events = [len(p.events) for p in plans]
    assert min(fps) == 15 and max(fps) == 30, f"{fps=}"
    assert (160, 120) in sizes and (640, 360) in sizes, f"{sizes=}"
    assert all(w % 2 == 0 and h % 2 == 0 and 160 <= w <= 640 and 120 <= h <= 360 for w, h in sizes)
    assert {p.sample_rate for p in plans} == set(SAMPLE_RATES)
    assert {p.channels for p in plans} == {1, 2}
    assert 2.0 <= min(durations) < 3.0 and 9.0 < max(durations) <= 10.0, (
        f"{min(durations)=} {max(durations)=}"
    )
    assert min(events) == 1 and max(events) == 8
    pitches = {c: [p.timbre.pitch_hz for p in plans if p.category == c] for c in CATEGORIES}
    assert all(len(set(v)) == len(v) for v in pitches.values()), "every clip draws its own timbre"
    for p in plans:
        _check_schema(p.ground_truth())


def test_offscreen_in_about_a_third_of_clips() -> None:
    plans = [plan_clip(seed=7, category=c, index=i, size="demo") for c in CATEGORIES for i in range(60)]
    share = np.mean([bool(p.offscreen) for p in plans])
    assert 0.25 <= share <= 0.42, f"{share=}"
    for p in plans:
        for o in p.offscreen:  # an off-screen onset never sits on a visible one
            assert all(abs(o.onset_s - e.onset_s) >= 0.1 for e in p.events), p.clip_id


# ---------------------------------------------------------------- determinism and files


def test_same_seed_same_bytes(tiny: Path, tmp_path: Path) -> None:
    generate(tmp_path, size="tiny", seed=0, workers=2)  # also: the worker count changes nothing
    first, second = _hashes(tiny), _hashes(tmp_path)
    assert len(first) == 16 * 2 + 1 + 3  # clips, their JSON, the manifest, splits/{train,val,test}.txt
    assert first == second


def test_different_seed_different_clips(tiny: Path, tmp_path: Path) -> None:
    paths = generate(tmp_path, size="tiny", num_clips=2, seed=1)
    assert [p.name for p in paths] == ["drum_0000.mp4", "hammer_0000.mp4"]
    for p in paths:
        twin = tiny / p.parent.name / p.name
        assert p.read_bytes() != twin.read_bytes()
        assert (
            json.loads(p.with_suffix(".json").read_text())["events"]
            != json.loads(twin.with_suffix(".json").read_text())["events"]
        )


def test_rerun_skips_done_clips_and_redoes_broken_ones(tiny: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(tiny, out)
    before = _hashes(out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")}
    generate(out, size="tiny", seed=0)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.mp4")} == stamps, "a finished clip was rewritten"
    (out / "gun" / "gun_0001.json").unlink()  # as if interrupted between the mp4 and its JSON
    with open(out / "cry" / "cry_0000.mp4", "r+b") as f:  # a damaged video
        f.truncate(100)
    generate(out, size="tiny", seed=0)
    assert _hashes(out) == before
    assert (out / "drum" / "drum_0000.mp4").stat().st_mtime_ns == stamps[out / "drum" / "drum_0000.mp4"]


def test_interrupted_write_leaves_no_file(tmp_path: Path) -> None:
    from dataprep.synthfoley.encode import write_mp4_atomic

    def frames() -> Iterator[np.ndarray]:
        for _ in range(3):
            yield np.zeros((120, 160, 3), np.uint8)
        raise KeyboardInterrupt

    target = tmp_path / "clip.mp4"
    with pytest.raises(KeyboardInterrupt):
        write_mp4_atomic(
            target, frames(), np.zeros((1, 22050), np.float32), fps=20, sample_rate=22050, num_frames=20
        )
    assert list(tmp_path.iterdir()) == []


def test_synthesize_clip_is_pure() -> None:
    f1, a1, g1 = synthesize_clip(seed=3, category="gun", index=1, size="tiny")
    f2, a2, g2 = synthesize_clip(seed=3, category="gun", index=1, size="tiny")
    assert g1 == g2 and np.array_equal(f1, f2) and np.array_equal(a1, a2)
    assert f1.dtype == np.uint8 and f1.shape == (g1["num_frames"], g1["height"], g1["width"], 3), (
        f"{f1.shape=}"
    )
    assert a1.dtype == np.float32 and a1.shape == (g1["channels"], g1["num_samples"]), f"{a1.shape=}"
    assert np.isfinite(a1).all() and np.abs(a1).max() <= 1.0
    _, a3, g3 = synthesize_clip(seed=4, category="gun", index=1, size="tiny")
    assert g3 != g1


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size"):
        generate(tmp_path, size="huge")
    with pytest.raises(ValueError, match="num_clips"):
        generate(tmp_path, size=None)
    with pytest.raises(ValueError, match="num_clips"):
        generate(tmp_path, num_clips=0)
    with pytest.raises(ValueError, match="category"):
        plan_clip(seed=0, category="sneeze", index=0)
    with pytest.raises(ValueError, match="seed"):
        plan_clip(seed=-1, category="drum", index=0)


def test_command_line(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--size", "tiny", "--num-clips", "3", "--seed", "2", "--quiet"]) == 0
    manifest = json.loads((tmp_path / "synthfoley.json").read_text())
    assert [c["clip_id"] for c in manifest["clips"]] == ["drum_0000", "hammer_0000", "bouncing_ball_0000"]
    assert manifest["seed"] == 2 and manifest["num_clips"] == 3
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--num-clips", "0"])


# ---------------------------------------------------------------- decoded streams and alignment


def test_streams_start_at_zero_and_durations_match(decoded: dict) -> None:
    for cid, (frames, audio, facts, meta) in decoded.items():
        duration = meta["num_frames"] / meta["fps"]
        assert facts["video_codec"] == "h264" and facts["audio_codec"] == "aac", cid
        assert (
            facts["video_start"] == 0.0 and facts["audio_start"] == 0.0 and facts["first_audio_pts"] == 0
        ), cid
        assert abs(facts["video_duration"] - duration) < 1e-6, f"{cid}: {facts}"
        assert abs(facts["audio_duration"] - duration) < 1e-6, f"{cid}: {facts}"
        assert frames.shape == (meta["num_frames"], meta["height"], meta["width"], 3), (
            f"{cid}: {frames.shape=}"
        )
        assert audio.shape[0] == meta["channels"], f"{cid}: {audio.shape=}"
        # AAC decodes in whole 1024-sample frames: at most one frame of padding after the clip's samples.
        assert meta["num_samples"] <= audio.shape[1] < meta["num_samples"] + 1024, f"{cid}: {audio.shape=}"


def test_decoded_sound_onsets_match_visible_events(decoded: dict) -> None:
    checked = dict.fromkeys(CATEGORIES, 0)
    problems = []
    for frames, audio, _, meta in decoded.values():
        n, found = _alignment(frames, audio, meta)
        checked[meta["category"]] += n
        problems += found
    assert not problems, "\n".join(problems)
    assert all(n >= 1 for n in checked.values()), f"{checked=}"


def test_in_memory_sound_onsets_match_visible_events() -> None:
    """The same check on unencoded clips of the demo size (larger frames, longer clips)."""
    problems, total = [], 0
    for category in CATEGORIES:
        frames, audio, meta = synthesize_clip(seed=5, category=category, index=0, size="demo")
        n, found = _alignment(frames, audio, meta)
        total += n
        problems += found
    assert not problems, "\n".join(problems)
    assert total >= 8, f"{total=}"


def test_recorded_snr_holds() -> None:
    """Event power (inside the events, minus the noise) over the noise power (outside every sound)."""
    measured_clips = 0
    for category in CATEGORIES:
        for index in range(6):  # the first clip of the category with no off-screen sound and some silence
            if plan_clip(seed=11, category=category, index=index).offscreen:
                continue
            _, audio, meta = synthesize_clip(seed=11, category=category, index=index, size="tiny")
            t = np.arange(audio.shape[1]) / meta["sample_rate"]
            inside = np.zeros(len(t), dtype=bool)
            near = np.zeros(len(t), dtype=bool)
            for e in meta["events"]:
                inside |= (t >= e["onset_s"]) & (t < e["offset_s"])
                near |= (t >= e["onset_s"] - 0.01) & (t < e["offset_s"] + 0.01)  # fades, rounding
            if (~near).sum() < 0.2 * meta["sample_rate"]:
                continue
            p_in, p_noise = np.mean(audio[:, inside] ** 2), np.mean(audio[:, ~near] ** 2)
            measured = 10 * np.log10((p_in - p_noise) / p_noise)
            assert abs(measured - meta["background"]["snr_db"]) < 1.0, f"{meta['clip_id']}: {measured=}"
            measured_clips += 1
            break
    assert measured_clips == len(CATEGORIES), f"{measured_clips=}"
