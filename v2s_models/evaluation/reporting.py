"""Writing an evaluation: metrics.json (every figure `{"value", "ci95": [low, high]}`), tables with
`value [low, high]`, per-clip and per-category CSVs, DVC plots and listening samples; and paired comparisons of
two evaluations of the same clips (`compare_evaluations`, `v2s compare`)."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from v2s_models.evaluation.baselines import BASELINES, CONTROL, SYSTEM, EvalClip
from v2s_models.media.mux import mux_audio
from v2s_models.metrics.standard import METRIC_NETWORK
from v2s_models.metrics.stats import Interval, paired_comparison

# Headline columns of the tables, in order (whatever the metrics package returns beyond these follows them).
STANDARD_FIGURES = tuple(METRIC_NETWORK)  # fd_panns, kl_panns, is_panns, fd_vggish, fd_passt, kl_passt
HEADLINE = (
    "onset_f1",
    "onset_precision",
    "onset_recall",
    "av_offset_ms",
    "av_offset_abs_ms",
    "mcd_db",
    "mcd_mel_db",
    "mcd_own_reference_db",
    "timbre_sim_real",
    "timbre_sim_reference",
    "offscreen_energy_ratio",
    "pitch_error_cents",
    "decay_error_pct",
    "brightness_error",
    "fd_soundnet",
    "kl_soundnet",
    *STANDARD_FIGURES,  # av-benchmark's figures (v2s_models.metrics.standard), when weights are present
)
LOWER_IS_BETTER = {
    "av_offset_abs_ms",
    "mcd_db",
    "mcd_mel_db",
    "mcd_own_reference_db",
    "offscreen_energy_ratio",
    "pitch_error_cents",
    "decay_error_pct",
    "brightness_error",
    "fd_soundnet",
    "kl_soundnet",
    *(k for k in STANDARD_FIGURES if not k.startswith("is_")),
    "nll_nats",
    "nll_bits",
    "median_rank",
    "mean_rank",
}
ROW_KEYS = ("system", "clip_id", "category")


def ordered_columns(keys: set[str] | Sequence[str]) -> list[str]:
    """HEADLINE columns present in `keys`, in that order, then the rest sorted."""
    keys = set(keys)
    return [k for k in HEADLINE if k in keys] + sorted(keys - set(HEADLINE))


def _fmt(v: Any) -> str:
    if isinstance(v, Interval):
        return "" if not math.isfinite(v.value) else v.format(3 if abs(v.value) < 1000 else 1)
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}" if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A Markdown table; Interval cells as `value [low, high]`, NaN as empty."""
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if i < 1 else "---:" for i, _ in enumerate(columns)) + "|"
    body = ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, rule, *body]) + "\n"


