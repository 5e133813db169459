"""The comparison table of a sweep or an ablation grid: Markdown, CSV and a PNG chart (matplotlib).

One row per trial, in the shape of the papers' ablation tables: the variant (a grid entry's label, or a study
trial's name), the config values it differs in, the objective and the other declared metrics (their last
reported values), the epochs trained and how the trial ended. A grid keeps its declaration order (the paper's
row order); a study is sorted best first. Trials without a value of the objective (errors) come last.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ray_jobs.studies import resolve_metric


@dataclass
class TrialRow:
    """What the table shows of one trial."""

    variant: str
    params: dict[str, Any]
    objective: float | None
    metrics: dict[str, float | None]
    epochs: int
    status: str  # finished | stopped early (ASHA) | error
    run_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return f"{v:.4g}"
    return str(v)


def ordered(rows: Sequence[TrialRow], *, mode: str, keep_order: bool) -> list[TrialRow]:
    if keep_order:
        return list(rows)
    sign = -1.0 if mode == "max" else 1.0
    return sorted(
        rows, key=lambda r: (r.objective is None, sign * r.objective if r.objective is not None else 0.0)
    )


def columns(objective: str, metrics: Sequence[str], param_keys: Sequence[str]) -> list[str]:
    return ["variant", *param_keys, f"{objective} (objective)", *metrics, "epochs", "status", "mlflow_run_id"]


def _cells(row: TrialRow, metrics: Sequence[str], param_keys: Sequence[str]) -> list[Any]:
    return [
        row.variant,
        *(row.params.get(k, "") for k in param_keys),
        row.objective,
        *(row.metrics.get(m) for m in metrics),
        row.epochs,
        row.status,
        row.run_id or "",
    ]


def write_table(
    rows: Sequence[TrialRow],
    out_dir: str | Path,
    *,
    title: str,
    objective: str,
    mode: str,
    metrics: Sequence[str],
    param_keys: Sequence[str],
    keep_order: bool,
    best: str | None = None,
    question: str = "",
) -> dict[str, Path]:
    """Writes `comparison.md`, `comparison.csv`, `comparison.png` into `out_dir`; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = ordered(rows, mode=mode, keep_order=keep_order)
    header = columns(objective, metrics, param_keys)
    table = [_cells(r, metrics, param_keys) for r in rows]

    csv_path = out_dir / "comparison.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows([["" if c is None else c for c in cells] for cells in table])

    arrow = "higher is better" if mode == "max" else "lower is better"
    lines = [
        f"# {title}",
        "",
        *([question, ""] if question else []),
        f"Objective: `{objective}` ({arrow}).",
        "",
    ]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" for _ in header) + "|")
    for r, cells in zip(rows, table, strict=True):
        text = [_fmt(c) for c in cells]
        if best is not None and r.variant == best:
            text[0] = f"**{text[0]}** (best)"
        lines.append("| " + " | ".join(t.replace("|", "\\|") for t in text) + " |")
    md_path = out_dir / "comparison.md"
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    png_path = out_dir / "comparison.png"
    _chart(rows, png_path, title=title, objective=objective, arrow=arrow, best=best)
    return {"md": md_path, "csv": csv_path, "png": png_path}


def _chart(
    rows: Sequence[TrialRow], path: Path, *, title: str, objective: str, arrow: str, best: str | None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.variant for r in rows]
    values = [r.objective if r.objective is not None and math.isfinite(r.objective) else 0.0 for r in rows]
    colours = ["tab:orange" if n == best else ("tab:gray" if r.status != "finished" else "tab:blue")
               for n, r in zip(names, rows, strict=True)]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(rows) + 1.6))
    pos = list(range(len(rows)))[::-1]
    ax.barh(pos, values, color=colours)
    ax.set_yticks(
        pos,
        labels=[
            f"{n} ({r.status})" if r.status != "finished" else n for n, r in zip(names, rows, strict=True)
        ],
    )
    ax.set_xlabel(f"{objective} ({arrow})")
    ax.set_title(title)
    for p, v, r in zip(pos, values, rows, strict=True):
        ax.annotate(
            _fmt(r.objective) or "n/a",
            (v, p),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=8,
        )
    ax.axvline(0.0, color="black", linewidth=0.6)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def row_metrics(last: Mapping[str, Any], names: Sequence[str]) -> dict[str, float | None]:
    """The declared metrics of a trial's last report (the `val/<split>_split/` fallback applied)."""

    out: dict[str, float | None] = {}
    for name in names:
        try:
            out[name] = resolve_metric(last, name)
        except KeyError:
            out[name] = None
    return out
