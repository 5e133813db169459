"""How wide may REGNET's audio forwarding regularizer be before the generator copies the real audio instead of
reading the video? (REGNET, Chen et al. 2020, Section 3.3 and Table 4.)

The regularizer feeds a bottleneck of the real mel to the decoder during training only (zero at evaluation). Too
wide and the generator leans on it and fails when it is gone; too narrow and it cannot absorb the content vision
cannot predict. The search covers its width (`aux_dim`, powers of two from 2 to 256), its type (`lstm_last`,
`lstm_sample`, `conv`) and the mel-loss weight lambda_m, scored on vision-only validation alignment
(`onset_corr`: correlation of generated and real onset strength; higher is better).
"""

from ray_jobs.declare import ONE_CPU, pow2

BASE = "experiments/configs/regnet/demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
SPACE = {
    "model.generator.aux_dim": {"choice": pow2(2, 256)},
    "model.generator.aux_type": {"choice": ["lstm_last", "lstm_sample", "conv"]},
    "losses.mel": {"loguniform": [1000.0, 100000.0]},
}
OBJECTIVE = {
    "metric": "val/onset_corr",
    "mode": "max",
}  # mel-level timing; onset F1 would need vocoding every epoch
METRICS = ["val/mcd_db", "val/energy_corr", "val/mel_l1", "val/onset_corr_mismatched"]
NUM_SAMPLES = 24
ASHA = {"grace_period": 3, "reduction_factor": 3}
SEED = 0
REGISTER_AS = "regnet"
SMOKE = {
    "base": "experiments/configs/regnet/debug.yaml",
    "num_samples": 4,
    "max_steps_per_epoch": 2,
    "asha": {"grace_period": 1, "reduction_factor": 2},
    # two 1-worker trials fit on 2 CPUs: 0.1 CPU for each trial's driver + 0.9 for its worker
    "set": {"epochs": 2, "scaling.cpus_per_worker": 0.9},
}
