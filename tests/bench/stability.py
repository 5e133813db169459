"""The stability table (issue 13 item 3): each default model trained with several seeds and thread counts,
each run evaluated as the evaluate stage does, onset F1 / AV offset / MCD per run and per model.

For each experiment of params.yaml `train.experiments` (or those named with --experiments), for every seed
(--seeds, default 0 1 2) and every thread count per worker (--threads, default 1 2):
- train it with `python -m ray_jobs.train` (untracked, `--set seed=S --set scaling.cpus_per_worker=T`, a local Ray
  instance of T CPUs) under the run name `<key>-seed<S>-threads<T>` in `<out>/storage/`;
- evaluate its package with `v2s_models.evaluation.evaluate` and the settings of params.yaml `evaluate` (split,
  vocoder, max_clips, seed, bootstrap, ...: what `dvc repro`'s evaluate stage uses; `--max-clips N` for a quick
  look) into `<out>/evaluations/<run>/`;
- read its metrics.json: the model's onset F1, absolute AV offset and MCD, the onset F1 of the wrong-timing
  baseline (`same_category`: another clip's real sound of the same category, the results table's baseline) and
  of the wrong-timing control (`model_other_video`: the same model's sound for another clip's video).
Then it prints and writes `<out>/stability.{md,csv,json}`: one row per run (does it beat both the wrong-timing
baseline and the control on onset F1?), and per model (and per model and thread count) the mean, sample standard deviation, minimum
and maximum of each figure.

Resumable: a run whose package and evaluation exist, made with the same settings (`<out>/evaluations/<run>/
stability_run.json`), is not redone; an interrupted training resumes from its last checkpoint (ray_jobs.train).
Runs go one at a time. Nothing is written to `--root` (the prepared data).

    python tests/bench/stability.py --root . --out /tmp/stability                # the six runs of each default
    python tests/bench/stability.py --root . --out /tmp/stability --experiments regnet_demo --dry-run
    python tests/bench/stability.py --root . --out /tmp/quick --max-clips 4 --seeds 0 1 --threads 1 \\
        --config regnet_debug=experiments/configs/regnet/debug.yaml --set epochs=1
    python tests/bench/stability.py --compare PACKAGE_A PACKAGE_B                # same weights? (determinism)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from experiments.stages import config_overrides, experiment_entry
from ray_jobs.train import parse_overrides
from v2s_models.evaluation.baselines import CONTROL
from v2s_models.evaluation.stage import evaluate_with_settings, stage_params
from v2s_models.package import WEIGHTS_FILE
from v2s_models.params import load_params

REPO = Path(__file__).resolve().parents[2]
WRONG_TIMING = "same_category"  # the results table's wrong-timing baseline (docs/results.md)
FIGURES = ("onset_f1", "av_offset_abs_ms", "mcd_db")  # what the table reports per run, from metrics.json
RUN_FILE = "stability_run.json"  # <out>/evaluations/<run>/: the settings the run was made with (resuming)


@dataclass(frozen=True)
class Run:
    """One training + evaluation of the table: experiment `key` (config + overrides) at `seed` and `threads`."""

    key: str
    config: str
    seed: int
    threads: int
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.key}-seed{self.seed}-threads{self.threads}"

    def train_overrides(self) -> dict[str, Any]:
        return {**self.overrides, "seed": self.seed, "scaling.cpus_per_worker": self.threads}


def plan(
    experiments: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int],
    threads: Sequence[int],
    extra: Mapping[str, Any] | None = None,
) -> list[Run]:
    """Every experiment x seed x thread count, seeds in the outer loop, so that the runs finished first cover
    every thread count (an interrupted table still compares them). `extra`: overrides for every run."""
    return [
        Run(key, str(entry["config"]), s, t, {**dict(entry.get("set") or {}), **dict(extra or {})})
        for key, entry in experiments.items()
        for s in seeds
        for t in threads
    ]


def train_command(run: Run, *, root: Path, storage: Path) -> list[str]:
    """`python -m ray_jobs.train` for `run`: untracked, its own run name, a local Ray instance of `threads` CPUs."""
    config = Path(run.config) if Path(run.config).is_absolute() else REPO / run.config
    cmd = [
        sys.executable,
        "-m",
        "ray_jobs.train",
        str(config),
        "--root",
        str(root),
        "--storage",
        str(storage),
    ]
    cmd += ["--no-tracking", "--run-name", run.name, "--num-cpus", str(run.threads)]
    for k, v in run.train_overrides().items():
        cmd += ["--set", f"{k}={json.dumps(v)}"]  # JSON is YAML: parse_overrides reads the value back
    return cmd


def eval_settings(params: Path, max_clips: int | None, samples: int | None) -> dict[str, Any]:
    """`params` (a params.yaml) `evaluate`: the evaluate stage's settings, with max_clips / samples replaced when
    given."""
    cfg = stage_params(params.parent)
    if max_clips is not None:
        cfg["max_clips"] = max_clips
    if samples is not None:
        cfg["samples"] = samples
    return cfg


def evaluate_package(package: Path, out: Path, *, name: str, root: Path, cfg: Mapping[str, Any]) -> Path:
    """The evaluate stage's evaluation of `package` (v2s_models.evaluation.evaluate) into `out`."""
    evaluate_with_settings(package, cfg, root=root, out=out, name=name)
    return out / "metrics.json"


