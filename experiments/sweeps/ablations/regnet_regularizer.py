"""Does REGNET need its audio forwarding regularizer, and which kind? (REGNET, Chen et al. 2020, Table 4: without
the regularizer, and its three designs: the last BiLSTM state, BiLSTM states sampled every few frames, and
strided convolutions.)

Without the regularizer the generator must explain from vision alone what vision cannot predict, which the paper
reports as worse alignment; the three designs differ in how much temporal detail of the real audio leaks through
(`lstm_sample` and `conv` keep timing, `lstm_last` only a summary). Width 32 (the authors' shipped setting).
"""

from ray_jobs.declare import ONE_CPU

BASE = "experiments/configs/regnet/demo.yaml"
GRID = {
    "without_regularizer": {"model.generator.aux_type": "none"},
    "lstm_last": {"model.generator.aux_type": "lstm_last"},
    "lstm_sample": {"model.generator.aux_type": "lstm_sample"},
    "conv": {"model.generator.aux_type": "conv"},
}
SET = {**ONE_CPU, "model.generator.aux_dim": 32}  # one CPU a trial (experiments/sweeps/__init__.py)
OBJECTIVE = {"metric": "val/onset_corr", "mode": "max"}
METRICS = ["val/mcd_db", "val/energy_corr", "val/mel_l1", "val/onset_corr_mismatched"]
REGISTER_AS = "regnet"
SMOKE = {
    "base": "experiments/configs/regnet/debug.yaml",
    "entries": ["without_regularizer", "conv"],  # two trials: one wave on 2 CPUs
    "max_steps_per_epoch": 2,
    "set": {"epochs": 1, "scaling.cpus_per_worker": 0.9},
}
