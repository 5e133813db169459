"""results/papers.md: each evaluation fills the published row it reproduces and no other (names matched token by
token, never by substring), and VarietySound's MOS tables come from the listening kit or say none exist."""

from __future__ import annotations

import json
import random

import pytest

from v2s_models import evaluation as ev
from v2s_models.evaluation.paper_tables import (
    LISTENING_SUMMARY,
    NO_RUN,
    match_rows,
    name_parts,
    paper_tables,
    read_listening,
)
from v2s_models.metrics.stats import Interval


def _doc(name: str, paradigm: str = "gan_mel", background: str = "silence", **figures: float) -> dict:
    summary = {"model": {k: Interval(v, v - 0.1, v + 0.1) for k, v in figures.items()}}
    meta = {"split": "test", "clips": 32, "vocoder": "griffin_lim", "paradigm": paradigm}
    return ev.metrics_document(name, summary, {**meta, "protocol": {"background": background}})


# Evaluations named as the project names them: DVC experiment keys / config names, and ablation-grid trials
# `<grid>-<entry>` (ray_jobs/studies.py). Each name's own row, or None where it must fill no row.
EXPECTED = {
    "varietysound_demo": [("VarietySound Table 7", "Proposed"), ("VarietySound Table 8", "Proposed")],
    "varietysound_table7-without_mel_discriminator": [("VarietySound Table 7", "w/o MD")],
    "varietysound_table7-without_tdad": [("VarietySound Table 7", "w/o TDAD")],
    "varietysound_table8-without_temporal": [("VarietySound Table 8", "w/o Te")],
    "varietysound_table8-without_timbre": [("VarietySound Table 8", "w/o Ti")],
    "varietysound_table8-without_temporal_timbre": [("VarietySound Table 8", "w/o Te & Ti")],
    "zhou_frame_demo": [("Zhou Table 1", "Frame")],
    "zhou_encoders-seq": [("Zhou Table 1", "Seq")],
    "zhou_encoders-flow": [("Zhou Table 1", "Flow")],
    "regnet_demo": [("REGNET", "REGNET")],
    # look-alikes that must fill no row
    "seq2seq_demo": [],  # the correlation-filtered SampleRNN: not Zhou's Seq
    "zhou_encoders-seq2seq": [],
    "regnet_regularizer-without_regularizer": [],  # a REGNET ablation, not REGNET
    "varietysound_table8-with_background_info": [],  # evaluated with silence: not "w Bi", not "Proposed"
    "varietysoundx_demo": [],
}


def _docs() -> list[dict]:
    docs = []
    for name in EXPECTED:
        paradigm = "autoregressive" if name.startswith(("zhou", "seq2seq")) else "gan_mel"
        docs.append(_doc(name, paradigm, mcd_own_reference_db=5.0, nll_nats=3.0, onset_f1=0.5))
    return docs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_row_takes_its_own_evaluation_whatever_the_order(seed):
    docs = _docs()
    random.Random(seed).shuffle(docs)
    match = match_rows(docs)
    want = {row: name for name, rows in EXPECTED.items() for row in rows}
    want[("VarietySound Table 2", "Ours (VarietySound)")] = "varietysound_demo"
    got = {row: (doc["model"] if doc is not None else None) for row, doc in match.items()}
    assert got == {**{row: None for row in match}, **want}


def test_w_bi_is_an_evaluation_with_the_real_background_and_never_the_silent_one():
    silent = _doc("varietysound_table8-with_background_info", mcd_own_reference_db=5.0)
    real = _doc("varietysound_table8-with_background_info", background="real", mcd_own_reference_db=4.0)
    assert match_rows([silent])[("VarietySound Table 8", "w Bi")] is None
    assert match_rows([silent, real])[("VarietySound Table 8", "w Bi")] is real
    plain_real = _doc("varietysound_demo", background="real", mcd_own_reference_db=4.0)
    match = match_rows([plain_real])
    assert match[("VarietySound Table 8", "w Bi")] is plain_real
    assert match[("VarietySound Table 8", "Proposed")] is None  # the real background is not the proposed row


