"""The papers' tables in their own shape, the published figures beside ours (results/papers.md).

Each row names the published figure (from ../shared/PAPERS.md and the papers), ours with its interval from the
evaluation that reproduces that row's protocol, or "no run yet" when no evaluation does, and the protocol
differences that remain. Nothing here is estimated: a missing run is a missing figure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from v2s_models.evaluation.reporting import markdown_table, read_summary
from v2s_models.metrics.stats import Interval

NO_RUN = "no run yet"
Doc = Mapping[str, Any]


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


def _find(docs: Sequence[Doc], want: Callable[[Doc], bool]) -> Doc | None:
    return next((d for d in docs if want(d)), None)


def _name_has(*parts: str, background: str = "silence") -> Callable[[Doc], bool]:
    def match(doc: Doc) -> bool:
        name = str(doc["model"]).lower()
        bg = (doc.get("protocol") or {}).get("background", "silence")
        return all(p in name for p in parts) and bg == background

    return match


def _row(label: str, published: str, doc: Doc | None, metric: str, differences: str) -> dict[str, Any]:
    fig = _model_figure(doc, metric) if doc is not None else None
    return {
        "row": label,
        "published": published,
        "ours": fig if fig is not None else NO_RUN,
        "evaluation": str(doc["model"]) if doc is not None else "",
        "protocol differences": differences if fig is not None else "",
    }


def varietysound_tables(docs: Sequence[Doc]) -> str:
    """Tables 7-8 (MCD on original pairs, dB) and Table 2 (Resemblyzer cosine to the reference)."""
    vs = [d for d in docs if "varietysound" in str(d["model"]).lower()]
    diff = "{} ; MCD on each clip as its own reference over all its test clips (paper: 10 pairs a category)"

    def rows_for(spec: Sequence[tuple[str, str, Callable[[Doc], bool]]]) -> list[dict[str, Any]]:
        out = []
        for label, published, want in spec:
            doc = _find(vs, want)
            out.append(
                _row(
                    label,
                    published,
                    doc,
                    "mcd_own_reference_db",
                    diff.format(_differences(doc, "HiFi-GAN", "VAS")),
                )
            )
        return out

    full = _name_has("varietysound")

    def ablation(tag: str) -> Callable[[Doc], bool]:
        return _name_has("varietysound", tag)

    t7 = rows_for(
        [
            ("Proposed", "4.14 [±0.07]", lambda d: full(d) and "no_" not in str(d["model"]).lower()),
            ("w/o MD", "4.25 [±0.08]", ablation("no_mel_d")),
            ("w/o TDAD", "4.43 [±0.08]", ablation("no_tdad")),
        ]
    )
    t8 = rows_for(
        [
            ("Proposed", "4.14 [±0.07]", lambda d: full(d) and "no_" not in str(d["model"]).lower()),
            ("w Bi", "3.60 [±0.07]", _name_has("varietysound", background="real")),
            ("w/o Te", "4.33 [±0.08]", ablation("no_temporal")),
            ("w/o Ti", "5.25 [±0.12]", ablation("no_timbre")),
            ("w/o Te & Ti", "5.21 [±0.12]", ablation("no_temporal_timbre")),
        ]
    )
    doc = _find(vs, lambda d: "no_" not in str(d["model"]).lower())
    t2 = [
        _row(
            "Ours (VarietySound)",
            "0.90 [±0.01]",
            doc,
            "timbre_sim_reference",
            _differences(doc, "HiFi-GAN", "VAS"),
        ),
        {"row": "Baseline (cascade)", "published": "0.84 [±0.01]", "ours": "not implemented in v2s"},
    ]
    cols = ["row", "published", "ours", "evaluation", "protocol differences"]
    return (
        "## VarietySound\n\n"
        "Tables 1 (MOS: realism, alignment) and the MOS half of Table 2 come from listening tests: see the "
        "listening kit (`v2s listen`), which reports MOS with intervals; no listening run is recorded here.\n\n"
        "### Table 2: timbre similarity (Resemblyzer cosine to the reference audio; higher is better)\n\n"
        + markdown_table(t2, cols)
        + "\n### Table 7: MCD without one discriminator (dB, original pairs; lower is better)\n\n"
        + markdown_table(t7, cols)
        + "\n### Table 8: MCD with or without generator components (dB, original pairs)\n\n"
        + markdown_table(t8, cols)
        + "\nOur figure is `mcd_own_reference_db` (each clip its own timbre reference, as the paper's "
        "\"original pairs\"); `mcd_mel_db` (another clip's timbre) is not comparable with 4.14 dB. The paper's "
        "± are standard errors, ours 95 % bootstrap intervals.\n"
    )


def zhou_table(docs: Sequence[Doc]) -> str:
    """Zhou et al.'s Table 1 (test cross-entropy per sample, nats) and their retrieval baseline's row."""
    ar = [d for d in docs if d.get("paradigm") == "autoregressive"]
    rows = []
    for label, published, tag in (
        ("Frame", "2.71", "frame"),
        ("Seq", "2.69", "seq"),
        ("Flow", "2.68", "flow"),
    ):
        doc = _find(ar, lambda d, t=tag: t in str(d["model"]).lower())
        retrieval = (doc or {}).get("protocol", {}).get("retrieval", {})
        extra = f"; {retrieval.get('clips')} clips, {retrieval.get('seconds')} s each" if retrieval else ""
        rows.append(
            _row(label, published, doc, "nll_nats", _differences(doc, "none (SampleRNN)", "VEGAS") + extra)
        )
    base = _find(ar, lambda d: "retrieval_oracle" in d.get("systems", {}))
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
    cols = ["row", "published", "ours", "evaluation", "protocol differences"]
    return (
        "## Visual to Sound (Zhou et al. 2018)\n\n"
        "### Table 1: average cross-entropy per sample on the test set (nats; lower is better)\n\n"
        + markdown_table(rows, cols)
        + "\nThe paper tests on 128 clips a category; ours on the stratified sample named in each row.\n"
    )


def regnet_table(docs: Sequence[Doc]) -> str:
    """REGNET reports no objective table: its one figure is a human study."""
    doc = _find(docs, lambda d: "regnet" in str(d["model"]).lower())
    ours = _model_figure(doc, "onset_f1") if doc is not None else None
    return (
        "## REGNET (Chen et al. 2020)\n\n"
        "The paper has no objective table (its headline, 68.12 % of generated clips judged real, is a human "
        "study). For the record, our evaluation's onset F1: "
        + (f"{ours.format()} ({doc['model']})" if ours is not None else NO_RUN)
        + ".\n"
    )


def paper_tables(docs: Sequence[Doc]) -> str:
    """results/papers.md from the metrics.json documents of every evaluation."""
    return (
        "# The papers' tables beside ours\n\n"
        "Made by the `report` stage from evaluations/*/metrics.json. Published figures are the papers' "
        "(../shared/PAPERS.md); ours carry 95 % bootstrap intervals; rows without an evaluation say so.\n\n"
        + varietysound_tables(docs)
        + "\n"
        + zhou_table(docs)
        + "\n"
        + regnet_table(docs)
    )
