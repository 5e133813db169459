"""How narrow must VarietySound's temporal bottleneck be to keep timbre out of the video path, and how do the
loss weights lambda_m (mel L1) and lambda_a (adversarial) trade timing against realism? (VarietySound, Cui et
al., Section 3.2 and Table 3: bottleneck 8, lambda_m 10000, lambda_a 1.)

The temporal encoder's Linear bottleneck (`bottleneck_dim`, powers of two from 2 to 64) is the only path from the
video to the decoder; a wide one may carry acoustic content the timbre encoder should supply. Scored on
vision-only validation alignment with another clip's reference timbre (`onset_corr`; higher is better).
"""

from ray_jobs.declare import ONE_CPU, pow2

BASE = "experiments/configs/varietysound/demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
SPACE = {
    "model.generator.bottleneck_dim": {"choice": pow2(2, 64)},
    "losses.mel": {"loguniform": [1000.0, 100000.0]},  # lambda_m
    "losses.adv": {"loguniform": [0.1, 10.0]},  # lambda_a
}
OBJECTIVE = {"metric": "val/onset_corr", "mode": "max"}
METRICS = ["val/mcd_db", "val/energy_corr", "val/mel_l1", "val/ref_other_fraction"]
NUM_SAMPLES = 24
ASHA = {"grace_period": 3, "reduction_factor": 3}
SEED = 0
REGISTER_AS = "varietysound"
SMOKE = {
    "base": "experiments/configs/varietysound/debug.yaml",
    "num_samples": 4,
    "max_steps_per_epoch": 2,
    "asha": {"grace_period": 1, "reduction_factor": 2},
    "set": {"epochs": 2, "scaling.cpus_per_worker": 0.9},
}
