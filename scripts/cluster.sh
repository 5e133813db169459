#!/usr/bin/env bash
# A local Ray cluster for v2s training: head on this machine, dashboard on 127.0.0.1, token authentication.
#
#   scripts/cluster.sh start [--no-auth] [--listen IP]   start the head (prints what to export / how to join)
#   scripts/cluster.sh submit CONFIG [ARGS]  ray job submit --working-dir . -- python -m ray_jobs.train CONFIG ARGS
#   scripts/cluster.sh status                ray status of this head
#   scripts/cluster.sh join                  the command to run on another machine to join this head
#   scripts/cluster.sh stop                  stop the head this script started (only that one)
#
# Settings (environment): V2S_RAY_PORT (6379), V2S_DASHBOARD_PORT (8265), V2S_RAY_CLIENT_PORT (10001),
# V2S_DASHBOARD_AGENT_PORT (52365), V2S_RAY_CPUS (all cores), RAY_TMPDIR (/tmp; Ray writes <it>/ray).
#
# Authentication: Ray 2.60 turns token authentication on for local clusters. `start` runs the head with
# RAY_AUTH_MODE=token and the token in ~/.ray/auth_token (generated when missing); every client (ray job submit,
# ray status, a joining machine) needs RAY_AUTH_MODE=token and the same token. `--no-auth` runs the head with
# RAY_AUTH_MODE=disabled instead: acceptable only on a machine nobody else can reach.
#
# Loopback by default: the head advertises 127.0.0.1 (no other machine can join) and the dashboard and job API
# listen on 127.0.0.1. `--listen IP` (or V2S_RAY_NODE_IP) opts in to other machines joining through that
# address of this machine; it requires token authentication. Ray's own gRPC ports (GCS, raylet) listen on every
# interface whatever the advertised address (Ray has no option to narrow them; measured with `ss -ltnp`): the
# token is what protects them, so keep them behind a firewall too (docs/reliability.md, "Services").
#
# `stop` does not call `ray stop`, which kills every Ray process of the machine (other users' clusters too): the
# head runs in its own session (setsid) and `stop` signals that session's processes only.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
[[ -x "$REPO/.venv/bin/ray" ]] && export PATH="$REPO/.venv/bin:$PATH"
PORT="${V2S_RAY_PORT:-6379}"
DASH_PORT="${V2S_DASHBOARD_PORT:-8265}"
CLIENT_PORT="${V2S_RAY_CLIENT_PORT:-10001}"
AGENT_PORT="${V2S_DASHBOARD_AGENT_PORT:-52365}"
CPUS="${V2S_RAY_CPUS:-$(nproc)}"
NODE_IP="${V2S_RAY_NODE_IP:-127.0.0.1}"
TMP_BASE="${RAY_TMPDIR:-/tmp}"
STATE="$TMP_BASE/v2s-ray-head-$PORT"   # session id, auth mode and log of the head started here
export RAY_USAGE_STATS_ENABLED="${RAY_USAGE_STATS_ENABLED:-0}"
export MLFLOW_DISABLE_TELEMETRY="${MLFLOW_DISABLE_TELEMETRY:-true}"

die() { echo "cluster.sh: $*" >&2; exit 1; }

auth_mode() { cat "$STATE.auth" 2>/dev/null || echo token; }

node_ip() { cat "$STATE.ip" 2>/dev/null || echo "$NODE_IP"; }

dashboard_up() {
  python - "$DASH_PORT" <<'PY' >/dev/null 2>&1
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/version", timeout=3)
except urllib.error.HTTPError:
    pass
PY
}

running_sid() {
  [[ -f "$STATE.sid" ]] || return 1
  local sid
  sid=$(cat "$STATE.sid")
  [[ -n "$sid" ]] && ps -o pid= -s "$sid" >/dev/null 2>&1 && echo "$sid"
}

