"""The papers' tables in their own shape, the published figures beside ours (results/papers.md).

Each row names the published figure (from ../shared/PAPERS.md and the papers), ours with its interval from the
evaluation that reproduces that row's protocol, or "no run yet" when no evaluation does, and the protocol
differences that remain. Nothing here is estimated: a missing run is a missing figure, and MOS come only from
listening-test ratings (`v2s listening-test score ... --out listening/mos.json`); without them the MOS tables
say so and give the kit's commands.

Which evaluation fills which row (`match_rows`) is decided on the evaluation's model name, token by token, never
by substring: a name is `<config or experiment name>` or, for an ablation grid's trial, `<grid>-<entry>`
(ray_jobs/studies.py names trials so). The grid entries are those of experiments/sweeps/ablations/
(varietysound_table7: proposed, without_mel_discriminator, without_tdad; varietysound_table8: proposed,
without_temporal, without_timbre, with_background_info; zhou_encoders: frame, seq, flow). A row takes only the
entry it names: `without_temporal` is not `without_temporal_timbre`, `seq2seq_demo` is not Zhou's Seq, and
`regnet_regularizer-without_regularizer` is not REGNET.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from v2s_models.evaluation.reporting import markdown_table, read_summary
from v2s_models.metrics.stats import Interval

NO_RUN = "no run yet"
LISTENING_SUMMARY = Path("listening") / "mos.json"  # `v2s listening-test score ... --out listening/mos.json`
Doc = Mapping[str, Any]
Rule = Callable[[Doc], bool]
COLS = ["row", "published", "ours", "evaluation", "protocol differences"]

LISTENING_COMMANDS = (
    "`v2s listening-test build evaluations/varietysound_demo --out test.html` (raters answer in a browser and "
    "export a CSV), then `v2s listening-test score answers/*.csv --key test.key.json --out listening/mos.json` "
    "and `dvc repro -f report` (docs/listening_test.md)"
)


# ------------------------------------------------------------------ which evaluation is which published row
def name_parts(model: str) -> tuple[tuple[str, ...], str | None]:
    """(the name's tokens, the ablation-grid entry or None): `varietysound_table8-without_timbre` ->
    (("varietysound", "table8"), "without_timbre"); `zhou_frame_demo` -> (("zhou", "frame", "demo"), None)."""
    base, sep, entry = str(model).lower().rpartition("-")
    if not sep:
        base, entry = str(model).lower(), ""
    tokens = tuple(t for t in re.split(r"[_\s./]+", base) if t)
    return tokens, (entry or None)


def _background(doc: Doc) -> str:
    return str((doc.get("protocol") or {}).get("background", "silence"))


def _varietysound(doc: Doc) -> bool:
    tokens, _ = name_parts(doc["model"])
    return bool(tokens) and tokens[0] == "varietysound"


def vs_entry(*entries: str | None, background: str = "silence") -> Rule:
    """A VarietySound evaluation whose grid entry is one of `entries` (None: a model outside a grid), evaluated
    with `background` fed to the background encoder."""

    def rule(doc: Doc) -> bool:
        return (
            _varietysound(doc) and name_parts(doc["model"])[1] in entries and _background(doc) == background
        )

    return rule


PROPOSED = vs_entry(None, "proposed")
W_BI = vs_entry("with_background_info", None, "proposed", background="real")


def zhou_method(method: str) -> Rule:
    """A SampleRNN evaluation of Zhou's `method`: grid entry `zhou_encoders-<method>`, or a config / experiment
    named zhou_<method>[_...] (zhou_frame_demo)."""

    def rule(doc: Doc) -> bool:
        if doc.get("paradigm") not in (None, "autoregressive"):
            return False
        tokens, entry = name_parts(doc["model"])
        if entry is not None:
            return tokens == ("zhou", "encoders") and entry == method
        return len(tokens) >= 2 and tokens[0] == "zhou" and tokens[1] == method

    return rule


def regnet_model(doc: Doc) -> bool:
    """REGNET as published (a config or experiment named regnet[_...], not an ablation trial)."""
    tokens, entry = name_parts(doc["model"])
    return (
        bool(tokens) and tokens[0] == "regnet" and entry is None and doc.get("paradigm") in (None, "gan_mel")
    )


# (table, row, rule): every row of an objective table that an evaluation can fill
ROWS: tuple[tuple[str, str, Rule], ...] = (
    ("VarietySound Table 2", "Ours (VarietySound)", PROPOSED),
    ("VarietySound Table 7", "Proposed", PROPOSED),
    ("VarietySound Table 7", "w/o MD", vs_entry("without_mel_discriminator")),
    ("VarietySound Table 7", "w/o TDAD", vs_entry("without_tdad")),
    ("VarietySound Table 8", "Proposed", PROPOSED),
    ("VarietySound Table 8", "w Bi", W_BI),
    ("VarietySound Table 8", "w/o Te", vs_entry("without_temporal")),
    ("VarietySound Table 8", "w/o Ti", vs_entry("without_timbre")),
    ("VarietySound Table 8", "w/o Te & Ti", vs_entry("without_temporal_timbre")),
    ("Zhou Table 1", "Frame", zhou_method("frame")),
    ("Zhou Table 1", "Seq", zhou_method("seq")),
    ("Zhou Table 1", "Flow", zhou_method("flow")),
    ("REGNET", "REGNET", regnet_model),
)


def match_rows(docs: Sequence[Doc]) -> dict[tuple[str, str], Doc | None]:
    """{(table, row): the evaluation that fills it, or None}; the first matching evaluation in name order."""
    ordered = sorted(docs, key=lambda d: str(d["model"]))
    return {(table, row): next((d for d in ordered if rule(d)), None) for table, row, rule in ROWS}


# ------------------------------------------------------------------ cells
def _model_figure(doc: Doc, metric: str, system: str | None = None) -> Interval | None:
    figures = read_summary(doc).get(system or str(doc["model"]), {})
    iv = figures.get(metric)
    return iv if iv is not None and math.isfinite(iv.value) else None


def _differences(doc: Doc | None, paper_vocoder: str, paper_data: str) -> str:
    if doc is None:
        return ""
    return (
        f"data: {doc.get('clips')} {doc.get('split')} clips of v2s's prepared set, not {paper_data}; "
        f"vocoder: {doc.get('vocoder')} (paper: {paper_vocoder}); visual features: v2s's extractor "
        "(params.yaml features), not BN-Inception RGB + TV-L1 flow"
    )


def _row(label: str, published: str, doc: Doc | None, metric: str, differences: str) -> dict[str, Any]:
    fig = _model_figure(doc, metric) if doc is not None else None
    return {
        "row": label,
        "published": published,
        "ours": fig if fig is not None else NO_RUN,
        "evaluation": str(doc["model"]) if doc is not None else "",
        "protocol differences": differences if fig is not None else "",
    }


# ------------------------------------------------------------------ listening (MOS)
def read_listening(root: str | Path) -> list[dict[str, Any]]:
    """The listening kit's summary at `root`/listening/mos.json (a list of {system, question, n, raters, mean,
    ci95, low, high}, as `v2s listening-test score --out` writes it); [] when no ratings were collected."""
    path = Path(root) / LISTENING_SUMMARY
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise ValueError(f"{path}: expected the list `v2s listening-test score --out` writes")
    return [dict(r) for r in rows]


def _mos(listening: Sequence[Mapping[str, Any]], system: str | None, question: str) -> str:
    if system is None:
        return "not rated"
    stat = next((r for r in listening if r.get("system") == system and r.get("question") == question), None)
    if stat is None:
        return "not rated"
    ci = stat.get("ci95")
    return (
        f"{float(stat['mean']):.2f}" + (f" ± {float(ci):.2f}" if ci is not None else "") + f" (n={stat['n']})"
    )


def _rated_model(listening: Sequence[Mapping[str, Any]]) -> str | None:
    """The VarietySound system among the rated ones (a model outside an ablation grid, or its `proposed`)."""
    systems = sorted({str(r.get("system")) for r in listening})
    return next((s for s in systems if PROPOSED({"model": s})), None)


def mos_tables(listening: Sequence[Mapping[str, Any]]) -> tuple[str, dict[str, str]]:
    """(Table 1 in the paper's shape, {"baseline", "ours"}: Table 2's MOS cells) from the kit's summary."""
    gt, ours = "revoiced", _rated_model(listening)  # the paper's GT is the real mel through the vocoder
    published = {
        "realism": ("4.42 (±0.04)", "2.99 (±0.08)", "4.04 (±0.05)"),
        "alignment": ("4.41 (±0.03)", "3.90 (±0.07)", "4.23 (±0.04)"),
    }
    cols = ["row"] + [f"{q} {who}" for q in ("Realism", "Alignment") for who in ("GT", "Baseline", "Ours")]
    cols.append("protocol differences")
    paper = {"row": "Average (published)", "protocol differences": ""}
    for q, label in (("realism", "Realism"), ("alignment", "Alignment")):
        for who, value in zip(("GT", "Baseline", "Ours"), published[q], strict=True):
            paper[f"{label} {who}"] = value
    rows = [paper]
    if listening:
        mine = {"row": "Average (ours)"}
        for q, label in (("realism", "Realism"), ("alignment", "Alignment")):
            mine[f"{label} GT"] = _mos(listening, gt, q)
            mine[f"{label} Baseline"] = "not implemented in v2s"
            mine[f"{label} Ours"] = _mos(listening, ours, q)
        raters = max(int(r.get("raters", 0)) for r in listening)
        mine["protocol differences"] = (
            f"{raters} rater(s) of v2s's listening kit, not Amazon Mechanical Turk; GT = `revoiced` (the real "
            f"mel through v2s's vocoder, as the paper's GT through HiFi-GAN); ours = `{ours or 'none rated'}`; "
            "one average over the rated clips, not per category"
        )
        rows.append(mine)
        note = "Ours: MOS ± 95 % Student-t half-width (n ratings); the paper's ± as printed."
    else:
        note = f"**No listening ratings were collected** (no {LISTENING_SUMMARY}): to fill the row, {LISTENING_COMMANDS}."
    table2 = {
        "baseline": "not implemented in v2s",
        "ours": _mos(listening, ours, "timbre") if listening else NO_RUN,
    }
    text = (
        "### Table 1: MOS of audio realism and temporal alignment (1-5; higher is better)\n\n"
        + markdown_table(rows, cols)
        + "\nThe paper's rows are its eight categories and their average; the kit averages over every rated "
        "clip, so only the average row is compared. " + note + "\n"
    )
    return text, table2


