"""Runs every benchmark script in tests/bench/ one after another and keeps each one's output.

    python -m tests.bench.run_all [--quick] [--only NAME ...] [--out bench-out]

Benchmarks print Markdown tables; each run's output goes to `<out>/<name>.md`. Run them on a quiet machine:
timings of concurrent jobs on 2 cores mean little. The figures in docs/benchmarks.md come from these outputs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="pass --quick to every script (a sanity run)")
    ap.add_argument("--only", nargs="*", default=None, help="script names without bench_ and .py")
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only]
    failed = 0
    for script in scripts:
        cmd = [sys.executable, str(script), *(["--quick"] if args.quick else [])]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
        text = f"<!-- {' '.join(cmd[1:])} ({dt:.0f} s, exit {proc.returncode}) -->\n{proc.stdout}"
        (args.out / f"{script.stem}.md").write_text(
            text + ("\n" + proc.stderr[-4000:] if proc.returncode else "")
        )
        print(f"{script.name}: exit {proc.returncode} in {dt:.0f} s -> {args.out / (script.stem + '.md')}")
        failed += proc.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
