"""The one sample type every dataset reader produces and every other part consumes.

Conventions (docs/conventions.md has the reasoning):
- frame ids are 0-based indices into the decoded video;
- `span_frames` is [start, end) with the end exclusive, as in TubeDETR;
- `span_seconds` is the same span in seconds, (start_frame / fps, end_frame / fps) unless the
  dataset gives times of its own (HC-STVG's st_time/ed_time, Charades-STA's seconds);
- boxes are xyxy in original-video pixels, keyed by frame id;
- `eval_segment` is the [begin, end) frame range the TubeDETR protocol samples evaluation frames
  from: (0, frame_count - 1) for HC-STVG, VidSTG's used_segment otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in original-video pixels


@dataclass(frozen=True)
class GroundingSample:
    id: str
    """Query id, unique in its dataset. For HC-STVG it is the video file name."""
    video: str
    """Local path or `s3://bucket/key` URI of the video file."""
    fps: float
    frame_count: int
    width: int
    height: int
    query: str
    span_frames: tuple[int, int]
    """Ground-truth span as frame ids, [start, end) (end exclusive)."""
    span_seconds: tuple[float, float]
    boxes: dict[int, Box] = field(default_factory=dict)
    """Ground-truth box per annotated frame id (empty for temporal-only datasets)."""
    sentence_type: Optional[str] = None
    """VidSTG: 'declarative' or 'interrogative'; None elsewhere."""
    tracks: Optional[dict[int, dict[int, Box]]] = None
    """Candidate instance tracks for visual prompting: instance id -> frame id -> box."""
    target_id: Optional[int] = None
    """Instance id of the target among `tracks`, when the dataset knows it."""
    eval_segment: Optional[tuple[int, int]] = None
    """[begin, end) frames evaluation samples from; None means (0, frame_count - 1)."""
    dataset: str = ""
    """Reader that produced the sample: hcstvg-v1, hcstvg-v2, vidstg, charades, synthetic."""

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0

    @property
    def segment(self) -> tuple[int, int]:
        return self.eval_segment if self.eval_segment is not None else (0, max(self.frame_count - 1, 0))
