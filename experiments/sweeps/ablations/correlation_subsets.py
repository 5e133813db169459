"""Does training on audio-visually correlated clips help? (The correlation-filtered seq2seq system, PAPERS.md
section 3: trained on the high-correlation subset, against the low-correlation subset and the unfiltered set.)

The subsets are manifests written by `python -m v2s_models.correlation_filter` from a trained correlation tower
(`data/filtered/high.jsonl`, `data/filtered/low.jsonl`; run `experiments/configs/correlation/tower_demo.yaml`
and the filter first); `data.manifest` selects the training set. With the filter's default (every split
filtered) the rows are validated on different clips; filter with `--splits train` to validate all three on the
same clips, which is what a fair comparison needs. Scored on the validation NLL per sample (lower is better).
"""

BASE = "experiments/configs/correlation/seq2seq_demo.yaml"
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
