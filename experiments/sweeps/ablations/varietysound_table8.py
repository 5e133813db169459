"""What does each of VarietySound's encoders contribute? (VarietySound, Cui et al., Table 8: the proposed model
against models trained without the temporal encoder and without the acoustic (timbre) encoder, and the model
given background information.)

`use_temporal` / `use_timbre` / `use_background` remove an encoder from the generator (its parameters are not
built). Without the temporal encoder nothing of the video reaches the decoder, so `onset_corr` should fall to
chance (`onset_corr_mismatched`); without the timbre encoder the output cannot follow the reference.

`with_background_info` is Table 8's "w Bi": the proposed model (background encoder on, as in the paper and the
demo config), validated with the clip's real mel as background input (`train.val_background: real`) instead of
silence. Its gain over `proposed` is what the background information adds; it is not a vision-only score.
`without_background` (not a row of the paper's table) is the model built without the background encoder, to
show what the encoder costs or gives when it hears silence. The demo base trains the background encoder on the
clip's frames shuffled in time (`train.background_input: shuffled`) and adds a peak term to the losses
(`losses.mel_peak`), departures the config explains.
"""

from ray_jobs.declare import ONE_CPU

BASE = "experiments/configs/varietysound/demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
GRID = {
    "proposed": {},
    "without_temporal": {"model.generator.use_temporal": False},
    "without_timbre": {"model.generator.use_timbre": False},
    "with_background_info": {"model.generator.use_background": True, "train.val_background": "real"},
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
