"""`stvg sft [CONFIG] [key=value ...]`: supervised warm start on ground-truth answers (docs/sft.md).

Same config, learner, checkpoints and MLflow tracking as `stvg train`; start RL from the result with
`stvg train model.path=<checkpoint printed at the end>`.
"""

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
    from trainer.sft import run_sft

    print_summary(run_sft(cfg), cfg, what="SFT steps", next_hint="start RL:    stvg train model.path=")
    return 0
