"""Does training on audio-visually correlated clips help? (The correlation-filtered seq2seq system, PAPERS.md
section 3: trained on the high-correlation subset, against the low-correlation subset and the unfiltered set.)

The subsets are manifests written by the pipeline's `filter` stage (`dvc repro filter`, part of `dvc repro`):
it trains the correlation tower of params.yaml `filter.tower` (default `tower_demo`) and writes
`data/filtered/high.jsonl` and `data/filtered/low.jsonl` (`v2s_models.correlation_filter`); `data.manifest`
selects the training set. The stage filters the training split only (`filter.splits: [train]`), so all three
rows are validated on the same clips. The sweep refuses to start while a subset is missing.
Scored on the validation NLL per sample (lower is better).
"""

from ray_jobs.declare import ONE_CPU

BASE = "experiments/configs/correlation/seq2seq_demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
GRID = {
    "high_correlation": {"data.manifest": "data/filtered/high.jsonl"},
    "low_correlation": {"data.manifest": "data/filtered/low.jsonl"},
    "unfiltered": {"data.manifest": "data/prepared/manifest.jsonl"},
}
OBJECTIVE = {"metric": "val/nll", "mode": "min"}
METRICS = ["val/nll_bits"]
REGISTER_AS = "seq2seq"
SMOKE = {
    "base": "experiments/configs/correlation/seq2seq_debug.yaml",
    "entries": ["unfiltered"],  # the tiny test data has no filtered subsets
    "max_steps_per_epoch": 2,
    "set": {"epochs": 1, "scaling.cpus_per_worker": 0.9},
}
