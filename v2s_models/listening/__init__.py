"""The listening-test kit: a self-contained HTML test page built from evaluation folders, and its scoring.

`build.build_test` writes the page and its key; raters answer in any browser and export a CSV; `score` turns
those CSVs into MOS (VarietySound's realism, alignment and timbre scales) and real-or-fake rates (Zhou et al.)
per system. `cli.register` adds `v2s listening-test build|score`. See docs/listening_test.md.
"""
