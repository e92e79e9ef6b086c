"""A completion turned into the prediction object `stvg score` reads:
{"id", "t_start", "t_end", "boxes": [[t, x1, y1, x2, y2], ...]}, seconds and ORIGINAL-video pixels.

- stvg-o1: indices are inclusive integer seconds, each an instant the model boxed (the GT indices
  are the integer seconds inside the GT span, rewards.targets). The span [ts, te] of instants
  becomes the continuous span [ts - 0.5, te + 0.5) (start clamped at 0): each index stands for the
  second centred on it, which is the unbiased estimate of the GT span whose integer seconds are
  ts..te (its start lies in (ts - 1, ts], its end in (te, te + 1]). Boxes are the pred_bbox list,
  first box per index, at t = index, sorted by t, scaled by scale_to_original.
- stvg-r1: the parsed span as is; boxes are the predicted instance's track boxes on the frames
  round(s * fps) <= f < round(e * fps), at t = f / fps. Tracks are in original pixels already
  (GroundingSample.tracks), so they are not scaled. No tracks, or an id not in them: no boxes.
- vtg: the parsed span, no boxes.
None when the completion does not parse.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from infra.errors import UserError
from rewards.frames import seconds_to_frame
from rewards.parsing import parse_stvg_o1, parse_stvg_r1, parse_vtg
from rewards.schema import check_task

O1_SPAN_PAD = 0.5
"""Seconds added before the first and after the last STVG-o1 index to make the continuous span."""


def completion_to_prediction(task: str, completion: str, sample_id: str,
                             scale_to_original: tuple[float, float] = (1.0, 1.0),
                             tracks: Optional[Mapping[Any, Mapping[Any, Any]]] = None,
                             fps: Optional[float] = None) -> Optional[dict[str, Any]]:
    """The prediction for one completion, or None when it is unparseable (see module docstring).
    `tracks` (instance id -> frame id -> xyxy box) and `fps` are needed for stvg-r1 boxes."""
    check_task(task)
    if task == "stvg-o1":
        parsed = parse_stvg_o1(completion)
        if parsed is None:
            return None
        sx, sy = scale_to_original
        first: dict[int, tuple[float, ...]] = {}
        for index, box in parsed.pred:
            first.setdefault(index, box)
        boxes = [[float(i), b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for i, b in sorted(first.items())]
        return {"id": sample_id, "t_start": max(parsed.t_start - O1_SPAN_PAD, 0.0),
                "t_end": parsed.t_end + O1_SPAN_PAD, "boxes": boxes}
    if task == "vtg":
        span = parse_vtg(completion)
        return None if span is None else {"id": sample_id, "t_start": span.t_start, "t_end": span.t_end, "boxes": []}
    answer = parse_stvg_r1(completion)
    if answer is None:
        return None
    boxes = []
    if tracks is not None:
        if fps is None or not fps > 0:
            raise UserError(f"completion_to_prediction: stvg-r1 with tracks needs fps > 0, got {fps!r}")
        track = tracks.get(answer.instance_id, tracks.get(str(answer.instance_id), {}))
        low, high = seconds_to_frame(answer.t_start, fps), seconds_to_frame(answer.t_end, fps)
        for frame, box in sorted((int(f), b) for f, b in track.items()):
            if low <= frame < high:
                boxes.append([frame / fps, *(float(v) for v in box)])
    return {"id": sample_id, "t_start": answer.t_start, "t_end": answer.t_end, "boxes": boxes}
