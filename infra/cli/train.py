"""`stvg train [CONFIG] [key=value ...]`: run GRPO end to end."""

from __future__ import annotations

import argparse

from infra.cli.run_args import add_config_arguments, load_from_args, print_config


INTERMIXED_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser)


def run(args: argparse.Namespace) -> int:
    cfg = load_from_args(args)
    if args.print_config:
        print_config(cfg)
        return 0
    from trainer.job import run_training

    summary = run_training(cfg)
    print()
    print(f"done: {summary.steps} steps of {cfg.name}")
    if summary.checkpoint_uri:
        print(f"  checkpoint:  {summary.checkpoint_uri}")
    evals = {k: v for k, v in summary.last_metrics.items() if k.startswith("eval/")}
    if evals:
        print("  eval:        " + ", ".join(f"{k[5:]} {v:.2f}" for k, v in sorted(evals.items())))
    print(f"  MLflow run:  {summary.run_id}")
    print(f"  MLflow UI:   mlflow ui --backend-store-uri {summary.tracking_uri}")
    return 0
