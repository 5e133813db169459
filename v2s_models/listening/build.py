"""Build a listening test from evaluation folders: one self-contained HTML page and its answer key.

An evaluation folder holds `samples/<system>/<clip>.mp4`: the same clips with the sound of each system (`real`,
a model, baselines). The test asks about `clips` clips chosen at random among those every chosen system has, each
under every system (a balanced design), in one seeded random order. Items carry opaque ids; which system and clip
an item is lives in the key file written beside the page (`<page>.key.json`) and, unless `hide_systems`, lightly
obfuscated in the page itself so that its CSV export names them (a rater who decodes it learns nothing useful
before answering: the systems are not shown).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from v2s_models.io import write_json, write_text
from v2s_models.listening.media import embeddable_mp4
from v2s_models.listening.page import render_page
from v2s_models.listening.questions import Question, parse_questions
from v2s_models.media.mux import make_readable

KEY_FORMAT = "v2s-listening-test/1"
SIZE_WARNING_BYTES = 200 * 2**20
"""Pages above this are slow to open and too big to mail; `BuildResult.warnings` says so."""


@dataclass(frozen=True)
class Item:
    """One video the rater judges: `clip` with the soundtrack of `system`, from `path`."""

    id: str
    system: str
    clip: str
    path: Path


@dataclass
class BuildResult:
    """What `build_test` wrote and why it chose what it chose."""

    html: Path
    key: Path
    items: list[Item]
    systems: list[str]
    clips: list[str]
    questions: list[str]
    size_bytes: int
    reencoded: dict[str, str] = field(default_factory=dict)  # source path -> why
    warnings: list[str] = field(default_factory=list)


def key_path_for(html: str | Path) -> Path:
    """`test.html` -> `test.key.json` (beside it)."""
    html = Path(html)
    return html.with_name(f"{html.stem}.key.json")


def find_samples(eval_dirs: Sequence[str | Path]) -> tuple[dict[tuple[str, str], Path], list[str]]:
    """{(system, clip): mp4 path} over `EVAL_DIR/samples/<system>/<clip>.mp4`, and notes on shadowed duplicates.

    A (system, clip) present in several folders is taken from the first folder listed.
    """
    found: dict[tuple[str, str], Path] = {}
    shadowed = 0
    for d in map(Path, eval_dirs):
        samples = d / "samples"
        if not samples.is_dir():
            raise FileNotFoundError(f"{d}: no samples/ folder (expected samples/<system>/<clip>.mp4)")
        for path in sorted(samples.glob("*/*.mp4")):
            key = (path.parent.name, path.stem)
            if key in found:
                shadowed += 1
                continue
            found[key] = path
    notes = [f"{shadowed} sample(s) also in a later folder were taken from the first"] if shadowed else []
    if not found:
        raise FileNotFoundError(f"no samples/<system>/<clip>.mp4 in {', '.join(map(str, eval_dirs))}")
    return found, notes


def choose_items(
    samples: dict[tuple[str, str], Path],
    *,
    systems: Sequence[str] | None = None,
    clips: int | None = None,
    seed: int = 0,
) -> tuple[list[Item], list[str], list[str], list[str]]:
    """(items in their seeded random order, systems, clips, notes).

    Clips are those every chosen system has; `clips` of them are drawn at random (all when None).
    """
    available = sorted({s for s, _ in samples})
    chosen = list(systems) if systems else available
    missing = [s for s in chosen if s not in available]
    if missing:
        raise ValueError(f"system(s) {missing} not found; the evaluation has {available}")
    per_system = [{c for s, c in samples if s == system} for system in chosen]
    common = sorted(set.intersection(*per_system))
    notes = []
    if len(common) < len(set.union(*per_system)):
        notes.append(
            f"{len(set.union(*per_system)) - len(common)} clip(s) left out: not present for every system"
        )
    if not common:
        raise ValueError(f"no clip is present for every one of the systems {chosen}")
    rng = random.Random(seed)
    if clips is not None:
        if clips < 1:
            raise ValueError(f"--clips must be at least 1, got {clips}")
        if clips > len(common):
            notes.append(f"asked for {clips} clips, only {len(common)} are present for every system")
        common = sorted(rng.sample(common, min(clips, len(common))))
    ids: set[str] = set()
    items = []
    for clip in common:
        for system in chosen:
            item_id = f"{rng.getrandbits(40):010x}"
            while item_id in ids:  # ids are opaque tokens: unique, and saying nothing of the system
                item_id = f"{rng.getrandbits(40):010x}"
            ids.add(item_id)
            items.append(Item(item_id, system, clip, samples[(system, clip)]))
    rng.shuffle(items)
    return items, chosen, common, notes


def obfuscate(mapping: dict[str, list[str]], test_id: str) -> str:
    """The item -> [system, clip] map as base64 of its JSON XOR-ed with the test id: not readable at a glance in
    the page source (not a secret either: the key file is the authority)."""
    data = json.dumps(mapping, sort_keys=True).encode()
    pad = test_id.encode()
    return base64.b64encode(bytes(b ^ pad[i % len(pad)] for i, b in enumerate(data))).decode()


def build_test(
    eval_dirs: Sequence[str | Path],
    out: str | Path,
    *,
    clips: int | None = None,
    seed: int = 0,
    systems: Sequence[str] | None = None,
    questions: str | Sequence[str] | None = None,
    reference_system: str = "real",
    hide_systems: bool = False,
    max_height: int | None = None,
    title: str = "Listening test: sound for silent videos",
) -> BuildResult:
    """Writes the page `out` (.html) and its key `<stem>.key.json` beside it; returns what was written.

    `questions`: keys from `questions.QUESTIONS` (default all). The timbre question (VarietySound Table 6) needs
    a target sound: it is asked, in a second part, of every item whose system is not `reference_system`, with
    the reference system's sound of the same clip as the target; it is left out when that system is not chosen.
    `max_height`: re-encode pictures taller than this (smaller pages); files browsers cannot play are always
    re-encoded (`media.embeddable_mp4`).
    """

    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{out}: the page must be an .html file")
    asked: list[Question] = parse_questions(questions)  # type: ignore[arg-type]
    samples, warnings = find_samples(eval_dirs)
    items, chosen, clip_names, notes = choose_items(samples, systems=systems, clips=clips, seed=seed)
    warnings += notes
    if any(q.part == 2 for q in asked) and reference_system not in chosen:
        warnings.append(
            f"timbre question left out: the reference system {reference_system!r} is not in the test"
        )
        asked = [q for q in asked if q.part != 2]
    test_id = hashlib.sha256(
        json.dumps([seed, [(i.id, i.system, i.clip) for i in items]]).encode()
    ).hexdigest()[:16]

    media: dict[str, str] = {}
    reencoded: dict[str, str] = {}
    for item in items:
        data, why = embeddable_mp4(item.path, max_height=max_height)
        if why:
            reencoded[str(item.path)] = why
        media[item.id] = "data:video/mp4;base64," + base64.b64encode(data).decode()
    reference = {i.clip: i.id for i in items if i.system == reference_system}
    timbre = (
        [{"id": i.id, "ref": reference[i.clip]} for i in items if i.system != reference_system]
        if any(q.part == 2 for q in asked)
        else []
    )
    mapping = {i.id: [i.system, i.clip] for i in items}
    page_data = {
        "test_id": test_id,
        "title": title,
        "questions": [
            {"key": q.key, "title": q.title, "prompt": q.prompt, "choices": q.choices, "part": q.part}
            for q in asked
        ],
        "items": [i.id for i in items],
        "timbre": timbre,
        "map": None if hide_systems else obfuscate(mapping, test_id),
    }
    html = render_page(page_data, media)
    write_text(out, html)
    make_readable(out)
    key = {
        "format": KEY_FORMAT,
        "test_id": test_id,
        "seed": seed,
        "eval_dirs": [str(d) for d in eval_dirs],
        "page": out.name,
        "systems": chosen,
        "clips": clip_names,
        "reference_system": reference_system,
        "questions": [q.key for q in asked],
        "order": [i.id for i in items],
        "items": {i.id: {"system": i.system, "clip": i.clip, "source": str(i.path)} for i in items},
        "timbre_items": [t["id"] for t in timbre],
    }
    key_file = key_path_for(out)
    write_json(key_file, key)
    make_readable(key_file)
    size = out.stat().st_size
    if size > SIZE_WARNING_BYTES:
        warnings.append(
            f"{out} is {size / 2**20:.0f} MB (over {SIZE_WARNING_BYTES // 2**20} MB): slow to open, too big to mail; "
            "use fewer --clips or --max-height"
        )
    return BuildResult(
        html=out,
        key=key_file,
        items=items,
        systems=chosen,
        clips=clip_names,
        questions=[q.key for q in asked],
        size_bytes=size,
        reencoded=reencoded,
        warnings=warnings,
    )
