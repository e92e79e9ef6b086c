"""Seconds <-> frame ids, one convention for targets, predictions and metrics.

round() here is round-half-up (floor(x + 0.5)), not Python's round-half-to-even: a time exactly
between two frames goes to the later frame, whatever its parity.
"""

from __future__ import annotations

import bisect
import math
from typing import Optional, Sequence


def seconds_to_frame(t: float, fps: float) -> int:
    """The frame id at time t: round-half-up of t * fps."""
    return math.floor(t * fps + 0.5)


def nearest_frame(wanted: int, frames: Sequence[int]) -> Optional[int]:
    """The frame of the sorted sequence `frames` closest to `wanted` (the earlier one on a tie);
    None when `frames` is empty."""
    if not frames:
        return None
    pos = bisect.bisect_left(frames, wanted)
    candidates = frames[max(pos - 1, 0):pos + 1]
    return min(candidates, key=lambda f: (abs(f - wanted), f))
