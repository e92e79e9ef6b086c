"""Charades-STA style temporal grounding: one `video_id start end##sentence` line per query (seconds).

The files give no fps, frame count or size, so samples carry fps=0.0, frame_count=0, width=height=0
and span_frames=(0, 0); VTG metrics and rewards use `span_seconds` only. The id is
`<video_id>#<line number>` (1-based), since one video has several queries. Blank lines are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

from infra.data.readers.common import Record, check_file, default_video_root, join_video, parse_all
from infra.data.sample import GroundingSample

VIDEO_SUFFIX = ".mp4"


def read_charades(path: str | Path, *, video_root: str | Path | None = None,
                  skip_invalid: bool = False) -> list[GroundingSample]:
    """Samples of a Charades-STA style file; videos are `<video_root>/<video_id>.mp4`."""
    lines = check_file(path).read_text(encoding="utf-8").splitlines()
    root = default_video_root(path) if video_root is None else video_root
    records = (Record(path, f"line {n}", line, n) for n, line in enumerate(lines, start=1) if line.strip())
    return parse_all(path, records, lambda rec: [_sample(rec, root)], skip_invalid=skip_invalid)


def _sample(rec: Record, root: str | Path) -> GroundingSample:
    head, sep, sentence = rec.data.partition("##")
    if not sep:
        rec.fail("sentence", "is missing: a line must look like `video_id start end##sentence`")
    if not sentence.strip():
        rec.fail("sentence", "is empty")
    parts = head.split()
    if len(parts) != 3:
        rec.fail("video_id start end", f"must be three space-separated values before '##', got {head!r}")
    video_id, times = parts[0], []
    for name, raw in zip(("start", "end"), parts[1:]):
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            rec.fail(name, f"must be a number of seconds >= 0, got {raw!r}")
        times.append(value)
    if times[1] < times[0]:
        rec.fail("end", f"({times[1]}) is before start ({times[0]})")
    return GroundingSample(
        id=f"{video_id}#{rec.key}",
        video=join_video(root, video_id + VIDEO_SUFFIX),
        fps=0.0,
        frame_count=0,
        width=0,
        height=0,
        query=sentence.strip(),
        span_frames=(0, 0),
        span_seconds=(times[0], times[1]),
        dataset="charades",
    )