# ------------------------------------------------------------------ the papers
def varietysound_tables(docs: Sequence[Doc], listening: Sequence[Mapping[str, Any]] = ()) -> str:
    """Table 1 (MOS), Table 2 (MOS and Resemblyzer cosine to the reference) and Tables 7-8 (MCD on original
    pairs, dB)."""
    match = match_rows(docs)
    diff = (
        "{}; MCD over every test clip as its own reference (paper: 10 original pairs drawn from the test set)"
    )

    def rows_for(table: str, spec: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        out = []
        for label, published in spec:
            doc = match[(table, label)]
            differences = diff.format(_differences(doc, "HiFi-GAN", "VAS"))
            if label == "w Bi" and doc is not None:
                differences += "; evaluated with --background real (the clip's own mel as background)"
            out.append(_row(label, published, doc, "mcd_own_reference_db", differences))
        return out

    t7 = rows_for(
        "VarietySound Table 7",
        [("Proposed", "4.14 [±0.07]"), ("w/o MD", "4.25 [±0.08]"), ("w/o TDAD", "4.43 [±0.08]")],
    )
    t8 = rows_for(
        "VarietySound Table 8",
        [
            ("Proposed", "4.14 [±0.07]"),
            ("w Bi", "3.60 [±0.07]"),
            ("w/o Te", "4.33 [±0.08]"),
            ("w/o Ti", "5.25 [±0.12]"),
            ("w/o Te & Ti", "5.21 [±0.12]"),
        ],
    )
    table1, mos = mos_tables(listening)
    doc = match[("VarietySound Table 2", "Ours (VarietySound)")]
    cosine = _model_figure(doc, "timbre_sim_reference") if doc is not None else None
    t2_cols = ["row", "MOS Baseline", "MOS Ours", "Cosine Baseline", "Cosine Ours", "evaluation"]
    t2_cols.append("protocol differences")
    t2 = [
        {
            "row": "Average (published)",
            "MOS Baseline": "3.57 (±0.07)",
            "MOS Ours": "3.89 (±0.03)",
            "Cosine Baseline": "0.84 (±0.01)",
            "Cosine Ours": "0.90 (±0.01)",
        },
        {
            "row": "Average (ours)",
            "MOS Baseline": mos["baseline"],
            "MOS Ours": mos["ours"],
            "Cosine Baseline": "not implemented in v2s (the paper's cascade)",
            "Cosine Ours": cosine if cosine is not None else NO_RUN,
            "evaluation": str(doc["model"]) if doc is not None else "",
            "protocol differences": _differences(doc, "HiFi-GAN", "VAS") if cosine is not None else "",
        },
    ]
    return (
        "## VarietySound\n\n"
        + table1
        + "\n### Table 2: timbre similarity (MOS 1-5, and Resemblyzer cosine to the reference audio; higher is "
        "better)\n\n"
        + markdown_table(t2, t2_cols)
        + "\n### Table 7: MCD without one discriminator (dB, original pairs; lower is better)\n\n"
        + markdown_table(t7, COLS)
        + "\n### Table 8: MCD with or without generator components (dB, original pairs)\n\n"
        + markdown_table(t8, COLS)
        + "\nOur figure is `mcd_own_reference_db` (each clip its own timbre reference, as the paper's "
        "\"original pairs\"); `mcd_mel_db` (another clip's timbre) is not comparable with 4.14 dB. The paper's "
        "± are standard errors, ours 95 % bootstrap intervals. Rows are matched by the ablation grids' entry "
        'names (experiments/sweeps/ablations/varietysound_table7.py, varietysound_table8.py); "w/o Te & Ti" '
        "has no grid entry yet.\n"
    )


def zhou_table(docs: Sequence[Doc]) -> str:
    """Zhou et al.'s Table 1 (test cross-entropy per sample, nats) and their retrieval baseline's row."""
    match = match_rows(docs)
    rows = []
    for label, published in (("Frame", "2.71"), ("Seq", "2.69"), ("Flow", "2.68")):
        doc = match[("Zhou Table 1", label)]
        retrieval = (doc or {}).get("protocol", {}).get("retrieval", {})
        extra = f"; {retrieval.get('clips')} clips, {retrieval.get('seconds')} s each" if retrieval else ""
        rows.append(
            _row(label, published, doc, "nll_nats", _differences(doc, "none (SampleRNN)", "VEGAS") + extra)
        )
    ar = sorted((d for d in docs if d.get("paradigm") == "autoregressive"), key=lambda d: str(d["model"]))
    base = next((d for d in ar if "retrieval_oracle" in d.get("systems", {})), None)
    fig = _model_figure(base, "onset_f1", "retrieval_oracle") if base is not None else None
    rows.append(
        {
            "row": "Retrieval baseline [9] (upper bound)",
            "published": "no cross-entropy (human study only: 40.16 % dog, 43.75 % drum judged real)",
            "ours": f"onset F1 {fig.format()}" if fig is not None else NO_RUN,
            "evaluation": str(base["model"]) if base is not None else "",
            "protocol differences": "log-mel features instead of cochleograms" if fig is not None else "",
        }
    )
    return (
        "## Visual to Sound (Zhou et al. 2018)\n\n"
        "### Table 1: average cross-entropy per sample on the test set (nats; lower is better)\n\n"
        + markdown_table(rows, COLS)
        + "\nThe paper tests on 128 clips a category; ours on the stratified sample named in each row. Rows are "
        "matched by name: zhou_<method>[_...] or the grid entry zhou_encoders-<method>.\n"
    )


def regnet_table(docs: Sequence[Doc]) -> str:
    """REGNET reports no objective table: its one figure is a human study."""
    doc = match_rows(docs)[("REGNET", "REGNET")]
    ours = _model_figure(doc, "onset_f1") if doc is not None else None
    return (
        "## REGNET (Chen et al. 2020)\n\n"
        "The paper has no objective table (its headline, 68.12 % of generated clips judged real, is a human "
        "study). For the record, our evaluation's onset F1: "
        + (f"{ours.format()} ({doc['model']})" if ours is not None and doc is not None else NO_RUN)
        + ".\n"
    )


def paper_tables(docs: Sequence[Doc], listening: Sequence[Mapping[str, Any]] = ()) -> str:
    """results/papers.md from the metrics.json documents of every evaluation and the listening kit's MOS
    summary (`read_listening`; empty: no ratings collected)."""
    return (
        "# The papers' tables beside ours\n\n"
        "Made by the `report` stage from evaluations/*/metrics.json (and listening/mos.json when listening "
        "ratings were collected). Published figures are the papers' (../shared/PAPERS.md); ours carry 95 % "
        "intervals; rows without an evaluation say so.\n\n"
        + varietysound_tables(docs, listening)
        + "\n"
        + zhou_table(docs)
        + "\n"
        + regnet_table(docs)
    )
