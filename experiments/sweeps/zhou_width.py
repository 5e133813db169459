"""How wide must the SampleRNN of Zhou et al.'s Visual to Sound be? (Zhou et al. 2018, Section 4: 1024-unit tiers
in the paper; our demo model is 64 wide.)

The search covers the SampleRNN width (`dim`: frame-level tiers and sample-level MLP), its input embedding
(`emb_dim`) and the Seq encoder's GRU width (`encoder_dim`), scored on the validation negative log-likelihood per
sample (nats, teacher forcing; lower is better). The encoders themselves (Frame / Seq / Flow) are compared by the
ablation grid `ablations/zhou_encoders.py`; point BASE at frame_demo.yaml or flow_demo.yaml to size those.
"""

from ray_jobs.declare import ONE_CPU, pow2

BASE = "experiments/configs/zhou/seq_demo.yaml"
SET = ONE_CPU  # one CPU a trial (experiments/sweeps/__init__.py)
SPACE = {
    "model.model.dim": {"choice": pow2(32, 512)},
    "model.model.emb_dim": {"choice": pow2(16, 128)},
    "model.model.encoder_dim": {"choice": pow2(32, 256)},
}
OBJECTIVE = {"metric": "val/nll", "mode": "min"}
METRICS = ["val/nll_bits", "val/gen_envelope_corr"]
NUM_SAMPLES = 16
ASHA = {"grace_period": 1, "reduction_factor": 2}
SEED = 0
REGISTER_AS = "zhou-seq"
SMOKE = {
    "base": "experiments/configs/zhou/seq_debug.yaml",
    "num_samples": 4,
    "max_steps_per_epoch": 2,
    "asha": {"grace_period": 1, "reduction_factor": 2},
    "set": {"epochs": 2, "scaling.cpus_per_worker": 0.9},
}