def test_name_parts_split_the_grid_entry_from_the_config_name():
    assert name_parts("varietysound_table8-without_timbre") == (("varietysound", "table8"), "without_timbre")
    assert name_parts("Zhou_Frame_demo") == (("zhou", "frame", "demo"), None)


def test_tables_show_each_rows_figure_in_its_own_line():
    docs = _docs()
    figures = {
        "varietysound_table8-without_temporal": 4.5,
        "varietysound_table8-without_temporal_timbre": 6.5,
    }
    docs = [d for d in docs if d["model"] not in figures]
    docs += [_doc(n, mcd_own_reference_db=v) for n, v in figures.items()]
    lines = paper_tables(docs).splitlines()
    te = next(line for line in lines if line.startswith("| w/o Te |"))
    both = next(line for line in lines if line.startswith("| w/o Te & Ti |"))
    assert "4.500 [4.400, 4.600]" in te and "varietysound_table8-without_temporal |" in te
    assert "6.500 [6.400, 6.600]" in both and "without_temporal_timbre" in both
    seq = next(line for line in lines if line.startswith("| Seq |"))
    assert "zhou_encoders-seq |" in seq


def test_mos_tables_say_no_ratings_and_give_the_kits_command(tmp_path):
    assert read_listening(tmp_path) == []
    text = paper_tables([_doc("varietysound_demo", timbre_sim_reference=0.8)])
    assert "| Average (published) | 4.42 (±0.04) | 2.99 (±0.08) | 4.04 (±0.05) | 4.41 (±0.03)" in text
    assert "No listening ratings were collected" in text and "v2s listening-test score" in text
    assert "Average (ours)" not in text.split("### Table 2")[0]  # no invented MOS row in Table 1
    t2 = next(line for line in text.splitlines() if line.startswith("| Average (ours)"))
    assert NO_RUN in t2 and "0.800 [0.700, 0.900]" in t2


def test_mos_tables_take_the_listening_kits_figures(tmp_path):
    stats = [
        {"system": "revoiced", "question": "realism", "n": 40, "raters": 4, "mean": 4.1, "ci95": 0.2},
        {"system": "revoiced", "question": "alignment", "n": 40, "raters": 4, "mean": 4.3, "ci95": 0.15},
        {
            "system": "varietysound_demo",
            "question": "realism",
            "n": 40,
            "raters": 4,
            "mean": 2.5,
            "ci95": 0.3,
        },
        {
            "system": "varietysound_demo",
            "question": "alignment",
            "n": 40,
            "raters": 4,
            "mean": 2.0,
            "ci95": 0.25,
        },
        {"system": "varietysound_demo", "question": "timbre", "n": 20, "raters": 4, "mean": 3.0, "ci95": 0.4},
        {"system": "silence", "question": "realism", "n": 40, "raters": 4, "mean": 1.1, "ci95": 0.1},
    ]
    (tmp_path / LISTENING_SUMMARY).parent.mkdir()
    (tmp_path / LISTENING_SUMMARY).write_text(json.dumps(stats))
    text = paper_tables([_doc("varietysound_demo", timbre_sim_reference=0.8)], read_listening(tmp_path))
    ours = next(line for line in text.splitlines() if line.startswith("| Average (ours) | 4.10"))
    cells = [c.strip() for c in ours.split("|")[1:-1]]
    assert cells[1:7] == [
        "4.10 ± 0.20 (n=40)",
        "not implemented in v2s",
        "2.50 ± 0.30 (n=40)",
        "4.30 ± 0.15 (n=40)",
        "not implemented in v2s",
        "2.00 ± 0.25 (n=40)",
    ]
    t2 = [line for line in text.splitlines() if line.startswith("| Average (ours)")][1]
    assert "3.00 ± 0.40 (n=20)" in t2 and "0.800 [0.700, 0.900]" in t2
    assert "No listening ratings" not in text
