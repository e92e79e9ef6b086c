"""`stvg reward`: score saved completions with the reward functions.

Input: JSON Lines, one `{"completion": str, "target": {...}}` per line (blank lines skipped).
Output: one JSON line per input line, `{"total": ..., <term>: ..., "parsed": bool}` with the terms
in the task's order (docs/rewards.md). A bad line stops the run with its line number and field.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from infra.errors import ConfigError, UserError

_CHUNK = 4096  # lines scored per score_batch call


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, choices=("stvg-o1", "stvg-r1", "vtg"),
                        help="output format and reward of the completions")
    parser.add_argument("--input", required=True, metavar="FILE",
                        help='JSON Lines of {"completion": str, "target": {...}} (docs/rewards.md)')
    parser.add_argument("--out", metavar="FILE", help="write the scores here (default: stdout)")
    parser.add_argument("--weights", nargs="+", default=[], metavar="TERM=W",
                        help="override term weights, e.g. --weights think=1.0 format=0.5")
    parser.add_argument("--spatial-span", choices=("intersection", "ground_truth"), default="intersection",
                        help="stvg-o1: the GT indices the spatial term averages over (docs/conventions.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def parse_weights(items: list[str]) -> dict[str, float]:
    weights = {}
    for item in items:
        term, sep, value = item.partition("=")
        if not sep or not term:
            raise ConfigError(f"--weights {item!r} must look like TERM=NUMBER (e.g. think=0.5)")
        try:
            weights[term] = float(value)
        except ValueError:
            raise ConfigError(f"--weights {item!r}: {value!r} is not a number") from None
    return weights


def read_items(path: Path, task: str) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(line number, completion, target) per non-blank line; UserError naming the line and field."""
    from rewards.schema import TargetError, validate_target

    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path} line {number}: not valid JSON ({err.msg})") from None
            if not isinstance(item, dict):
                raise UserError(f"{path} line {number}: expected an object with 'completion' and 'target'")
            if not isinstance(item.get("completion"), str):
                raise UserError(f"{path} line {number}: field 'completion' must be a string, "
                                f"got {item.get('completion')!r:.80}")
            if "target" not in item:
                raise UserError(f"{path} line {number}: missing field 'target'")
            try:
                validate_target(task, item["target"])
            except TargetError as err:
                raise UserError(f"{path} line {number}: {err}") from None
            yield number, item["completion"], item["target"]


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rewards import score_batch
    from rewards.schema import resolve_weights

    weights = parse_weights(args.weights)
    resolve_weights(args.task, weights)  # fail on an unknown term before reading anything
    path = Path(args.input)
    if not path.is_file():
        raise UserError(f"input file {str(path)!r} does not exist")
    # --out is written to a side file and renamed at the end: a bad line leaves no partial output.
    partial = Path(f"{args.out}.partial") if args.out else None
    out = partial.open("w", encoding="utf-8") if partial else sys.stdout
    progress = tqdm(desc="scoring", unit="line", disable=args.quiet or not sys.stderr.isatty())
    done = False
    try:
        chunk: list[tuple[int, str, dict[str, Any]]] = []
        for item in read_items(path, args.task):
            chunk.append(item)
            if len(chunk) == _CHUNK:
                _score_chunk(args.task, chunk, weights, args.spatial_span, out, score_batch)
                progress.update(len(chunk))
                chunk = []
        _score_chunk(args.task, chunk, weights, args.spatial_span, out, score_batch)
        progress.update(len(chunk))
        done = True
    finally:
        progress.close()
        if partial:
            out.close()
            if done:
                os.replace(partial, args.out)
            else:
                partial.unlink(missing_ok=True)
    return 0


def _score_chunk(task, chunk, weights, spatial_span, out, score_batch) -> None:
    if not chunk:
        return
    results = score_batch(task, [c for _, c, _ in chunk], [t for _, _, t in chunk], weights=weights,
                          spatial_span=spatial_span)
    for result in results:
        out.write(json.dumps({**result.as_dict(), "parsed": result.parsed, "runaway": result.runaway}) + "\n")
