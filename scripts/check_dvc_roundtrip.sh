#!/usr/bin/env bash
# Does `dvc pull` on "another machine" give back exactly what this checkout made, with nothing recomputed?
#
#   scripts/check_dvc_roundtrip.sh [CHECKOUT]     (default: this repository; run it after `make demo`)
#
# 1. starts moto's S3 server (`moto_server`, from the project's virtualenv) on 127.0.0.1, on a free port, with
#    throwaway credentials: nothing leaves this machine, and no real bucket is needed;
# 2. adds a DVC remote `roundtrip` (s3://v2s-roundtrip/cache, the server as its endpoint) with
#    `dvc remote add --local`: it goes to .dvc/config.local (git-ignored); the committed .dvc/config is never
#    changed, and the entry is removed again at the end;
# 3. `dvc push -r roundtrip` of every cached output of the pipeline (dvc.lock);
# 4. `git clone`s the checkout into a temporary folder (the other machine; when dvc.lock, dvc.yaml or params.yaml
#    have changes not committed yet, the checkout's copies are put into the clone, and the script says so),
#    adds the same remote there and runs `dvc pull -r roundtrip`;
# 5. compares the sha256 of every file of every cached output (models/, data/features, data/prepared, ...:
#    whatever dvc.lock tracks with a cache) between the two folders, and asks DVC in the clone what it would
#    recompute (`dvc repro --dry --allow-missing`: outputs declared `cache: false`, such as the regenerated
#    raw clips, are not in any remote and are allowed to be missing).
#
# Exit status: 0 when every file matches and nothing would be recomputed; 1 on any difference, a file missing,
# or a stage that would run again; 2 when the tools are missing or the checkout is not a DVC project.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "${1:-$HERE}" && pwd)"
VENV_BIN="${V2S_VENV_BIN:-$HERE/.venv/bin}"
PY="$VENV_BIN/python"
DVC="$VENV_BIN/dvc"
MOTO="$VENV_BIN/moto_server"
for tool in "$PY" "$DVC" "$MOTO"; do
    [[ -x "$tool" ]] || { echo "error: $tool not found (make setup installs it)" >&2; exit 2; }
done
[[ -f "$ROOT/dvc.lock" && -d "$ROOT/.dvc" ]] || { echo "error: $ROOT has no dvc.lock (run make demo first)" >&2; exit 2; }

WORK="$(mktemp -d /tmp/v2s-dvc-roundtrip.XXXXXX)"
MOTO_PID=""
LOCAL_CFG="$ROOT/.dvc/config.local"
SAVED_CFG="$WORK/config.local.saved"
[[ -f "$LOCAL_CFG" ]] && cp "$LOCAL_CFG" "$SAVED_CFG"
cleanup() {
    if [[ -n "$MOTO_PID" ]]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
    if [[ -f "$SAVED_CFG" ]]; then cp "$SAVED_CFG" "$LOCAL_CFG"; else rm -f "$LOCAL_CFG"; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
ENDPOINT="http://127.0.0.1:$PORT"
"$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!
export AWS_ACCESS_KEY_ID=v2s-roundtrip-key AWS_SECRET_ACCESS_KEY=v2s-roundtrip-secret AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="$ENDPOINT"
for _ in $(seq 1 100); do
    "$PY" -c "import urllib.request as u; u.urlopen('$ENDPOINT/moto-api/', timeout=2)" 2>/dev/null && break
    kill -0 "$MOTO_PID" 2>/dev/null || { echo "error: moto_server exited:" >&2; cat "$WORK/moto.log" >&2; exit 2; }
    sleep 0.3
done
"$PY" -c "import boto3; boto3.client('s3', endpoint_url='$ENDPOINT').create_bucket(Bucket='v2s-roundtrip')"
echo "[roundtrip] S3 stand-in (moto) at $ENDPOINT, bucket v2s-roundtrip"

add_remote() {  # in the current folder, local config only
    "$DVC" remote add --local -f roundtrip s3://v2s-roundtrip/cache
    "$DVC" remote modify --local roundtrip endpointurl "$ENDPOINT"
}

cd "$ROOT"
add_remote
echo "[roundtrip] dvc push from $ROOT"
"$DVC" push -r roundtrip

CLONE="$WORK/clone"
git clone -q "$ROOT" "$CLONE"
changed="$(git -C "$ROOT" status --porcelain -- dvc.lock dvc.yaml params.yaml)"
if [[ -n "$changed" ]]; then
    echo "[roundtrip] note: uncommitted changes in the checkout, copied into the clone:"
    echo "$changed"
    for f in dvc.lock dvc.yaml params.yaml; do [[ -f "$ROOT/$f" ]] && cp "$ROOT/$f" "$CLONE/$f"; done
fi
cd "$CLONE"
add_remote
echo "[roundtrip] dvc pull in the clone $CLONE"
"$DVC" pull -r roundtrip

status=0
"$PY" - "$ROOT" "$CLONE" <<'EOF' || status=1
import hashlib
import sys
from pathlib import Path

from dvc.repo import Repo

a, b = Path(sys.argv[1]), Path(sys.argv[2])


def digests(base: Path, rel: str) -> dict[str, str]:
    p = base / rel
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else []
    return {str(f.relative_to(base)): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


bad, n_files, skipped = [], 0, []
for out in Repo(str(a)).index.outs:
    rel = str(Path(out.fs_path).relative_to(a))
    if not out.use_cache:
        skipped.append(rel)
        continue
    da, db = digests(a, rel), digests(b, rel)
    if not da:
        bad.append(f"{rel}: missing in the checkout itself (was the pipeline run?)")
    for name in sorted(set(da) | set(db)):
        if da.get(name) != db.get(name):
            bad.append(f"{name}: {da.get(name, 'missing')[:12]} here, {db.get(name, 'missing')[:12]} in the clone")
    n_files += len(da)
print(f"[roundtrip] {n_files} files compared (sha256); not in any remote (cache: false): {', '.join(skipped) or 'none'}")
for line in bad:
    print(f"[roundtrip] DIFFERENT {line}")
sys.exit(1 if bad else 0)
EOF

dry="$("$DVC" repro --dry --allow-missing 2>&1)" || { echo "$dry"; status=1; }
if grep -q "Running stage" <<<"$dry"; then
    echo "[roundtrip] the clone would recompute:"
    grep "Running stage" <<<"$dry"
    status=1
fi
if [[ $status -eq 0 ]]; then
    echo "[roundtrip] OK: every cached output pulled bit for bit, nothing to recompute"
else
    echo "[roundtrip] FAILED"
fi
exit $status
