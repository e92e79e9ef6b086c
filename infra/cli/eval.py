"""`stvg eval [CONFIG] --checkpoint URI [--split heldout|train] [--out DIR] [--decompose ...] [--assemble ...]
[key=value ...]`."""

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
    parser.add_argument("--decompose", choices=("none", "rules", "model"), default="none",
                        help="zero-shot query decomposition (DSTH): the action sub-query grounds the span, the "
                             "attribute sub-query the target; split by rules or by the model (docs/seed-methods.md)")
    parser.add_argument("--assemble", choices=("none", "reversed", "shifted", "both"), default="none",
                        help="temporal-augmented assembling (TAS): also answer on reversed and/or shifted frame "
                             "samplings and assemble the spans")


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    if args.print_config:
        print_config(cfg)
        return 0
    from trainer.eval_job import run_eval

    run_eval(cfg, args.checkpoint, args.split, args.out, decompose=args.decompose, assemble=args.assemble)
    return 0
