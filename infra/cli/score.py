"""`stvg score`: score a prediction file against annotations (TubeDETR protocol; docs/metrics.md).

Predictions: JSON Lines (or one JSON array) of {"id", "t_start", "t_end", "boxes": [[t, x1, y1,
x2, y2], ...]} in seconds and original-video pixels. Prints a table of the aggregates; --out
writes aggregates and per-query rows as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FORMATS = ("hcstvg-v1", "hcstvg-v2", "vidstg", "charades")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, choices=FORMATS, help="annotation format")
    parser.add_argument("--annotations", required=True, metavar="FILE", help="annotation file of that format")
    parser.add_argument("--predictions", required=True, metavar="FILE",
                        help="prediction JSON Lines: id, t_start, t_end, boxes (docs/metrics.md)")
    parser.add_argument("--trajectories", metavar="DIR",
                        help="VidSTG: folder of VidOR per-video annotation files (the GT boxes)")
    parser.add_argument("--out", metavar="FILE", help="write aggregates and per-query metrics as JSON here")


def run(args: argparse.Namespace) -> int:
    from infra.data.readers import read_annotations
    from rewards.metrics import evaluate
    from rewards.prediction_io import read_predictions

    samples = read_annotations(args.format, args.annotations, trajectories_dir=args.trajectories)
    predictions, labels = read_predictions(args.predictions)
    report = evaluate(samples, predictions, args.format, labels=labels)
    print(report.table())
    missing = report.counts["all"]["queries"] - report.counts["all"]["predicted"]
    if missing:
        print(f"{missing} of {report.counts['all']['queries']} queries have no prediction (scored 0)")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    return 0
