"""What does each of VarietySound's encoders contribute? (VarietySound, Cui et al., Table 8: the proposed model
against models trained without the temporal encoder and without the acoustic (timbre) encoder, and the model
given background information.)

`use_temporal` / `use_timbre` / `use_background` remove an encoder from the generator (its parameters are not
built). Without the temporal encoder nothing of the video reaches the decoder, so `onset_corr` should fall to
chance (`onset_corr_mismatched`); without the timbre encoder the output cannot follow the reference.

Rows of the paper not run here: Table 8's "w Bi" is the proposed model given the clip's real mel as background at
inference; the gan_mel solver's validation always feeds silence as background, so it needs a solver option
(e.g. `train.val_background: real`) before it can be a row. `without_background` (trained without the background
encoder) is run instead as the nearest training-time contrast.
"""

BASE = "experiments/configs/varietysound/demo.yaml"
GRID = {
    "proposed": {},
    "without_temporal": {"model.generator.use_temporal": False},
    "without_timbre": {"model.generator.use_timbre": False},
    "without_background": {"model.generator.use_background": False},
}
OBJECTIVE = {"metric": "val/mcd_db", "mode": "min"}  # the paper's Tables 7-8 report MCD
METRICS = ["val/onset_corr", "val/onset_corr_mismatched", "val/energy_corr", "val/mel_l1"]
REGISTER_AS = "varietysound"
SMOKE = {
    "base": "experiments/configs/varietysound/debug.yaml",
    "max_steps_per_epoch": 2,
    "set": {"epochs": 1, "scaling.cpus_per_worker": 0.9},
}
