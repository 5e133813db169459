"""SynthFoley: a built-in, seeded synthetic data set of videos whose visible events cause their sounds.

Eight categories mirror VAS (VarietySound's data set: baby, cough, dog, drum, fireworks, gun, hammer,
sneeze), with two substitutions taken from the issue: `bouncing_ball` replaces sneeze (a clean contact sound
with physically timed contacts), and `cry` is VAS's "baby". Each clip is an mp4 (H.264 + AAC) and a JSON
ground truth: event onsets/offsets on the video frame grid, timbre, background SNR and off-screen sounds.

    python -m dataprep.synthfoley --out data/synthfoley --size tiny          # 16 clips, for CI
    python -m dataprep.synthfoley --out data/synthfoley --size demo --workers 2   # 240 clips
    python -m dataprep.synthfoley --out data/synthfoley --num-clips 800      # the full format ranges

Layout (the VAS/VEGAS layout the pipeline reads): `OUT/<category>/<clip_id>.mp4`,
`OUT/<category>/<clip_id>.json` and the manifest `OUT/synthfoley.json`. The same seed gives byte-identical
files (on the same PyAV/FFmpeg build). Formats vary on purpose (15-30 fps, 160x120-640x360, 22.05/44.1/48
kHz, mono/stereo, 2-10 s): the pipeline must resample to its paper's convention (e.g. RegNet's 21.5 fps /
22050 Hz), as with real data.

Modules: `plan` (every random choice, cheap), `scenes` + `draw` (pixels), `sound` (samples), `encode`
(deterministic atomic mp4), `generate` (in-memory clips, the data set on disk, the command line).
"""

from dataprep.synthfoley.generate import clip_counts, generate, main, synthesize_clip
from dataprep.synthfoley.plan import CATEGORIES, EVENT_KINDS, GENERATOR_VERSION, PROFILES, ClipPlan, plan_clip

__all__ = [
    "CATEGORIES",
    "EVENT_KINDS",
    "GENERATOR_VERSION",
    "PROFILES",
    "ClipPlan",
    "clip_counts",
    "generate",
    "main",
    "plan_clip",
    "synthesize_clip",
]
