"""What does each of VarietySound's encoders contribute? (VarietySound, Cui et al., Table 8: the proposed model
against models trained without the temporal encoder and without the acoustic (timbre) encoder, and the model
given background information.)

`use_temporal` / `use_timbre` / `use_background` remove an encoder from the generator (its parameters are not
built). Without the temporal encoder nothing of the video reaches the decoder, so `onset_corr` should fall to
chance (`onset_corr_mismatched`); without the timbre encoder the output cannot follow the reference.

`with_background_info` is Table 8's "w Bi": the model with its background encoder, validated with the clip's real
mel as background input (`train.val_background: real`) instead of silence. Its gain over `proposed` is what the
background information adds; it is not a vision-only score. Difference from the paper: the demo config that is
the base here is built without the background encoder (`use_background: false`; with it, its 10 epochs learnt no
alignment on the built-in data, see the config), so `proposed` is the model without it and `with_background_info`
adds it; over the paper's config (`experiments/configs/varietysound/paper.yaml`, background encoder on) the two
rows differ only in what validation feeds it.
"""

from ray_jobs.declare import ONE_CPU

BASE = "experiments/configs/varietysound/demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
GRID = {
    "proposed": {},
    "without_temporal": {"model.generator.use_temporal": False},
    "without_timbre": {"model.generator.use_timbre": False},
    "with_background_info": {"model.generator.use_background": True, "train.val_background": "real"},
}
OBJECTIVE = {"metric": "val/mcd_db", "mode": "min"}  # the paper's Tables 7-8 report MCD
METRICS = ["val/onset_corr", "val/onset_corr_mismatched", "val/energy_corr", "val/mel_l1"]
REGISTER_AS = "varietysound"
SMOKE = {
    "base": "experiments/configs/varietysound/debug.yaml",
    "max_steps_per_epoch": 2,
    "set": {"epochs": 1, "scaling.cpus_per_worker": 0.9},
}