def _csv_cells(row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in columns:
        v = row.get(c, "")
        if isinstance(v, Interval):
            out[c], out[f"{c}_ci_low"], out[f"{c}_ci_high"] = v.value, v.low, v.high
        else:
            out[c] = v
    return out


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A CSV; an Interval column `m` becomes `m, m_ci_low, m_ci_high`."""
    interval_cols = {c for r in rows for c in columns if isinstance(r.get(c), Interval)}
    fields: list[str] = []
    for c in columns:
        fields += [c, f"{c}_ci_low", f"{c}_ci_high"] if c in interval_cols else [c]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(_csv_cells(r, columns))


def summary_rows(name: str, summary: Mapping[str, Mapping[str, Interval]]) -> list[dict[str, Any]]:
    """One row per system (the model first, under `name`, then the baselines and the control)."""
    fixed = [SYSTEM, *BASELINES, CONTROL]
    order = fixed + sorted(set(summary) - set(fixed))
    return [{"system": name if s == SYSTEM else s, **summary[s]} for s in order if s in summary]


def _systems_document(
    name: str, summary: Mapping[str, Mapping[str, Interval]]
) -> dict[str, dict[str, dict[str, Any]]]:
    return {
        r["system"]: {k: v.as_dict() for k, v in r.items() if k != "system"}
        for r in summary_rows(name, summary)
    }


def metrics_document(
    name: str,
    summary: Mapping[str, Mapping[str, Interval]],
    meta: Mapping[str, Any],
    excerpt: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """metrics.json: {"model", meta..., "systems": {system: {metric: {"value", "ci95": [low, high]}}}}, and
    with `excerpt` ({"seconds", "summary"}: every system on the first seconds of each clip) also
    "excerpt": {"seconds", "systems": {...}} in the same form."""
    doc = {"model": name, **dict(meta), "systems": _systems_document(name, summary)}
    if excerpt is not None:
        doc["excerpt"] = {
            "seconds": float(excerpt["seconds"]),
            "systems": _systems_document(name, excerpt["summary"]),
        }
    return doc


def read_excerpt(doc: Mapping[str, Any]) -> tuple[float, dict[str, dict[str, Interval]]] | None:
    """metrics.json's excerpt (every system on the first seconds of each clip) as (seconds, systems), or
    None for an evaluation without one."""
    excerpt = doc.get("excerpt")
    if not isinstance(excerpt, Mapping):
        return None
    return float(excerpt["seconds"]), read_summary(excerpt)


def read_summary(doc: Mapping[str, Any]) -> dict[str, dict[str, Interval]]:
    """metrics.json's systems back as Intervals (a bare number, from an evaluation made before intervals,
    becomes an Interval with NaN bounds); `doc` may also be its `excerpt` section."""
    out: dict[str, dict[str, Interval]] = {}
    for system, metrics in doc["systems"].items():
        out[system] = {}
        for k, v in metrics.items():
            if isinstance(v, Mapping):
                low, high = v.get("ci95", [math.nan, math.nan])
                out[system][k] = Interval(float(v["value"]), float(low), float(high))
            elif isinstance(v, int | float):
                out[system][k] = Interval(float(v), math.nan, math.nan)
    return out


def _plot(path: Path, rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> None:
    import matplotlib  # heavy: only the summary plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def finite(v: Any) -> bool:
        return isinstance(v, Interval) and math.isfinite(v.value)

    metrics = [m for m in metrics if any(finite(r.get(m)) for r in rows)]
    if not metrics:
        return
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.0), squeeze=False)
    names = [str(r["system"]) for r in rows]
    for ax, m in zip(axes[0], metrics, strict=True):
        ivs = [r.get(m) if finite(r.get(m)) else Interval(math.nan, math.nan, math.nan) for r in rows]
        vals = np.asarray([iv.value for iv in ivs])
        err = np.asarray([[iv.value - iv.low, iv.high - iv.value] for iv in ivs]).T
        # a percentile interval need not contain its value (a biased set statistic such as FD on resampled sets
        # lies below its resamples): draw the part of the interval on each side, nothing past the value
        err = np.clip(np.where(np.isfinite(err), err, 0.0), 0.0, None)
        ax.barh(names, vals, xerr=err, color=["tab:blue"] + ["tab:gray"] * (len(rows) - 1))
        ax.set_title(m + (" (lower better)" if m in LOWER_IS_BETTER else ""), fontsize=9)
        ax.invert_yaxis()
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _with_name(rows: Sequence[Mapping[str, Any]], name: str) -> list[dict[str, Any]]:
    return [{**r, "system": name if r["system"] == SYSTEM else r["system"]} for r in rows]


def write_outputs(
    out: Path,
    name: str,
    summary: Mapping[str, Mapping[str, Interval]],
    rows: Sequence[Mapping[str, Any]],
    cats: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any],
    excerpt: Mapping[str, Any] | None = None,
) -> None:
    """metrics.json, per_clip.csv, table.{md,csv}, per_category.{md,csv}, plots/ into `out` (files replaced);
    with `excerpt` ({"seconds", "summary"}) metrics.json and table.md also hold every system's figures on the
    first seconds of each clip."""
    out.mkdir(parents=True, exist_ok=True)
    table = summary_rows(name, summary)
    cols = ["system", *ordered_columns({k for r in table for k in r} - {"system"})]
    doc = metrics_document(name, summary, meta, excerpt)
    (out / "metrics.json").write_text(json.dumps(doc, indent=2, sort_keys=False, allow_nan=True) + "\n")
    write_csv(out / "table.csv", table, cols)
    protocol = ", ".join(f"{k} {v}" for k, v in (meta.get("protocol") or {}).items())
    lines = [
        f"# Evaluation of {name}",
        "",
        f"Split `{meta.get('split')}`, {meta.get('clips')} clips, vocoder `{meta.get('vocoder')}`, data "
        f"`{str(meta.get('data_fingerprint', ''))[:12]}`; {protocol}. Each figure: value [95 % bootstrap "
        "interval over clips, resampled within categories; over sets for fd_soundnet]. Lower is better for: "
        + ", ".join(sorted(c for c in cols if c in LOWER_IS_BETTER))
        + ".",
        "",
        markdown_table(table, cols),
    ]
    if excerpt is not None:
        short = summary_rows(name, excerpt["summary"])
        lines += [
            f"## Every system on the first {float(excerpt['seconds']):g} s of each clip",
            "",
            markdown_table(short, ["system", *ordered_columns({k for r in short for k in r} - {"system"})]),
        ]
    (out / "table.md").write_text("\n".join(lines))
    renamed = _with_name(rows, name)
    clip_cols = [*ROW_KEYS, *ordered_columns({k for r in renamed for k in r} - set(ROW_KEYS))]
    write_csv(out / "per_clip.csv", renamed, clip_cols)
    cat_rows = _with_name(cats, name)
    fixed = {"system", "category", "clips"}
    cat_cols = ["system", "category", "clips", *ordered_columns({k for r in cat_rows for k in r} - fixed)]
    write_csv(out / "per_category.csv", cat_rows, cat_cols)
    head = [
        c
        for c in ("onset_f1", "av_offset_abs_ms", "mcd_db", "timbre_sim_real", "timbre_sim_reference")
        if c in cat_cols
    ]
    pivot = []
    for category in sorted({r["category"] for r in cat_rows}):
        row: dict[str, Any] = {"category": category}
        for r in cat_rows:
            if r["category"] == category:
                for m in head:
                    row[f"{r['system']}:{m}"] = r.get(m, Interval(math.nan, math.nan, math.nan))
        pivot.append(row)
    systems = [r["system"] for r in table]
    pcols = ["category", *[f"{s}:{m}" for m in head for s in systems]]
    (out / "per_category.md").write_text(
        f"# {name}: per category ({meta.get('split')} split)\n\n" + markdown_table(pivot, pcols)
    )
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    for m in ("onset_f1", "mcd_db", "av_offset_abs_ms"):
        if m in cols:
            write_csv(plots / f"{m}.csv", table, ["system", m])
    _plot(plots / "summary.png", table, ["onset_f1", "av_offset_abs_ms", "mcd_db", "fd_soundnet"])


def write_samples(
    out: Path,
    name: str,
    clips: Sequence[EvalClip],
    systems: Mapping[str, Mapping[str, np.ndarray]],
    sample_rate: int,
    count: int,
) -> list[Path]:
    """samples/<system>/<clip>.mp4 for the first `count` clips: the clip's video with each system's sound,
    cut to the clip's own length (one loop period), plus `real`."""

    written = []
    for c in list(clips)[: max(0, count)]:
        n = int(round(c.duration * sample_rate))
        tracks = {
            "real": c.real_wav,
            **{(name if s == SYSTEM else s): w[c.clip_id] for s, w in systems.items() if s != CONTROL},
        }
        for system, wav in tracks.items():
            dest = out / "samples" / system / (c.clip_id.replace("/", "__") + ".mp4")
            dest.parent.mkdir(parents=True, exist_ok=True)
            mux_audio(c.source, np.clip(wav[:n], -1.0, 1.0), sample_rate, dest)
            written.append(dest)
    return written


