"""`stvg train [CONFIG] [key=value ...]`: run GRPO end to end."""

from __future__ import annotations

import argparse

from infra.cli.run_args import add_config_arguments, run_job

INTERMIXED_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    def train(cfg):
        from trainer.job import run_training

        return run_training(cfg)

    return run_job(args, train)
