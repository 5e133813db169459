#!/usr/bin/env bash
# Issue 18's "done when", checked on a project after `make demo` (run from its root, a git checkout whose
# dvc.lock and params.yaml are committed):
#   1. records, from MLflow, every default model's training run figures, its latest full evaluation run's figures
#      and its registered versions (tags, description);
#   2. runs `dvc exp run -S evaluate.max_clips=8 --name quick` (EXP_NAME / MAX_CLIPS override the name and size);
#   3. prints `dvc exp show --only-changed`;
#   4. fails (exit 1) when a recorded figure, tag or description changed, when the quick evaluation did not get
#      runs of its own (unless DVC's run cache restored an identical earlier one: then no stage ran), or when
#      `dvc exp show` has no values ("!") for a declared metrics file of the workspace, the baseline or the
#      experiment.
# Afterwards the workspace holds the experiment's results; go back with
#   git checkout -- params.yaml dvc.lock && .venv/bin/dvc checkout
set -euo pipefail

EXP_NAME="${EXP_NAME:-quick}"
MAX_CLIPS="${MAX_CLIPS:-8}"
ROOT="$(pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
DVC="${DVC:-$ROOT/.venv/bin/dvc}"
STATE="$(mktemp -d)"
trap 'rm -rf "$STATE"' EXIT
export MLFLOW_DISABLE_TELEMETRY=true
# The stages' commands call `python` (as `make demo` runs them, with .venv/bin first on PATH): the same here, so
# the script works from a shell that has not activated the virtualenv.
export PATH="$(dirname "$PY"):$PATH"

[ -f dvc.yaml ] && [ -f params.yaml ] || { echo "run this from the project's root (dvc.yaml)" >&2; exit 2; }

snapshot() {  # $1: output JSON file
  "$PY" - "$1" <<'EOF'
import json, sys
from pathlib import Path

import yaml
from mlflow import MlflowClient

from v2s_models import model_card
from v2s_models.tracking import default_tracking_uri

root = Path.cwd()
uri = default_tracking_uri(root)
client = MlflowClient(tracking_uri=uri, registry_uri=uri)
keys = list(yaml.safe_load((root / "params.yaml").read_text())["train"]["experiments"])
out = {}
for key in keys:
    record = json.loads((root / "models" / key / "train.json").read_text())
    train = record["mlflow_run_id"]
    full = model_card.latest_evaluation(client, train)
    versions = {
        f"{mv.name}/{mv.version}": {"tags": dict(mv.tags), "description": mv.description or ""}
        for mv in client.search_model_versions(f"run_id = '{train}'")
    }
    quick = client.search_runs(
        [client.get_experiment_by_name(model_card.EVALUATION_EXPERIMENT).experiment_id],
        filter_string=f"tags.`v2s.training_run_id` = '{train}' and tags.`v2s.selection` = 'quick' "
        "and tags.`v2s.system_role` = 'model'",
    ) if client.get_experiment_by_name(model_card.EVALUATION_EXPERIMENT) else []
    out[key] = {
        "training_run": train,
        "training_metrics": client.get_run(train).data.metrics,
        "full_evaluation": None if full is None else full.info.run_id,
        "full_metrics": None if full is None else full.data.metrics,
        "versions": versions,
        "quick_runs": {r.info.run_id: dict(r.data.tags) for r in quick},
    }
Path(sys.argv[1]).write_text(json.dumps(out, indent=1, sort_keys=True))
EOF
}

echo "== recording the figures before the experiment"
snapshot "$STATE/before.json"
"$PY" - "$STATE/before.json" <<'EOF'
import json, sys
before = json.load(open(sys.argv[1]))
for key, s in before.items():
    f = s["full_metrics"] or {}
    print(f"{key}: training run {s['training_run']}; full evaluation {s['full_evaluation']} "
          f"(onset_f1 {f.get('onset_f1')}, mcd_db {f.get('mcd_db')}); registered versions: "
          f"{', '.join(s['versions']) or 'none'}")
    if s["full_evaluation"] is None:
        sys.exit(f"{key}: no full evaluation run in MLflow (run `make demo` with evaluate.max_clips: null first)")
