"""Which visual encoder serves Zhou et al.'s Visual to Sound best? (Zhou et al. 2018, Section 4 and Table 2: the
Frame method (features concatenated to each frame-level tier's input), the Seq method (a GRU over the frame
features initialises the coarsest tier) and the Flow method (Seq with optical-flow features added).)

Each row trains one preset with the same SampleRNN size and data, scored on the validation negative
log-likelihood per sample (lower is better) and the envelope correlation of a short vision-only generation.
"""

from ray_jobs.declare import ONE_CPU

GRID = {
    "frame": {"_base_": "experiments/configs/zhou/frame_demo.yaml"},
    "seq": {"_base_": "experiments/configs/zhou/seq_demo.yaml"},
    "flow": {"_base_": "experiments/configs/zhou/flow_demo.yaml"},
}

BASE = "experiments/configs/zhou/seq_demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
OBJECTIVE = {"metric": "val/nll", "mode": "min"}
METRICS = ["val/nll_bits", "val/gen_envelope_corr"]
REGISTER_AS = "zhou"
SMOKE = {
    "bases": {
        "frame": "experiments/configs/zhou/frame_debug.yaml",
        "seq": "experiments/configs/zhou/seq_debug.yaml",
        "flow": "experiments/configs/zhou/flow_debug.yaml",
    },
    "max_steps_per_epoch": 2,
    "set": {"epochs": 1, "scaling.cpus_per_worker": 0.9},
}
