"""`stvg eval [CONFIG] --checkpoint URI [--split heldout|train] [--out DIR] [key=value ...]`."""

from __future__ import annotations

import argparse

from infra.cli.run_args import add_config_arguments, load_from_args, print_config

INTERMIXED_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint URI (a step folder or a checkpoint root = its latest step), local or "
                             "s3://; default: model.path of the config (the initial model)")
    parser.add_argument("--split", choices=("heldout", "train"), default="heldout")
    parser.add_argument("--out", default=None, help="output folder (default: <run dir>/eval/<split>)")


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    if args.print_config:
        print_config(cfg)
        return 0
    from trainer.eval_job import run_eval

    run_eval(cfg, args.checkpoint, args.split, args.out)
    return 0
