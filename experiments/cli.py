"""The `v2s` command (pyproject's console script): the library's sub-commands (v2s_models/cli.py) with the data
pipeline's (dataprep/cli.py) and Ray's (ray_jobs/cli.py), in one list. This module sits above every layer, so the
library never imports the layers built on it."""

from __future__ import annotations

import argparse
import sys

from dataprep import cli as data_cli
from ray_jobs import cli as ray_cli
from v2s_models import cli as lib_cli


def build_parser() -> argparse.ArgumentParser:
    ap, sub = lib_cli.new_parser()
    data_cli.add_features(sub)
    data_cli.add_synthfoley(sub)
    lib_cli.add_generate(sub)
    lib_cli.add_promote(sub)
    ray_cli.add_finetune(sub)
    lib_cli.add_evaluate(sub)
    lib_cli.add_compare(sub)
    lib_cli.register_listening_test(sub)
    lib_cli.add_ui(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
