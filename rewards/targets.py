"""Reward targets built from a GroundingSample, in pixels of the frame the model sees.

stvg-o1 GT indices (integer seconds, the instants the model boxes): with the GT span [s, e) in
seconds (sample.span_seconds, end exclusive), the indices are ceil(s) .. the last integer strictly
before e, i.e. ceil(s - eps) .. ceil(e - eps) - 1 with eps = 1e-6 s absorbing float noise in times
computed as frame / fps. A span that contains no integer second (e.g. [3.2, 3.9)) gets the one
index nearest its midpoint (round-half-up). Index i takes the GT box of the annotated frame nearest
to round(i * fps) inside sample.span_frames (earlier frame on a tie); an index with no annotated
frame inside the span gets no box (the reward skips it). Boxes are scaled from original-video
pixels by (frame_w / sample.width, frame_h / sample.height).
"""

from __future__ import annotations

import math
from typing import Any

from infra.data.sample import GroundingSample
from rewards.frames import nearest_frame, seconds_to_frame
from rewards.schema import TargetError, check_task

SPAN_EPS = 1e-6


def o1_indices(start: float, end: float) -> tuple[int, int]:
    """First and last GT index (inclusive integer seconds) of the span [start, end)."""
    first, last = math.ceil(start - SPAN_EPS), math.ceil(end - SPAN_EPS) - 1
    if first > last:
        first = last = max(math.floor((start + end) / 2 + 0.5), 0)
    return max(first, 0), last


def build_target(task: str, sample: GroundingSample, frame_size: tuple[int, int]) -> dict[str, Any]:
    """The reward target of `sample` for `task` (schema in rewards.schema), frame_size = (w, h)."""
    check_task(task)
    start, end = (float(t) for t in sample.span_seconds)
    if task == "vtg":
        return {"t_start": start, "t_end": end}
    if task == "stvg-r1":
        if sample.target_id is None:
            raise TargetError(f"sample {sample.id!r} has no target_id; stvg-r1 needs the target's instance id "
                              "(a dataset with tracks, or tracks from a detector)")
        return {"t_start": start, "t_end": end, "instance_id": int(sample.target_id)}
    width, height = frame_size
    if not (width > 0 and height > 0 and sample.width > 0 and sample.height > 0):
        raise TargetError(f"sample {sample.id!r}: frame size {frame_size!r} and video size "
                          f"{sample.width}x{sample.height} must be positive")
    if not sample.boxes:
        raise TargetError(f"sample {sample.id!r} has no ground-truth boxes; stvg-o1 needs a spatial dataset")
    if not sample.fps > 0:
        raise TargetError(f"sample {sample.id!r} has fps={sample.fps!r}; it must be > 0")
    sx, sy = width / sample.width, height / sample.height
    first, last = o1_indices(start, end)
    low, high = sample.span_frames
    annotated = sorted(f for f in sample.boxes if low <= f < high)
    boxes = []
    for index in range(first, last + 1):
        frame = nearest_frame(seconds_to_frame(index, sample.fps), annotated)
        if frame is not None:
            x1, y1, x2, y2 = sample.boxes[frame]
            boxes.append([index, x1 * sx, y1 * sy, x2 * sx, y2 * sy])
    return {"t_start": first, "t_end": last, "boxes": boxes, "width": float(width), "height": float(height)}
