"""The `stvg` command. Each subcommand lives in its own module and is imported only when used,
so `stvg reward` does not pay for importing torch and Ray.

A subcommand module provides `add_arguments(parser)` and `run(args) -> int | None`; a module that
sets `INTERMIXED_ARGS = True` accepts options between its positionals (`stvg train CFG --quiet k=v`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from infra.config import did_you_mean
from infra.errors import UserError

# name -> (module, one-line help). Order is the order `stvg --help` lists them.
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("infra.cli.data", "generate synthetic videos and inspect annotation files"),
    "score": ("infra.cli.score", "score predictions against annotations (TubeDETR protocol)"),
    "reward": ("infra.cli.reward", "score saved completions with the reward functions"),
    "serve-rewards": ("infra.cli.serve_rewards", "run the HTTP reward server"),
    "train": ("infra.cli.train", "run GRPO training from a config"),
    "sft": ("infra.cli.sft", "supervised fine-tuning on ground-truth answers"),
    "eval": ("infra.cli.eval", "run a checkpoint over a split and score it"),
    "upload": ("infra.cli.upload", "put a local model or dataset folder under s3:// for multi-node runs"),
    "plan": ("infra.cli.plan", "size a run: GPU memory, video tokens, step time, fits or not"),
    "submit": ("infra.cli.submit", "submit a training run to Kubernetes as a RayJob"),
    "status": ("infra.cli.status", "list runs and their state"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0])}


def _top_parser(commands: dict[str, tuple[str, str]]) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<15} {help_}" for name, (_, help_) in commands.items())
    return argparse.ArgumentParser(
        prog="stvg",
        description="RL fine-tuning of video LLMs for spatio-temporal grounding.",
        epilog=f"commands:\n{listing}\n\nRun `stvg COMMAND --help` for a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="stvg [-h] COMMAND ...",
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _available()
    top = _top_parser(commands)
    if not argv or argv[0] in ("-h", "--help"):
        top.print_help()
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        top.print_usage(sys.stderr)
        print(f"stvg: unknown command {name!r}; choose from: {', '.join(commands)}{did_you_mean(name, commands)}",
              file=sys.stderr)
        return 2
    module = importlib.import_module(commands[name][0])
    parser = argparse.ArgumentParser(prog=f"stvg {name}", description=commands[name][1])
    module.add_arguments(parser)
    parse = parser.parse_intermixed_args if getattr(module, "INTERMIXED_ARGS", False) else parser.parse_args
    args = parse(rest)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for chatty in ("botocore", "boto3", "s3transfer", "urllib3"):  # "found credentials ..." on every client
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        return int(module.run(args) or 0)
    except UserError as err:
        print(f"stvg {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stvg {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
