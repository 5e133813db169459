"""Sweeps (`<study>.py`, a search space) and ablation grids (`ablations/<grid>.py`, lists of override sets).

Each file is a declaration of plain constants whose docstring states the research question; the format is
described in `ray_jobs/studies.py` and `docs/sweeps.md`. Run one with
`python -m ray_jobs.sweep experiments/sweeps/<study>.py [--smoke-test]`.
"""

DELETE = "__delete__"
"""An override value that removes the key (e.g. `{"model.tdad": DELETE, "optim.tdad": DELETE}`)."""


def pow2(lo: int, hi: int) -> list[int]:
    """[lo, 2 lo, 4 lo, ..., hi]: a log-scale choice of powers of two (lo and hi powers of two)."""
    if lo < 1 or hi < lo or lo & (lo - 1) or hi & (hi - 1):
        raise ValueError(f"pow2 needs powers of two 1 <= lo <= hi, got {lo}, {hi}")
    out = [lo]
    while out[-1] < hi:
        out.append(out[-1] * 2)
    return out