EOF

echo "== dvc exp run -S evaluate.max_clips=$MAX_CLIPS --name $EXP_NAME"
"$DVC" exp run -S "evaluate.max_clips=$MAX_CLIPS" --name "$EXP_NAME"

echo "== dvc exp show --only-changed"
"$DVC" exp show --only-changed --md --no-pager | tee "$STATE/show.txt"
"$DVC" exp show --json > "$STATE/show.json"
"$DVC" exp show --csv > "$STATE/show.csv"

echo "== checking"
snapshot "$STATE/after.json"
"$PY" - "$STATE" "$EXP_NAME" "$MAX_CLIPS" <<'EOF'
import csv, json, sys
from pathlib import Path

import yaml

state, name, max_clips = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
before = json.loads((state / "before.json").read_text())
after = json.loads((state / "after.json").read_text())
problems = []
for key, b in before.items():
    a = after[key]
    for what in ("training_metrics", "full_evaluation", "full_metrics", "versions"):
        if a[what] != b[what]:
            problems.append(f"{key}: {what} changed:\n  before {b[what]}\n  after  {a[what]}")
    new = {i: t for i, t in a["quick_runs"].items() if i not in b["quick_runs"]}
    mine = [i for i, t in new.items() if t.get("v2s.dvc_experiment") == name and t.get("v2s.max_clips") == max_clips]
    earlier = [i for i, t in b["quick_runs"].items() if t.get("v2s.max_clips") == max_clips]
    if len(mine) == 1:
        print(f"{key}: figures unchanged; the quick evaluation is run {mine[0]} of its own")
    elif not new and earlier:  # the same stage ran before: DVC restored its outputs from the run cache
        print(f"{key}: figures unchanged; DVC's run cache restored the evaluation (no new run), as run {earlier[0]}")
    else:
        problems.append(f"{key}: expected one new quick evaluation run tagged v2s.dvc_experiment={name}, "
                        f"v2s.max_clips={max_clips}; found {list(new.values())}")

# every declared metrics file has values in every row (workspace, baseline, the experiment)
stages = yaml.safe_load(Path("dvc.yaml").read_text())["stages"]
keys = list(before)
declared = set()
for stage_name, stage in stages.items():
    body = stage.get("do", stage)
    for entry in body.get("metrics", []) or []:
        path = entry if isinstance(entry, str) else next(iter(entry))
        for k in keys if "${key}" in path else [None]:
            declared.add(path.replace("${key}", k) if k else path)
rows = json.loads((state / "show.json").read_text())
cells = {}
def visit(entry, label):
    for path, value in ((entry.get("data") or {}).get("metrics") or {}).items():
        cells[(label, path)] = bool(isinstance(value, dict) and value.get("data")) and not value.get("error")
for row in rows:
    visit(row, row.get("name") or row["rev"])
    for exp in row.get("experiments") or []:
        for rev in exp.get("revs") or []:
            visit(rev, rev.get("name") or rev["rev"])
labels = {label for label, _ in cells} | {name}
for label in sorted(labels):
    missing = sorted(p for p in declared if not cells.get((label, p)))
    if missing:
        problems.append(f"dvc exp show: {label} has no values for {missing}")
bangs = [r for r in csv.reader((state / "show.csv").open()) if "!" in r]
if bangs:
    problems.append(f"dvc exp show --csv has '!' cells in {len(bangs)} row(s): {[r[:2] for r in bangs]}")
if problems:
    print("FAILED:\n" + "\n".join(problems))
    sys.exit(1)
print(f"OK: {len(declared)} metrics files with values in {len(labels)} rows ({', '.join(sorted(labels))}); "
      "no recorded figure changed")
EOF
echo "The workspace now holds experiment $EXP_NAME's results; go back with:"
echo "  git checkout -- params.yaml dvc.lock && $DVC checkout"
