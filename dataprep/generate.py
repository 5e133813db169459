"""DVC stage `generate`: the built-in SynthFoley data set, sized by params `generate`.

python -m dataprep.generate OUT [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataprep import synthfoley
from v2s_models.params import load_params, section


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dataprep.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = ap.parse_args(argv)

    try:
        cfg = section(load_params(args.params), "generate")
        num_clips = cfg.get("num_clips")
        if num_clips is not None and (not isinstance(num_clips, int) or num_clips < 1):
            raise ValueError(
                f"params.yaml: generate.num_clips = {num_clips!r}; expected a positive integer or null"
            )
        paths = synthfoley.generate(
            args.out,
            size=None if num_clips else cfg.get("size", "demo"),
            num_clips=num_clips,
            seed=int(cfg.get("seed", 0)),
            workers=int(cfg.get("workers", 1)),
            progress=True,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[generate] {len(paths)} SynthFoley clips in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