def run_row(run: Run, metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One row of the table from an evaluation's metrics.json: the model's FIGURES, the onset F1 of the
    wrong-timing baseline and of the control, and whether the model beats both (strictly)."""
    systems = metrics["systems"]
    own = systems[metrics["model"]]
    row: dict[str, Any] = {"model": run.key, "seed": run.seed, "threads": run.threads, "run": run.name}
    for k in FIGURES:
        row[k] = float(own[k]["value"]) if k in own else math.nan
    row["wrong_timing_onset_f1"] = float(systems[WRONG_TIMING]["onset_f1"]["value"])
    row["control_onset_f1"] = float(systems[CONTROL]["onset_f1"]["value"])
    row["beats_wrong_timing"] = bool(
        row["onset_f1"] > max(row["wrong_timing_onset_f1"], row["control_onset_f1"])
    )
    row["clips"] = int(metrics.get("clips", 0))
    return row


def summarize(rows: Sequence[Mapping[str, Any]], by: Sequence[str] = ("model",)) -> list[dict[str, Any]]:
    """Per group of `by`: runs, runs beating the wrong-timing control, and each FIGURE's mean, sample standard
    deviation (nan for one run), minimum and maximum (nan values left out)."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in by), []).append(r)
    out = []
    for key, members in groups.items():
        s: dict[str, Any] = dict(zip(by, key, strict=True))
        s["runs"] = len(members)
        s["beat_wrong_timing"] = sum(bool(r["beats_wrong_timing"]) for r in members)
        for k in FIGURES:
            vals = [float(r[k]) for r in members if not math.isnan(float(r[k]))]
            s[f"{k}_mean"] = statistics.fmean(vals) if vals else math.nan
            s[f"{k}_std"] = statistics.stdev(vals) if len(vals) > 1 else math.nan
            s[f"{k}_min"] = min(vals) if vals else math.nan
            s[f"{k}_max"] = max(vals) if vals else math.nan
        out.append(s)
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def markdown(rows: Sequence[Mapping[str, Any]], summaries: Mapping[str, Sequence[Mapping[str, Any]]]) -> str:
    """The per-run table, then one table per summary (title -> rows of `summarize`)."""
    lines = [
        "| model | seed | threads | onset F1 | abs AV offset (ms) | MCD (dB) | wrong-timing onset F1 "
        "| control onset F1 | beats both |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["model"], r["seed"], r["threads"], *(r[k] for k in FIGURES)]
        cells += [r["wrong_timing_onset_f1"], r["control_onset_f1"], r["beats_wrong_timing"]]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    for title, summary in summaries.items():
        by = [k for k in ("model", "threads") if summary and k in summary[0]]
        lines += ["", f"{title}: mean ± std [min, max]", ""]
        lines.append("| " + " | ".join([*by, "runs", "beat wrong timing", *FIGURES]) + " |")
        lines.append("|" + "---|" * (len(by) + 2 + len(FIGURES)))
        for s in summary:
            cells = [_fmt(s[k]) for k in by] + [str(s["runs"]), f"{s['beat_wrong_timing']}/{s['runs']}"]
            for k in FIGURES:
                m, sd, lo, hi = (_fmt(s[f"{k}_{x}"]) for x in ("mean", "std", "min", "max"))
                cells.append(f"{m} ± {sd} [{lo}, {hi}]")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _strict(value: Any) -> Any:
    """nan -> None, recursively: strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, Mapping):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value


def write_tables(out: Path, rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> str:
    """<out>/stability.{md,csv,json}; returns the markdown."""
    summaries = {
        "per model": summarize(rows, ("model",)),
        "per model and thread count": summarize(rows, ("model", "threads")),
    }
    md = markdown(rows, summaries)
    (out / "stability.md").write_text(md, encoding="utf-8")
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "stability.csv").write_text(buf.getvalue(), encoding="utf-8")
    doc = {
        "settings": dict(settings),
        "runs": list(rows),
        **{k.replace(" ", "_"): v for k, v in summaries.items()},
    }
    text = json.dumps(_strict(doc), indent=2, default=str, allow_nan=False)
    (out / "stability.json").write_text(text + "\n", encoding="utf-8")
    return md


def _record(run: Run, *, root: Path, cfg: Mapping[str, Any]) -> dict[str, Any]:
    return {"run": asdict(run), "evaluate": dict(cfg), "root": str(root)}


def finished_row(run: Run, *, root: Path, out: Path, cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """`run`'s row if its package and evaluation exist, made with these settings; else None."""
    eval_dir = out / "evaluations" / run.name
    done_file = eval_dir / RUN_FILE
    if not done_file.is_file() or not (out / "storage" / run.name / "package").is_dir():
        return None
    if json.loads(done_file.read_text()) != _record(run, root=root, cfg=cfg):
        return None
    return run_row(run, json.loads((eval_dir / "metrics.json").read_text()))


def do_run(run: Run, *, root: Path, out: Path, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Trains and evaluates `run` unless done with the same settings; returns its row."""
    storage = out / "storage"
    package = storage / run.name / "package"
    eval_dir = out / "evaluations" / run.name
    record = _record(run, root=root, cfg=cfg)
    done_file = eval_dir / RUN_FILE
    row = finished_row(run, root=root, out=out, cfg=cfg)
    if row is not None:
        print(f"[stability] {run.name}: done earlier", flush=True)
        return row
    if done_file.is_file():  # made with other settings: start it again
        shutil.rmtree(eval_dir)
        shutil.rmtree(storage / run.name, ignore_errors=True)
    t0 = time.perf_counter()
    if not package.is_dir():
        cmd = train_command(run, root=root, storage=storage)
        print(f"[stability] {run.name}: training: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True, cwd=REPO)
        if not package.is_dir():
            raise RuntimeError(f"{run.name}: training left no package in {package.parent}")
    t1 = time.perf_counter()
    shutil.rmtree(eval_dir, ignore_errors=True)  # what an interrupted evaluation left
    print(f"[stability] {run.name}: evaluating ({t1 - t0:.0f} s training)", flush=True)
    metrics = json.loads(evaluate_package(package, eval_dir, name=run.key, root=root, cfg=cfg).read_text())
    done_file.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    row = run_row(run, metrics)
    print(
        f"[stability] {run.name}: {time.perf_counter() - t1:.0f} s evaluation; {json.dumps(row)}", flush=True
    )
    return row


def compare_packages(a: Path, b: Path) -> dict[str, float]:
    """Max absolute difference per module between two packages' weights (0.0: the same weights); a module or
    tensor present in only one of them, or of another shape, gives inf."""
    sa, sb = (torch.load(p / WEIGHTS_FILE, map_location="cpu", weights_only=True) for p in (a, b))
    out = {}
    for module in sorted(set(sa) | set(sb)):
        ta, tb = sa.get(module, {}), sb.get(module, {})
        diff = 0.0
        for k in set(ta) | set(tb):
            if k not in ta or k not in tb or ta[k].shape != tb[k].shape:
                diff = math.inf
                break
            if ta[k].numel():
                diff = max(diff, float((ta[k].double() - tb[k].double()).abs().max()))
        out[module] = diff
    return out


def _experiments(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    if args.config:
        named = {}
        for item in args.config:
            key, sep, path = item.partition("=")
            if not sep:
                raise ValueError(f"--config {item!r}: expected KEY=CONFIG_PATH")
            named[key] = {"config": path, "set": {}}
        return named
    params = load_params(args.params)
    experiments = (params.get("train") or {}).get("experiments") or {}
    named = {}
    for key in args.experiments or list(experiments):
        entry = experiment_entry(params, key)
        named[key] = {**entry, "set": config_overrides(entry)}  # the manifest as data.manifest, as the stage
    return named


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tests/bench/stability.py", description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path("."), help="project folder with the prepared data")
    ap.add_argument("--out", type=Path, default=None, help="where runs, evaluations and tables go")
    ap.add_argument("--params", type=Path, default=REPO / "params.yaml",
                    help="the params.yaml whose train.experiments and evaluate are used (default: the project's)")  # fmt: skip
    ap.add_argument("--experiments", nargs="+", default=None, help="keys of params.yaml train.experiments")
    ap.add_argument("--config", action="append", default=[], metavar="KEY=CONFIG",
                    help="an experiment config instead of params.yaml's (repeatable)")  # fmt: skip
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per worker")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a dotted override for every run (e.g. epochs=1)")  # fmt: skip
    ap.add_argument("--max-clips", type=int, default=None, help="evaluate N clips (default: params.yaml's)")
    ap.add_argument("--samples", type=int, default=0,
                    help="mp4 samples per system (default 0: they do not change the figures)")  # fmt: skip
    ap.add_argument("--dry-run", action="store_true", help="print the plan and the commands, run nothing")
    ap.add_argument("--report-only", action="store_true",
                    help="only write the tables of the runs already finished (the others are named, not run)")  # fmt: skip
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("PACKAGE_A", "PACKAGE_B"),
                    help="only compare two packages' weights (max abs difference per module)")  # fmt: skip
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.compare:
        diffs = compare_packages(*args.compare)
        print(json.dumps(diffs))
        return 0 if all(d == 0.0 for d in diffs.values()) else 1
    if args.out is None:
        print("error: --out is required", file=sys.stderr)
        return 2
    try:
        runs = plan(_experiments(args), args.seeds, args.threads, parse_overrides(args.overrides))
        cfg = eval_settings(args.params.resolve(), args.max_clips, args.samples)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root, out = args.root.resolve(), args.out.resolve()
    if args.dry_run:
        print(f"[stability] {len(runs)} runs; evaluation settings: {json.dumps(cfg)}")
        for run in runs:
            print(f"{run.name}: {' '.join(train_command(run, root=root, storage=out / 'storage'))}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    settings = {"root": str(root), "evaluate": cfg, "runs": [asdict(r) for r in runs]}
    rows: list[dict[str, Any]] = []
    for run in runs:  # the tables are rewritten after every run: an interrupted table shows what finished
        if args.report_only:
            row = finished_row(run, root=root, out=out, cfg=cfg)
            if row is None:
                print(f"[stability] {run.name}: not finished, left out", flush=True)
                continue
        else:
            row = do_run(run, root=root, out=out, cfg=cfg)
        rows.append(row)
        write_tables(out, rows, settings)
    print(write_tables(out, rows, settings))
    return 0 if all(r["beats_wrong_timing"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
