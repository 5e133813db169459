"""Score a listening test: MOS with 95 % confidence intervals and the real-or-fake rate, per system.

MOS intervals are Student-t intervals, mean +/- t(0.975, n - 1) * s / sqrt(n) with s the sample standard
deviation (ddof 1): exact for normal scores at any n, and the familiar +/- 1.96 s / sqrt(n) for large n. The
real-or-fake rate is the fraction of answers "real" (Zhou et al. Table 2), with a 95 % Wilson score interval.
As in the papers, every rating counts as one observation (raters and clips are not modelled separately).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from v2s_models.io import write_text
from v2s_models.listening.build import KEY_FORMAT
from v2s_models.listening.page import CSV_COLUMNS
from v2s_models.listening.questions import QUESTIONS


class AnswerError(ValueError):
    """A CSV that cannot be scored; the message names the file and the row."""


@dataclass(frozen=True)
class Answer:
    rater: str
    item: str
    system: str
    clip: str
    question: str
    answer: str
    timestamp: str


@dataclass(frozen=True)
class Stat:
    """One number of the results table: a MOS (mean, 95 % CI half-width) or a real-or-fake rate (fraction
    judged real, 95 % Wilson interval [low, high]); `n` answers from `raters` raters."""

    system: str
    question: str
    n: int
    raters: int
    mean: float
    ci95: float | None = None
    low: float | None = None
    high: float | None = None


def read_key(paths: str | Path | Sequence[str | Path]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """({item id: {"system", "clip", ...}}, systems in the tests' order) from one or more key files (pages built
    with different seeds or clips)."""
    items: dict[str, dict[str, str]] = {}
    systems: list[str] = []
    for path in [paths] if isinstance(paths, str | Path) else paths:
        try:
            key = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise AnswerError(f"{path}: not a readable key file ({e})") from e
        if key.get("format") != KEY_FORMAT:
            raise AnswerError(
                f"{path}: not a listening-test key (format {key.get('format')!r}, want {KEY_FORMAT})"
            )
        for item, info in key["items"].items():
            if item in items and items[item] != info:
                raise AnswerError(
                    f"{path}: item {item} is also in another key with a different system or clip"
                )
            items[item] = info
        systems += [s for s in key["systems"] if s not in systems]
    return items, systems


def read_answers(paths: Sequence[str | Path], key: dict[str, dict[str, str]]) -> tuple[list[Answer], int]:
    """Every answer of the CSV files, checked against the key, and how many duplicates were dropped.

    A rater's answer to the same item and question in several rows (two exports given together) counts once:
    the latest timestamp wins. The key is the authority on system and clip; a CSV naming others is an error.
    """
    latest: dict[tuple[str, str, str], Answer] = {}
    duplicates = 0
    for path in map(Path, paths):
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as e:
            raise AnswerError(f"{path}: cannot read ({e})") from e
        reader = csv.DictReader(text.splitlines())
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise AnswerError(f"{path}: missing column(s) {missing} (want {', '.join(CSV_COLUMNS)})")
        for row_number, row in enumerate(reader, start=2):  # row 1 is the header
            where = f"{path}, row {row_number}"
            values = {c: (row.get(c) or "").strip() for c in CSV_COLUMNS}
            if not values["rater"]:
                raise AnswerError(f"{where}: empty rater id")
            info = key.get(values["item"])
            if info is None:
                raise AnswerError(f"{where}: unknown item {values['item']!r} (not in the key)")
            for field in ("system", "clip"):
                if values[field] and values[field] != info[field]:
                    raise AnswerError(
                        f"{where}: item {values['item']} is {field} {info[field]!r} in the key, "
                        f"{values[field]!r} in the CSV"
                    )
                values[field] = info[field]
            question = QUESTIONS.get(values["question"])
            if question is None:
                raise AnswerError(
                    f"{where}: unknown question {values['question']!r} (want one of {list(QUESTIONS)})"
                )
            allowed = [c for c, _ in question.choices]
            if values["answer"] not in allowed:
                raise AnswerError(
                    f"{where}: answer {values['answer']!r} to {question.key} is out of range (want one of {allowed})"
                )
            answer = Answer(**values)
            k = (answer.rater, answer.item, answer.question)
            if k in latest:
                duplicates += 1
                if answer.timestamp < latest[k].timestamp:
                    continue
            latest[k] = answer
    return list(latest.values()), duplicates


def mos_interval(scores: Sequence[float]) -> tuple[float, float | None]:
    """(mean, 95 % Student-t half-width; None for a single score)."""
    from scipy import stats

    n = len(scores)
    mean = math.fsum(scores) / n
    if n < 2:
        return mean, None
    sd = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion k / n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarize(answers: Sequence[Answer], systems: Sequence[str] | None = None) -> list[Stat]:
    """One Stat per (system, question) with answers, systems in the given order (else sorted)."""
    order = list(systems) if systems else sorted({a.system for a in answers})
    out = []
    for system in order:
        for question in QUESTIONS.values():
            chosen = [a for a in answers if a.system == system and a.question == question.key]
            if not chosen:
                continue
            raters = len({a.rater for a in chosen})
            if question.mos:
                mean, ci = mos_interval([float(a.answer) for a in chosen])
                out.append(Stat(system, question.key, len(chosen), raters, mean, ci95=ci))
            else:
                real = sum(a.answer == "real" for a in chosen)
                low, high = wilson_interval(real, len(chosen))
                out.append(
                    Stat(system, question.key, len(chosen), raters, real / len(chosen), low=low, high=high)
                )
    return out


def _cell(stat: Stat | None) -> str:
    if stat is None:
        return "-"
    if stat.low is not None:
        return f"{100 * stat.mean:.1f} % [{100 * stat.low:.1f}, {100 * stat.high:.1f}] (n={stat.n})"
    ci = f" ± {stat.ci95:.2f}" if stat.ci95 is not None else ""
    return f"{stat.mean:.2f}{ci} (n={stat.n})"


def markdown_table(stats: Sequence[Stat], systems: Sequence[str] | None = None) -> str:
    """Systems as rows, questions as columns: MOS ± 95 % CI, and % judged real [95 % CI]."""
    order = list(systems) if systems else list(dict.fromkeys(s.system for s in stats))
    questions = [q for q in QUESTIONS.values() if any(s.question == q.key for s in stats)]
    by = {(s.system, s.question): s for s in stats}
    header = ["system", "raters"] + [f"{q.title} ({'MOS' if q.mos else '% real'})" for q in questions]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for system in order:
        raters = max((s.raters for s in stats if s.system == system), default=0)
        cells = [system, str(raters)] + [_cell(by.get((system, q.key))) for q in questions]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(stats: Sequence[Stat], path: str | Path) -> None:
    """The stats as JSON (a list of objects) or CSV (one row per system x question), by the file's extension."""

    path = Path(path)
    rows = [asdict(s) for s in stats]
    if path.suffix.lower() == ".json":
        write_text(path, json.dumps(rows, indent=2) + "\n")
    elif path.suffix.lower() == ".csv":
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[f.name for f in fields(Stat)])
        writer.writeheader()
        writer.writerows(rows)
        write_text(path, buf.getvalue())
    else:
        raise ValueError(f"{path}: write the summary to a .json or .csv file")
