"""Does each of VarietySound's discriminators help? (VarietySound, Cui et al., Table 7: the full model against
the model trained without the multi-window mel discriminator and without the time-domain alignment
discriminator, TDAD.)

A missing discriminator contributes no adversarial term to the generator's loss (the gan_mel solver); each row is
trained from scratch with the same seed and data. The TDAD exists for alignment, so its removal should cost
`onset_corr`; the mel discriminator exists for realism (the paper's MOS). Rows are ranked by `val/mcd_db`, the metric of the paper's table.
"""

from ray_jobs.declare import DELETE, ONE_CPU

BASE = "experiments/configs/varietysound/demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
GRID = {
    "proposed": {},
    "without_mel_discriminator": {"model.mel_discriminator": DELETE, "optim.mel_discriminator": DELETE},
    "without_tdad": {"model.tdad": DELETE, "optim.tdad": DELETE},
}
OBJECTIVE = {"metric": "val/mcd_db", "mode": "min"}  # the paper's Tables 7-8 report MCD
METRICS = ["val/onset_corr", "val/onset_corr_mismatched", "val/energy_corr", "val/mel_l1"]
REGISTER_AS = "varietysound"
SMOKE = {
    "base": "experiments/configs/varietysound/debug.yaml",
    "max_steps_per_epoch": 2,
    "set": {"epochs": 1, "scaling.cpus_per_worker": 0.9},
}
