"""The listening-test kit: page building (seeded, balanced, self-contained), scoring maths and input checks,
and the page itself in headless Chromium (loads, plays, keeps answers over a reload, exports the CSV)."""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from v2s_models.listening import build, cli, score
from v2s_models.listening.page import CSV_COLUMNS
from v2s_models.listening.questions import QUESTIONS, parse_questions

CLIPS = ("hammer_anvil", "cap_gun")
CUT_S = 1.2


def _cut(src: Path, dst: Path, seconds: float) -> None:
    """The first `seconds` of `src`, packets copied (the clips start on a key frame)."""
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = [inp.streams.video[0], inp.streams.audio[0]]
        copies = {s.index: out.add_stream_from_template(s) for s in streams}
        for packet in inp.demux(*streams):
            if packet.pts is None or packet.pts * packet.time_base > seconds:
                continue
            packet.stream = copies[packet.stream.index]
            out.mux(packet)


@pytest.fixture(scope="module")
def eval_dir(real_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EVAL_DIR/samples/{real,regnet_demo}/{hammer_anvil,cap_gun}.mp4: 1.2 s clips; regnet_demo's sound is a
    synthetic click train muxed onto the real picture (as `v2s generate` writes its outputs)."""
    from v2s_models.media.mux import mux_audio

    root = tmp_path_factory.mktemp("eval")
    sr = 22050
    t = np.arange(int(2 * sr)) / sr
    clicks = (0.4 * np.sin(2 * np.pi * 880 * t) * (np.mod(t, 0.25) < 0.03)).astype(np.float32)
    for clip in CLIPS:
        real = root / "samples" / "real" / f"{clip}.mp4"
        _cut(real_media / f"{clip}.mp4", real, CUT_S)
        (root / "samples" / "regnet_demo").mkdir(parents=True, exist_ok=True)
        mux_audio(real, clicks, sr, root / "samples" / "regnet_demo" / f"{clip}.mp4")
    (root / "metrics.json").write_text("{}")
    return root


def _decode_map(page: str) -> dict[str, list[str]]:
    data = _page_data(page)
    raw = base64.b64decode(data["map"])
    pad = data["test_id"].encode()
    return json.loads(bytes(b ^ pad[i % len(pad)] for i, b in enumerate(raw)))


def _page_data(page: str) -> dict:
    found = re.search(r'<script type="application/json" id="v2s-test">(.*?)</script>', page, re.S)
    assert found, "the page has no embedded test data"
    return json.loads(found.group(1).replace("<\\/", "</"))


# --- questions ---------------------------------------------------------------------------------------------


def test_questions_carry_the_papers_scales() -> None:
    assert [c for c, _ in QUESTIONS["realism"].choices] == ["5", "4", "3", "2", "1"]
    assert dict(QUESTIONS["realism"].choices)["3"] == "Equally real and unreal sound."  # VarietySound Table 4
    assert dict(QUESTIONS["alignment"].choices)["5"].startswith("Events in video and events in audio occur")
    assert dict(QUESTIONS["timbre"].choices)["2"].endswith("but share the same category of the sound.")
    assert "originally belonging to this video" in QUESTIONS["real_or_fake"].prompt  # Zhou et al. Sec. 4.3
    assert [q.key for q in parse_questions("timbre, realism")] == ["realism", "timbre"]
    with pytest.raises(ValueError, match="unknown question"):
        parse_questions("realism,loudness")


# --- item choice -------------------------------------------------------------------------------------------


def _fake_samples(systems: dict[str, list[str]]) -> dict[tuple[str, str], Path]:
    return {(s, c): Path(f"/x/{s}/{c}.mp4") for s, clips in systems.items() for c in clips}


def test_items_are_balanced_seeded_and_opaque() -> None:
    samples = _fake_samples({"real": list("abcdef"), "regnet": list("abcdef"), "silence": list("abcde")})
    items, systems, clips, notes = build.choose_items(samples, clips=4, seed=3)
    assert systems == ["real", "regnet", "silence"]
    assert len(clips) == 4 and "f" not in clips, "a clip missing from one system must not be drawn"
    assert any("1 clip(s) left out" in n for n in notes), notes
    assert sorted((i.system, i.clip) for i in items) == sorted((s, c) for s in systems for c in clips)
    assert len({i.id for i in items}) == len(items)
    assert all(re.fullmatch(r"[0-9a-f]{10}", i.id) for i in items), "ids must be opaque tokens"
    again, *_ = build.choose_items(samples, clips=4, seed=3)
    assert again == items, "the same seed must give the same test"
    other, *_ = build.choose_items(samples, clips=4, seed=4)
    assert [(i.system, i.clip) for i in other] != [(i.system, i.clip) for i in items]
    only, systems2, *_ = build.choose_items(samples, systems=["regnet", "real"], seed=0)
    assert systems2 == ["regnet", "real"] and len(only) == 12
    with pytest.raises(ValueError, match="not found"):
        build.choose_items(samples, systems=["nope"])


# --- page building -----------------------------------------------------------------------------------------


def test_build_writes_a_self_contained_page_and_key(eval_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "test.html"
    result = build.build_test([eval_dir], out, seed=1)
    page = out.read_text()
    key = json.loads((tmp_path / "test.key.json").read_text())
    assert result.key == tmp_path / "test.key.json"
    assert len(result.items) == 4 and result.systems == ["real", "regnet_demo"] and not result.reencoded
    assert page.count('src="data:video/mp4;base64,') == 4, "every video must be inline"
    text = re.sub(r"data:video/mp4;base64,[^\"]+", "", page)  # the page without its media
    assert "file:" not in text and "http" not in text, "no external resource"
    assert "regnet_demo" not in text and "hammer_anvil" not in text, "the page must not name systems or clips"
    assert key["order"] == _page_data(page)["items"] == [i.id for i in result.items]
    assert _decode_map(page) == {i: [v["system"], v["clip"]] for i, v in key["items"].items()}
    assert key["seed"] == 1 and key["questions"] == ["realism", "alignment", "real_or_fake", "timbre"]
    assert sorted(key["timbre_items"]) == sorted(i for i, v in key["items"].items() if v["system"] != "real")
    first = result.items[0]
    embedded = re.search(rf'id="v-{first.id}"[^>]*src="data:video/mp4;base64,([^"]+)"', page)
    assert embedded and base64.b64decode(embedded.group(1)) == first.path.read_bytes(), (
        "browser-playable files must be embedded untouched"
    )

    hidden = build.build_test(
        [eval_dir], tmp_path / "hidden.html", seed=1, systems=["regnet_demo"], hide_systems=True
    )
    data = _page_data((tmp_path / "hidden.html").read_text())
    assert data["map"] is None and data["timbre"] == []
    assert "timbre" not in hidden.questions and any("timbre question left out" in w for w in hidden.warnings)


def test_build_reencodes_to_a_smaller_h264_when_asked(eval_dir: Path, tmp_path: Path) -> None:
    import av

    from v2s_models.listening.media import browser_playable

    result = build.build_test(
        [eval_dir], tmp_path / "small.html", clips=1, max_height=64, questions="realism"
    )
    assert len(result.reencoded) == 2 and all("64 lines" in why for why in result.reencoded.values())
    uri = re.search(r'src="data:video/mp4;base64,([^"]+)"', (tmp_path / "small.html").read_text()).group(1)
    with av.open(io.BytesIO(base64.b64decode(uri))) as c:
        assert (
            c.streams.video[0].codec_context.name == "h264" and c.streams.video[0].codec_context.height == 64
        )
        assert c.streams.audio[0].codec_context.name == "aac"
        assert c.duration / 1e6 == pytest.approx(CUT_S, abs=0.15)
    mkv = tmp_path / "clip.mkv"
    mkv.write_bytes(b"")
    _cut(eval_dir / "samples/real/cap_gun.mp4", mkv, 0.5)
    assert browser_playable(mkv) == (False, ".mkv is not an mp4 file")


def test_build_errors_name_the_problem(eval_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no samples/ folder"):
        build.build_test([tmp_path], tmp_path / "t.html")
    with pytest.raises(ValueError, match=r"\.html"):
        build.build_test([eval_dir], tmp_path / "t.txt")
    with pytest.raises(ValueError, match="at least 1"):
        build.build_test([eval_dir], tmp_path / "t.html", clips=0)


# --- scoring -----------------------------------------------------------------------------------------------


def test_mos_interval_and_wilson_known_values() -> None:
    mean, half = score.mos_interval([1, 2, 3, 4, 5])
    # t(0.975, 4) = 2.776445; s = sqrt(2.5)
    assert mean == 3.0 and half == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), rel=1e-5)
    assert score.mos_interval([4.0]) == (4.0, None)
    big = [1, 5] * 5000  # large n: the t interval is the normal one, 1.96 s / sqrt(n)
    assert score.mos_interval(big)[1] == pytest.approx(
        1.96 * np.std(big, ddof=1) / math.sqrt(len(big)), rel=1e-3
    )
    low, high = score.wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))


def _key(tmp_path: Path) -> Path:
    items = {
        "aaaaaaaaaa": {"system": "real", "clip": "c1"},
        "bbbbbbbbbb": {"system": "regnet", "clip": "c1"},
        "cccccccccc": {"system": "real", "clip": "c2"},
        "dddddddddd": {"system": "regnet", "clip": "c2"},
    }
    path = tmp_path / "t.key.json"
    path.write_text(json.dumps({"format": build.KEY_FORMAT, "systems": ["real", "regnet"], "items": items}))
    return path


def _write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = CSV_COLUMNS) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_summarize_known_answers(tmp_path: Path) -> None:
    t = "2026-01-01T00:00:0{}Z"
    rows = [
        ["r1", "aaaaaaaaaa", "real", "c1", "realism", "5", t.format(1)],
        ["r1", "cccccccccc", "", "", "realism", "4", t.format(1)],  # system and clip come from the key
        ["r2", "aaaaaaaaaa", "real", "c1", "realism", "3", t.format(1)],
        ["r1", "bbbbbbbbbb", "regnet", "c1", "realism", "2", t.format(1)],
        ["r1", "aaaaaaaaaa", "real", "c1", "real_or_fake", "real", t.format(1)],
        ["r2", "aaaaaaaaaa", "real", "c1", "real_or_fake", "fake", t.format(1)],
        ["r1", "bbbbbbbbbb", "regnet", "c1", "real_or_fake", "real", t.format(1)],
        ["r1", "bbbbbbbbbb", "regnet", "c1", "real_or_fake", "fake", t.format(2)],  # re-answered: latest wins
        ["r1", "dddddddddd", "regnet", "c2", "timbre", "3", t.format(1)],
    ]
    items, systems = score.read_key(_key(tmp_path))
    answers, duplicates = score.read_answers([_write_csv(tmp_path / "a.csv", rows)], items)
    assert duplicates == 1 and len(answers) == 8
    stats = {(s.system, s.question): s for s in score.summarize(answers, systems)}
    assert stats["real", "realism"].mean == pytest.approx(4.0) and stats["real", "realism"].n == 3
    assert stats["real", "realism"].raters == 2
    assert stats["regnet", "realism"].mean == 2.0 and stats["regnet", "realism"].ci95 is None
    assert stats["real", "real_or_fake"].mean == 0.5 and stats["regnet", "real_or_fake"].mean == 0.0
    assert stats["regnet", "timbre"].mean == 3.0
    table = score.markdown_table(list(stats.values()), systems)
    assert table.splitlines()[0].startswith("| system | raters | Audio realism (MOS)")
    assert "| real | 2 | 4.00 ± 2.48 (n=3) |" in table  # t(0.975, 2) = 4.3027 * 1 / sqrt(3)
    assert "50.0 % [" in table and "| regnet | 1 |" in table


@pytest.mark.parametrize(
    ("header", "row", "message"),
    [
        (
            CSV_COLUMNS[:-1],
            ["r1", "aaaaaaaaaa", "real", "c1", "realism", "5"],
            r"missing column\(s\) \['timestamp'\]",
        ),
        (
            CSV_COLUMNS,
            ["r1", "aaaaaaaaaa", "real", "c1", "realism", "6", "t"],
            r"row 2: answer '6' to realism is out",
        ),
        (
            CSV_COLUMNS,
            ["r1", "aaaaaaaaaa", "real", "c1", "real_or_fake", "5", "t"],
            "row 2: answer '5' to real_or",
        ),
        (
            CSV_COLUMNS,
            ["r1", "zzzzzzzzzz", "real", "c1", "realism", "5", "t"],
            r"row 2: unknown item 'zzzzzzzzzz'",
        ),
        (
            CSV_COLUMNS,
            ["r1", "aaaaaaaaaa", "regnet", "c1", "realism", "5", "t"],
            "row 2: item aaaaaaaaaa is system",
        ),
        (CSV_COLUMNS, ["r1", "aaaaaaaaaa", "real", "c1", "loudness", "5", "t"], "row 2: unknown question"),
        (CSV_COLUMNS, ["", "aaaaaaaaaa", "real", "c1", "realism", "5", "t"], "row 2: empty rater id"),
    ],
)
def test_bad_answers_name_file_and_row(
    tmp_path: Path, header: tuple[str, ...], row: list[str], message: str
) -> None:
    items, _ = score.read_key(_key(tmp_path))
    bad = _write_csv(tmp_path / "bad.csv", [row], header)
    with pytest.raises(score.AnswerError, match=message) as caught:
        score.read_answers([bad], items)
    assert str(bad) in str(caught.value)


def _v2s(argv: list[str]) -> int:
    """`v2s listening-test ...` as v2s_models/cli.py runs it, over `cli.register`."""
    parser = argparse.ArgumentParser(prog="v2s")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_cli_reports_errors_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _write_csv(tmp_path / "bad.csv", [["r1", "aaaaaaaaaa", "real", "c1", "realism", "0", "t"]])
    assert _v2s(["listening-test", "score", str(bad), "--key", str(_key(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{bad}, row 2" in err
    assert _v2s(["listening-test", "build", str(tmp_path), "--out", str(tmp_path / "t.html")]) == 2
    assert "error: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _v2s(["listening-test"])  # a sub-command is required


# --- the page in headless Chromium -------------------------------------------------------------------------

# What the "rater" clicks, per system: MOS answers and the real-or-fake choice (regnet alternates).
CLICKS = {
    "real": {"realism": "5", "alignment": "4"},
    "regnet_demo": {"realism": "2", "alignment": "3"},
}


def test_page_in_headless_chromium(
    eval_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.browser import chromium_session, wait_for_file

    page = tmp_path / "test.html"
    assert _v2s(["listening-test", "build", str(eval_dir), "--out", str(page), "--seed", "7"]) == 0
    key = json.loads((tmp_path / "test.key.json").read_text())
    system_of = {i: v["system"] for i, v in key["items"].items()}
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with chromium_session(downloads) as web:
        web.get(page.as_uri())
        videos = web.find_elements("css selector", "#part1 video")
        assert len(videos) == 4
        assert all(v.get_attribute("src").startswith("data:video/mp4;base64,") for v in videos)
        played = web.execute_async_script(
            """const done = arguments[arguments.length - 1];
            const v = document.querySelector('#part1 video');
            v.play().then(() => setTimeout(() => done({t: v.currentTime, ready: v.readyState,
                error: v.error && v.error.message, audio: v.webkitAudioDecodedByteCount}), 600))
             .catch(e => done({failed: String(e), error: v.error && v.error.message}));"""
        )
        assert "failed" not in played and played["error"] is None, played
        assert played["t"] > 0.1 and played["ready"] >= 2 and played["audio"] > 0, played
        durations = web.execute_async_script(
            """const done = arguments[arguments.length - 1];
            const vs = [...document.querySelectorAll('#part1 video')];
            Promise.all(vs.map(v => v.readyState >= 1 ? v.duration :
                new Promise(r => { v.onloadedmetadata = () => r(v.duration); v.onerror = () => r(-1); v.load(); })))
              .then(done);"""
        )
        assert all(d == pytest.approx(CUT_S, abs=0.15) for d in durations), durations
        shot = tmp_path / "listening_test.png"
        web.save_screenshot(str(shot))
        with capsys.disabled():
            print(f"\nscreenshot of the listening-test page: {shot}")

        web.find_element("id", "rater").send_keys("rater, one")  # a comma: the CSV must quote it
        regnet_seen = 0
        for item in key["order"]:
            system = system_of[item]
            answers = dict(CLICKS[system])
            if system == "real":
                answers["real_or_fake"] = "real"
            else:
                answers["real_or_fake"] = "real" if regnet_seen == 0 else "fake"
                regnet_seen += 1
            for question, value in answers.items():
                web.find_element("css selector", f'input[name="{item}|{question}"][value="{value}"]').click()
        assert web.find_element("id", "progress").text == "Answered 12 of 14 questions"

        web.refresh()
        assert web.find_element("id", "rater").get_attribute("value") == "rater, one"
        checked = web.find_elements("css selector", "#part1 input:checked")
        assert len(checked) == 12, "answers must survive a reload (localStorage)"
        start = web.find_element("id", "start-part2")
        assert start.is_enabled()
        start.click()
        assert web.execute_script(
            "return [...document.querySelectorAll('#part1 fieldset')].every(f => f.disabled)"
        )
        assert not any(i.is_enabled() for i in web.find_elements("css selector", "#part1 input")), (
            "part 1 locked"
        )
        pairs = web.find_elements("css selector", "#pairs section.pair")
        assert len(pairs) == 2
        for k, pair in enumerate(pairs):
            item = pair.get_attribute("data-item")
            assert system_of[item] == "regnet_demo"
            target = pair.find_element("css selector", "audio.target").get_attribute("src")
            assert target.startswith("data:video/mp4;base64,")
            pair.find_element("css selector", f'input[value="{4 if k == 0 else 2}"]').click()
        web.refresh()
        assert web.find_element("id", "part2").is_displayed(), "part 2 must stay open after a reload"
        assert len(web.find_elements("css selector", "#pairs input:checked")) == 2

        web.find_element("id", "export").click()
        exported = wait_for_file(downloads, "listening-*.csv")
        assert "Exported 14 answers" in web.find_element("id", "export-status").text

    rows = list(csv.DictReader(exported.read_text().splitlines()))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 14
    assert {r["rater"] for r in rows} == {"rater, one"}
    for r in rows:
        assert r["system"] == system_of[r["item"]] and r["clip"] == key["items"][r["item"]]["clip"]
        assert r["timestamp"].endswith("Z")
    assert sorted(r["answer"] for r in rows if r["question"] == "timbre") == ["2", "4"]

    summary = tmp_path / "summary.json"
    assert _v2s(["listening-test", "score", str(exported), "--key", str(tmp_path / "test.key.json"),
                 "--out", str(summary)]) == 0  # fmt: skip
    table = capsys.readouterr().out
    assert "| real | 1 | 5.00 ± 0.00 (n=2) | 4.00 ± 0.00 (n=2) |" in table, table
    stats = {(s["system"], s["question"]): s for s in json.loads(summary.read_text())}
    for system, answers in CLICKS.items():
        for question, value in answers.items():
            assert stats[system, question]["mean"] == float(value) and stats[system, question]["n"] == 2
    assert (
        stats["real", "real_or_fake"]["mean"] == 1.0 and stats["regnet_demo", "real_or_fake"]["mean"] == 0.5
    )
    assert stats["regnet_demo", "timbre"]["mean"] == 3.0 and ("real", "timbre") not in stats
