"""`stvg train [CONFIG] [key=value ...]`: run GRPO end to end."""

from __future__ import annotations

import argparse

from infra.cli.run_args import add_config_arguments, load_from_args, print_config, print_summary


INTERMIXED_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    if args.print_config:
        print_config(cfg)
        return 0
    from trainer.job import run_training

    print_summary(run_training(cfg), cfg)
    return 0