# ----------------------------------------------------------------------------------- comparisons
def _per_clip(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """per_clip.csv as {system: {clip_id: row}}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with open(path, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.setdefault(r["system"], {})[r["clip_id"]] = r
    return out


def _number(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def compare_evaluations(
    eval_a: Path, eval_b: Path, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> list[dict[str, Any]]:
    """Per metric, the paired per-clip difference model A - model B over the clips both evaluations scored.

    eval_a, eval_b: evaluation folders (metrics.json + per_clip.csv). Returns one row per metric both models
    have per clip: {"metric", "a", "b", "n", "difference": Interval, "p_bootstrap", "p_wilcoxon",
    "significant", "better"} ("better": the model whose figure is better when significant, else None)."""
    docs = [json.loads((p / "metrics.json").read_text()) for p in (eval_a, eval_b)]
    clips = [_per_clip(p / "per_clip.csv") for p in (eval_a, eval_b)]
    names = [str(d["model"]) for d in docs]
    rows_a, rows_b = clips[0].get(names[0], {}), clips[1].get(names[1], {})
    shared = sorted(set(rows_a) & set(rows_b))
    if len(shared) < 2:
        raise ValueError(
            f"{eval_a} and {eval_b} share {len(shared)} clips: a paired comparison needs the same clips"
        )
    cats = [rows_a[c]["category"] for c in shared]
    keys = [k for k in rows_a[shared[0]] if k not in ROW_KEYS and not k.endswith(("_ci_low", "_ci_high"))]
    out = []
    for k in ordered_columns(set(keys) & set(rows_b[shared[0]])):
        a = np.asarray([_number(rows_a[c].get(k)) for c in shared])
        b = np.asarray([_number(rows_b[c].get(k)) for c in shared])
        if not (np.isfinite(a) & np.isfinite(b)).any():
            continue
        pc = paired_comparison(a, b, strata=cats, n_boot=n_boot, seed=seed, level=level)
        better = None
        if pc.significant:
            lower_a = pc.difference.value < 0
            better = names[0] if lower_a == (k in LOWER_IS_BETTER) else names[1]
        out.append(
            {
                "metric": k,
                "a": names[0],
                "b": names[1],
                "n": pc.n,
                "difference": pc.difference,
                "p_bootstrap": pc.p_bootstrap,
                "p_wilcoxon": pc.p_wilcoxon,
                "significant": pc.significant,
                "better": better,
            }
        )
    return out


def comparison_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """The comparison as a table and, in words, which differences are significant."""
    if not rows:
        return "No metric to compare.\n"
    a, b = rows[0]["a"], rows[0]["b"]

    def p(v: float | None) -> str:
        return "n/a" if v is None or not math.isfinite(v) else f"{v:.3g}"

    table = [
        {
            "metric": r["metric"],
            "clips": r["n"],
            f"{a} - {b}": r["difference"],
            "p (paired bootstrap)": p(r["p_bootstrap"]),
            "p (Wilcoxon)": p(r["p_wilcoxon"]),
            "significant": "yes" if r["significant"] else "no",
        }
        for r in rows
    ]
    significant = [r for r in rows if r["significant"]]
    words = (
        "Significant at 5 % (both tests): "
        + "; ".join(f"{r['metric']} ({r['better']} better)" for r in significant)
        + "."
        if significant
        else "No difference is significant at 5 % (both tests): on these clips the two models cannot be told apart."
    )
    return markdown_table(table, list(table[0])) + "\n" + words + "\n"


SWAP_TEST_COLUMNS = [
    "evaluation",
    "system",
    "category",
    "parameter",
    "spearman",
    "spearman_max",
    "fraction_right",
    "fraction_tied",
    "videos",
    "videos_nan",
]


def swap_test_section(folders: Sequence[Path]) -> str:
    """The report's timbre swap test: the rows of every evaluations/<model>/swap_test.json that ran (written by
    the evaluate stage with `dataprep.synthfoley.swap_test`), the re-voiced ceiling and the real clip once,
    and the models it did not run on with the reason; '' when no folder has one."""
    rows: list[dict[str, Any]] = []
    ceiling: dict[tuple[str, str, str], dict[str, Any]] = {}
    skipped = []
    for folder in folders:
        path = folder / "swap_test.json"
        if not path.is_file():
            continue
        doc = json.loads(path.read_text())
        if "rows" not in doc:
            skipped.append(f"{folder.name} ({doc.get('why', 'not run')})")
            continue
        for r in doc["rows"]:
            cells = {k: (math.nan if r.get(k) is None else r.get(k)) for k in SWAP_TEST_COLUMNS[1:]}
            if r["system"] in ("revoiced", "real"):
                ceiling.setdefault((r["system"], r["category"], r["parameter"]), {"evaluation": "", **cells})
            else:
                rows.append({"evaluation": folder.name, **cells})
    if not rows and not skipped:
        return ""
    rows += sorted(ceiling.values(), key=lambda r: r["system"] != "revoiced")  # stable: the runs' order
    text = (
        "## Timbre swap test (issue 13)\n\n"
        "Every test/val video of each category generated twice, with the references of lowest and highest "
        "ground-truth value of each parameter; the parameter estimated from the output "
        "(`v2s_models/metrics/timbre_estimate.py`). spearman: rank correlation of output and reference value "
        "over all (video, reference) pairs, at most spearman_max; fraction_right: videos whose output moves "
        "the reference's way (a tie is not a move); videos_nan: videos whose output gave no estimate. A model "
        "without a reference ties everywhere (0). `revoiced` is the ceiling (each video's own events "
        "re-synthesised with the reference's timbre), `real` the clip as it is. Each model's full table, with "
        "the estimator's check on the real clips, is evaluations/<model>/swap_test.md.\n\n"
    )
    if rows:
        text += markdown_table(rows, SWAP_TEST_COLUMNS)
    if skipped:
        text += "\nNot run: " + "; ".join(skipped) + ".\n"
    return text