cmd_start() {
  local mode=token
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --no-auth) mode=disabled ;;
      --listen) [[ $# -ge 2 ]] || die "--listen needs an IP address of this machine"; NODE_IP="$2"; shift ;;
      *) die "unknown option $1 (start [--no-auth] [--listen IP])" ;;
    esac
    shift
  done
  if [[ "$mode" == disabled && "$NODE_IP" != 127.0.0.1 ]]; then
    die "--no-auth with --listen $NODE_IP would let anyone who reaches this machine run code on it: keep the token"
  fi
  if sid=$(running_sid); then die "a head started by this script already runs (session $sid); stop it first"; fi
  mkdir -p "$TMP_BASE"
  export RAY_AUTH_MODE="$mode"
  if [[ "$mode" == token && -z "${RAY_AUTH_TOKEN:-}" && ! -s "$HOME/.ray/auth_token" ]]; then
    ray get-auth-token --generate >/dev/null
    echo "generated a Ray token in ~/.ray/auth_token" >&2
  fi
  # Ray job drivers and workers inherit the head's environment: jobs submitted with --working-dir run in an
  # uploaded copy of the repository without data/, ray_results/ or mlflow.db, and find the real folder here.
  export V2S_PROJECT_ROOT="$REPO"
  echo "$mode" >"$STATE.auth"
  echo "$NODE_IP" >"$STATE.ip"
  # --block keeps one process that owns the head; setsid gives the head its own session for `stop`.
  setsid ray start --head --block --port="$PORT" --num-cpus="$CPUS" --node-ip-address="$NODE_IP" \
    --include-dashboard=true --dashboard-host=127.0.0.1 --dashboard-port="$DASH_PORT" \
    --ray-client-server-port="$CLIENT_PORT" --dashboard-agent-listen-port="$AGENT_PORT" \
    --disable-usage-stats >"$STATE.log" 2>&1 </dev/null &
  echo $! >"$STATE.sid"
  for _ in $(seq 1 120); do
    # GCS first, then the dashboard (job submission goes through it; any HTTP answer, 401 included, means up)
    if ray status --address "127.0.0.1:$PORT" >/dev/null 2>&1 && dashboard_up; then
      echo "Ray head up: GCS $(node_ip):$PORT, dashboard http://127.0.0.1:$DASH_PORT ($CPUS CPUs, auth: $mode)"
      echo "In this shell, before ray CLI commands:  export RAY_AUTH_MODE=$mode"
      echo "Train:  RAY_AUTH_MODE=$mode ray job submit --address http://127.0.0.1:$DASH_PORT --working-dir . -- \\"
      echo "          python -m ray_jobs.train experiments/configs/regnet/demo.yaml"
      echo "   (or: scripts/cluster.sh submit experiments/configs/regnet/demo.yaml)"
      echo "Join another machine:  scripts/cluster.sh join"
      return 0
    fi
    if ! running_sid >/dev/null; then
      tail -n 30 "$STATE.log" >&2
      die "the head exited while starting (log: $STATE.log)"
    fi
    sleep 1
  done
  tail -n 30 "$STATE.log" >&2
  die "the head did not answer within 120 s (log: $STATE.log)"
}

cmd_stop() {
  local sid
  sid=$(running_sid) || { echo "no head started by this script is running"; rm -f "$STATE.sid"; return 0; }
  pkill -TERM -s "$sid" || true
  for _ in $(seq 1 20); do
    ps -o pid= -s "$sid" >/dev/null 2>&1 || break
    sleep 1
  done
  if ps -o pid= -s "$sid" >/dev/null 2>&1; then pkill -KILL -s "$sid" || true; fi
  rm -f "$STATE.sid" "$STATE.auth" "$STATE.ip"
  # what `ray stop` also does: forget the address, so `ray.init()` does not try to attach to the dead head
  local current="$TMP_BASE/ray/ray_current_cluster"
  if [[ -f "$current" && "$(cat "$current")" == *":$PORT" ]]; then rm -f "$current"; fi
  echo "stopped the Ray head (session $sid)"
}

cmd_status() {
  running_sid >/dev/null || die "no head started by this script is running"
  RAY_AUTH_MODE="$(auth_mode)" ray status --address "127.0.0.1:$PORT"
}

cmd_submit() {
  [[ $# -ge 1 ]] || die "usage: cluster.sh submit CONFIG [ray_jobs.train arguments]"
  running_sid >/dev/null || die "no head started by this script is running: scripts/cluster.sh start"
  cd "$REPO"
  # the job's driver and workers get the tracking server, its credentials and Ray's storage when they are set
  # here (the object store's own credentials belong in the environment of each node's `ray start`)
  local env_json
  env_json=$(python - <<'PY'
import json, os
keys = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "V2S_RAY_STORAGE")
print(json.dumps({"env_vars": {k: os.environ[k] for k in keys if os.environ.get(k)}}))
PY
)
  RAY_AUTH_MODE="$(auth_mode)" ray job submit --address "http://127.0.0.1:$DASH_PORT" --working-dir . \
    --runtime-env-json "$env_json" -- python -m ray_jobs.train "$@"
}

cmd_join() {
  local mode ip
  mode="$(auth_mode)"
  ip="$(node_ip)"
  if [[ "$ip" == 127.0.0.1 ]]; then
    cat <<EOF
This head listens on loopback only (the default): no other machine can join it. Restart it with the address of
this machine that the others reach (token authentication stays on):
  scripts/cluster.sh stop && scripts/cluster.sh start --listen <this machine's private IP>
EOF
    return 0
  fi
  cat <<EOF
On each machine to add (same repository path with the same .venv, reachable to this one on port $PORT):
  1. copy ~/.ray/auth_token from this machine to ~/.ray/auth_token there (keep it private)
  2. RAY_AUTH_MODE=$mode V2S_PROJECT_ROOT=$REPO ray start --address=$ip:$PORT --num-cpus=<cores>
Multi-machine training also needs storage every node reaches (an S3 bucket: export V2S_RAY_STORAGE=s3://...,
with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, for MinIO or another S3 service, AWS_ENDPOINT_URL in the
environment of every 'ray start') and an MLflow server with authentication instead of the local SQLite file
(rank 0 may run on any node). The steps, with the MLflow server's exact commands: docs/cluster.md.
EOF
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  submit) shift; cmd_submit "$@" ;;
  join) cmd_join ;;
  *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
