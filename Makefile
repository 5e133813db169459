# The two commands of the README. Both set up .venv first (scripts/setup.sh returns at once when it is current).
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
export DO_NOT_TRACK := 1

.PHONY: setup demo test lint bench

setup:
	@bash scripts/setup.sh

# Main job on the built-in data: the DVC pipeline from nothing to prepared features (and the default
# experiments once their stages exist).
demo: setup
	dvc repro

# The test suite, integration tests included (real DVC, decord, librosa); what .ci/run calls.
test: setup
	ruff check .
	lint-imports
	python -m pytest -q --timeout=1200 --durations=15

lint: setup
	ruff check . && ruff format --check . && lint-imports

bench: setup
	python -m tests.bench.run_all
