"""`stvg sft [CONFIG] [key=value ...]`: supervised warm start on ground-truth answers (docs/sft.md).

Same config, learner, checkpoints and MLflow tracking as `stvg train`; start RL from the result with
`stvg train model.path=<checkpoint printed at the end>`.
"""

from __future__ import annotations

import argparse

from infra.cli.run_args import add_config_arguments, run_job

INTERMIXED_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    def sft(cfg):
        from trainer.sft import run_sft

        return run_sft(cfg)

    return run_job(args, sft, what="SFT steps", next_hint="start RL:    stvg train model.path=")
