"""`stvg data`: make synthetic STVG videos, inspect annotation files and the videos they name.

    stvg data synth --out data/synth/train --videos 512 --seed 1
    stvg data synth --out data/synth/heldout --videos 256 --seed 2
    stvg data inspect --format vidstg --annotations val_annotations.json --trajectories vidor/annotation/training
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from infra.data.readers import FORMATS  # light: the readers import numpy-free modules only


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    synth = sub.add_parser("synth", help="write synthetic videos, HC-STVG v2 annotations and tracks",
                           description="Write DIR/videos/*.mp4 (20 s each), DIR/annotations.json (HC-STVG v2) "
                                       "and DIR/tracks.json. Use another --seed for a held-out set.")
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    synth.add_argument("--videos", type=int, default=32, metavar="N", help="number of videos (default 32)")
    synth.add_argument("--seed", type=int, default=0, help="random seed; video ids include it (default 0)")
    synth.add_argument("--width", type=int, default=160, help="frame width, even (default 160)")
    synth.add_argument("--height", type=int, default=120, help="frame height, even (default 120)")
    synth.add_argument("--fps", type=float, default=5.0, help="frame rate; 20*fps must be whole (default 5)")
    synth.add_argument("--objects", type=int, nargs=2, default=[2, 4], metavar=("FEWEST", "MOST"),
                       help="shapes per video, the target included (default 2 4; 1 1: the target alone)")
    synth.add_argument("--object-size", type=float, nargs=2, default=[0.12, 0.2], metavar=("LOW", "HIGH"),
                       help="shape side as a fraction of the short side (default 0.12 0.2)")
    synth.add_argument("--target-span", type=float, nargs=2, default=[0.2, 0.6], metavar=("LOW", "HIGH"),
                       help="share of the video the target is visible on (default 0.2 0.6)")
    # infra.data.synth.BACKGROUNDS, written out: importing synth here would load numpy at start-up
    synth.add_argument("--background", choices=("grey", "coded"), default="grey",
                       help="grey (default) or coded: a faint tint stating each pixel's place and time")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")

    inspect = sub.add_parser("inspect", help="count samples, span statistics and problems of an annotation file",
                             description="Read an annotation file, print counts and span statistics, and list "
                                         "problems: invalid records, missing videos, and local videos that "
                                         "cannot be opened or decoded (each is opened, its first and last "
                                         "frame decoded).")
    inspect.add_argument("--format", required=True, choices=FORMATS)
    inspect.add_argument("--annotations", required=True, metavar="FILE")
    inspect.add_argument("--trajectories", metavar="DIR", help="VidOR trajectory folder (vidstg)")
    inspect.add_argument("--video-root", metavar="DIR_OR_URI", help="default: videos/ beside the annotations")
    inspect.add_argument("--tracks", metavar="FILE", help="instance tracks file to attach")
    inspect.add_argument("--no-videos", action="store_true", help="do not open the videos (annotations only)")
    inspect.add_argument("--quiet", action="store_true", help="no progress bar while opening videos")


def run(args: argparse.Namespace) -> int:
    if args.action == "synth":
        return _synth(args)
    return _inspect(args)


def _synth(args: argparse.Namespace) -> int:
    from infra.data.synth import SceneOptions, generate

    options = SceneOptions(objects=tuple(args.objects), object_size=tuple(args.object_size),
                           target_span=tuple(args.target_span), background=args.background)
    path = generate(args.out, args.videos, args.seed, width=args.width, height=args.height, fps=args.fps,
                    options=options, progress=not args.quiet and sys.stderr.isatty())
    print(f"wrote {args.videos} videos to {Path(args.out) / 'videos'}, annotations {path}, "
          f"tracks {path.parent / 'tracks.json'}")
    return 0


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _inspect(args: argparse.Namespace) -> int:
    from infra.data.readers import read_annotations
    from infra.data.stats import describe

    collect = _Collect()
    loggers = [logging.getLogger(name) for name in ("infra.data.readers", "infra.data.tracks")]
    for logger in loggers:
        logger.addHandler(collect)
        logger.propagate = False  # printed below, under problems
    try:
        samples = read_annotations(args.format, args.annotations, video_root=args.video_root,
                                   trajectories_dir=args.trajectories, tracks=args.tracks, skip_invalid=True)
    finally:
        for logger in loggers:
            logger.removeHandler(collect)
            logger.propagate = True
    lines, problems = describe(samples)
    if not args.no_videos:
        line, failures = _open_videos(samples, progress=not args.quiet and sys.stderr.isatty())
        lines.append(line)
        problems += failures
    print(f"{args.annotations} ({args.format})")
    for line in lines:
        print(f"  {line}")
    problems = collect.messages + problems
    print(f"problems: {len(problems) or 'none'}")
    for problem in problems:
        print(f"  - {problem}")
    return 0


def _open_videos(samples, progress: bool) -> tuple[str, list[str]]:
    """Open every local video that exists (missing ones are already a problem of their own) the way
    a run does, decoding its first and last frame: (summary line, one problem per failing video)."""
    from tqdm import tqdm

    from infra.data.video import check_video
    from infra.errors import VideoError

    videos = sorted({s.video for s in samples})
    local = [v for v in videos if "://" not in v and Path(v).is_file()]
    failures = []
    for video in tqdm(local, desc="opening videos", unit="video", disable=not progress, dynamic_ncols=True):
        try:
            check_video(video)
        except VideoError as err:
            failures.append(str(err))
    remote = sum(1 for v in videos if "://" in v)
    line = (f"videos opened: {len(local)} (container, stream, first and last frame), "
            f"{len(failures) or 'none'} failing")
    if remote:
        line += f"; {remote} remote (s3://, synthetic://) not opened"
    return line, failures
