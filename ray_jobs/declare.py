"""What a sweep or ablation declaration (experiments/sweeps/) may import: ONE_CPU, DELETE and pow2.

They live with the sweep runner (ray_jobs/studies.py reads them) so that ray_jobs never imports the
declarations' package; a declaration imports them from here.
"""

ONE_CPU = {"scaling.cpus_per_worker": 0.9}
"""The shipped declarations' SET: a trial takes one CPU (0.1 for its driver + 0.9 for its one Train worker, which
then runs torch on 1 thread), so trials run side by side, one per core (the demo configs ask for 2 CPUs a worker,
which with the driver's 0.1 would not fit a 2-core machine at all)."""

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
