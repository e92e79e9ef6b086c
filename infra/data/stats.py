"""Summaries of a list of samples for `stvg data inspect`: counts, span statistics, problems."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path
from typing import Sequence

from infra.data.sample import GroundingSample

MAX_LISTED = 5
"""Problems name at most this many examples each."""


def _stats(values: Sequence[float], unit: str) -> str:
    if not values:
        return "n/a"
    return (f"min {min(values):.2f}{unit}, mean {statistics.fmean(values):.2f}{unit}, "
            f"max {max(values):.2f}{unit}")


def describe(samples: Sequence[GroundingSample]) -> tuple[list[str], list[str]]:
    """(summary lines, problem lines) of the samples."""
    videos = {s.video for s in samples}
    lines = [f"samples: {len(samples)}", f"videos: {len(videos)}"]
    kinds = Counter(s.sentence_type for s in samples if s.sentence_type)
    if kinds:
        lines.append("sentence types: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    lines.append("span seconds: " + _stats([s.span_seconds[1] - s.span_seconds[0] for s in samples], " s"))
    timed = [s for s in samples if s.frame_count > 0]
    if timed:
        lines.append("span frames: " + _stats([s.span_frames[1] - s.span_frames[0] for s in timed], ""))
        lines.append("span / video: " + _stats([(s.span_frames[1] - s.span_frames[0]) / s.frame_count
                                                for s in timed], ""))
        lines.append("video seconds: " + _stats([s.duration for s in timed], " s"))
    boxed = [s for s in samples if s.boxes]
    lines.append(f"samples with boxes: {len(boxed)}; with tracks: {sum(1 for s in samples if s.tracks)}")

    problems = []
    past_end = [s.id for s in timed if s.span_frames[1] > s.frame_count]
    if past_end:
        problems.append(f"{len(past_end)} spans end past the video's frame count (kept as given), e.g. "
                        + ", ".join(past_end[:MAX_LISTED]))
    unboxed = [s.id for s in timed if not s.boxes]
    if unboxed:
        problems.append(f"{len(unboxed)} samples have no boxes, e.g. " + ", ".join(unboxed[:MAX_LISTED]))
    local = sorted(v for v in videos if "://" not in v)
    missing = [v for v in local if not Path(v).is_file()]
    if missing:
        problems.append(f"{len(missing)} of {len(local)} local videos are missing, e.g. "
                        + ", ".join(missing[:MAX_LISTED]))
    ids = Counter(s.id for s in samples)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        problems.append(f"{len(dupes)} sample ids repeat, e.g. " + ", ".join(dupes[:MAX_LISTED]))
    return lines, problems
