"""Sweeps (`<study>.py`, a search space) and ablation grids (`ablations/<grid>.py`, lists of override sets).

Each file is a declaration of plain constants whose docstring states the research question; the format is
described in `ray_jobs/studies.py` and `docs/sweeps.md`; the helpers they may import (ONE_CPU, DELETE,
pow2) are in `ray_jobs/declare.py`. Run one with
`python -m ray_jobs.sweep experiments/sweeps/<study>.py [--smoke-test]`.
"""
