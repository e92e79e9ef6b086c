"""Which tracked instance is the ground-truth target (STVG-R1's majority-vote ID).

STVG-R1 (preprocess/trainjson.py) picks, on every frame with a ground-truth box, the marker whose
box best overlaps the GT box, then takes the most common marker over those frames. Here:

- only frames where both the GT and a track have a box vote (no interpolation of tracks: a
  tracker run at a lower rate than the annotation simply has fewer voting frames);
- on a frame, the vote goes to the track with the highest IoU with the GT box; a frame where no
  track overlaps the GT box at all (IoU 0) casts no vote; equal IoUs on a frame go to the lower id;
- the winner has the most votes; a tie in votes goes to the highest summed IoU of the votes
  (better-aligned wins), then to the lowest id (deterministic);
- no vote on any frame gives None (the sample has no usable target instance).

Boxes are xyxy with x1 <= x2, y1 <= y2, in the same pixel frame for GT and tracks (original video).
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Mapping, Optional

from infra.data.sample import Box, GroundingSample


def box_iou(a: Box, b: Box) -> float:
    """IoU of two xyxy boxes; 0 when the union is empty."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def frame_votes(gt_boxes: Mapping[int, Box], tracks: Mapping[int, Mapping[int, Box]]) -> dict[int, tuple[int, float]]:
    """Per instance id: (number of GT frames it best overlaps, summed IoU over those frames)."""
    votes: dict[int, tuple[int, float]] = {}
    for frame, gt in gt_boxes.items():
        best_id, best_iou = None, 0.0
        for instance_id in sorted(tracks):
            box = tracks[instance_id].get(frame)
            if box is None:
                continue
            overlap = box_iou(box, gt)
            if overlap > best_iou:  # strict: equal IoU keeps the lower id
                best_id, best_iou = instance_id, overlap
        if best_id is not None:
            count, total = votes.get(best_id, (0, 0.0))
            votes[best_id] = (count + 1, total + best_iou)
    return votes


def ground_truth_instance(gt_boxes: Mapping[int, Box], tracks: Mapping[int, Mapping[int, Box]]) -> Optional[int]:
    """The track id that is the target (see the module docstring for the vote and tie rules)."""
    votes = frame_votes(gt_boxes, tracks)
    if not votes:
        return None
    return min(votes, key=lambda i: (-votes[i][0], -votes[i][1], i))


def assign_target_ids(samples: Iterable[GroundingSample], *, overwrite: bool = False) -> list[GroundingSample]:
    """Samples with `target_id` set by `ground_truth_instance` from their GT boxes and tracks.

    A sample that already has a target id keeps it unless `overwrite`; a sample without tracks or
    boxes, or whose target overlaps no track, is returned unchanged (its target_id stays as it was).
    """
    out = []
    for sample in samples:
        if sample.tracks and sample.boxes and (overwrite or sample.target_id is None):
            found = ground_truth_instance(sample.boxes, sample.tracks)
            if found is not None:
                sample = dataclasses.replace(sample, target_id=found)
        out.append(sample)
    return out
