"""Temporal-augmented assembling (TAS) of the zero-shot strategy (Yang et al., NeurIPS 2025).

The model runs on the original frames and on temporally augmented ones (`sample_views`: reversed
order, or sampled half an interval later); every predicted span and box is mapped back to forward
time (`TemporalView.to_forward`, `unreverse_span`, `unreverse_boxes`) and they are combined: spans
with `assemble_spans`, instance ids with `vote_ids`, boxes per evaluation frame with
`assemble_boxes` (the paper assembles the spatial grounding of the attribute sub-query across the
original and the reversed frames, so that it is temporally consistent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

AUGMENTATIONS = ("original", "reversed", "shifted")


def augment_timestamps(timestamps: Sequence[float], kind: str, duration: float) -> np.ndarray:
    """The times (seconds, increasing) the model is shown for an augmented view of frames sampled at
    `timestamps` from a video of `duration` seconds:

    - original: the timestamps;
    - reversed: the frames in reverse order, time mirrored: a frame at t is shown at duration - t
      (so the presented times are duration - timestamps[::-1]);
    - shifted: the frames sampled half the (median) sampling interval later, t + delta, dropping any
      at or past the end. These are new sampling times: decode frames there (sample_views does).
    """
    times = np.asarray(timestamps, dtype=np.float64)
    if kind == "original":
        return times.copy()
    if kind == "reversed":
        return duration - times[::-1]
    if kind == "shifted":
        shifted = times + shift_of(times)
        return shifted[shifted < duration]
    raise ValueError(f"augmentation {kind!r} is not known; choose one of {AUGMENTATIONS}")


def shift_of(timestamps: Sequence[float]) -> float:
    """Half the median spacing of the timestamps (0 for fewer than two)."""
    times = np.asarray(timestamps, dtype=np.float64)
    return float(np.median(np.diff(times))) / 2 if times.size > 1 else 0.0


def unreverse_span(span: tuple[float, float], duration: float) -> tuple[float, float]:
    """A span predicted on the reversed view, in forward time: [duration - e, duration - s]."""
    start, end = span
    return (duration - end, duration - start)


def unreverse_boxes(boxes: Sequence[Sequence[float]], duration: float) -> list[list[float]]:
    """Boxes [[t, x1, y1, x2, y2], ...] predicted on the reversed view, in forward time
    ([duration - t, ...]), sorted by time."""
    return sorted([[duration - row[0], *row[1:]] for row in boxes], key=lambda row: row[0])


@dataclass(frozen=True)
class TemporalView:
    kind: str
    frames: np.ndarray
    """[T, H, W, 3] uint8 in the order shown to the model."""
    timestamps: np.ndarray
    """[T] presented seconds, increasing (what the prompt states)."""
    frame_ids: np.ndarray
    """[T] video frame id of each shown frame (for drawing ids: rollout.visual_prompt)."""
    duration: float
    frame_size: tuple[int, int] = (0, 0)
    """(width, height) of the frames."""
    scale_to_original: tuple[float, float] = (1.0, 1.0)
    """(sx, sy) = original / shown pixels."""
    video_fps: float = 0.0
    """Frame rate of the video (for drawing ids with a tolerance)."""

    def to_forward(self, span: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
        """A span the model predicted on this view, in the original video's time."""
        if span is None:
            return None
        return unreverse_span(span, self.duration) if self.kind == "reversed" else (span[0], span[1])


def sample_views(video, kinds: Sequence[str] = AUGMENTATIONS, *, duration: Optional[float] = None,
                 **sample_kwargs) -> list[TemporalView]:
    """The views of `kinds` of a local video, decoded with infra.data.video.sample_frames
    (`sample_kwargs`: fps, max_frames, max_long_side, size_multiple, segment). `duration` (seconds)
    defaults to the last timestamp plus one sampling interval, which is exact when the sampling
    rate divides the video's length."""
    from infra.data.video import sample_frames

    for kind in kinds:
        if kind not in AUGMENTATIONS:
            raise ValueError(f"augmentation {kind!r} is not known; choose one of {AUGMENTATIONS}")
    base = sample_frames(video, **sample_kwargs)
    if duration is None:
        duration = float(base.timestamps[-1] + 1.0 / base.sample_fps)
    views = []
    geometry = dict(frame_size=base.frame_size, scale_to_original=base.scale_to_original, video_fps=base.video_fps)
    for kind in kinds:
        if kind == "original":
            views.append(TemporalView(kind, base.frames, base.timestamps, base.frame_ids, duration, **geometry))
        elif kind == "reversed":
            presented = augment_timestamps(base.timestamps, kind, duration)
            views.append(TemporalView(kind, base.frames[::-1].copy(), presented, base.frame_ids[::-1].copy(), duration,
                                      **geometry))
        else:
            begin, end = sample_kwargs.get("segment") or (0.0, duration)
            options = {k: v for k, v in sample_kwargs.items() if k not in ("fps", "segment", "max_frames")}
            later = sample_frames(video, fps=base.sample_fps, segment=(begin + shift_of(base.timestamps), end),
                                  **options)
            views.append(TemporalView(kind, later.frames, later.timestamps, later.frame_ids, duration, **geometry))
    return views


def _weights(weights: Optional[Sequence[float]], count: int, what: str, *, positive: bool = False) -> list[float]:
    """The weights of `count` views' `what` (1 each by default), checked: one per view, > 0 if `positive`."""
    if weights is None:
        return [1.0] * count
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} {what}")
    if positive and any(not w > 0 for w in weights):
        raise ValueError(f"weights must be > 0, got {list(weights)}")
    return list(weights)


def _tiou(a: tuple[float, float], b: tuple[float, float]) -> float:
    union = max(a[1], b[1]) - min(a[0], b[0])
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) / union if union > 0 else float(a == b)


def assemble_spans(predictions: Sequence[Optional[tuple[float, float]]], weights: Optional[Sequence[float]] = None,
                   *, min_tiou: float = 0.3) -> Optional[tuple[float, float]]:
    """One span from the views' forward-time predictions (None = the view's answer did not parse):

    1. keep the valid predictions (finite, start <= end);
    2. the anchor is the prediction that agrees most with all of them: the largest
       sum_j w_j * tIoU(p_i, p_j) (its own weight included); ties go to the earliest (pass the
       original view first, so it wins a tie);
    3. the consistent set is every prediction with tIoU >= `min_tiou` with the anchor;
    4. the result is the weighted mean of their starts and of their ends.
    None when no prediction is valid. `weights` default to 1 each and must be > 0."""
    weights = _weights(weights, len(predictions), "predictions", positive=True)
    valid = [(p, w) for p, w in zip(predictions, weights)
             if p is not None and math.isfinite(p[0]) and math.isfinite(p[1]) and p[0] <= p[1]]
    if not valid:
        return None
    agreement = [sum(w * _tiou(p, q) for q, w in valid) for p, _ in valid]
    anchor = valid[int(np.argmax(agreement))][0]  # argmax returns the first maximum
    chosen = [(p, w) for p, w in valid if _tiou(p, anchor) >= min_tiou]
    total = sum(w for _, w in chosen)
    return (sum(w * p[0] for p, w in chosen) / total, sum(w * p[1] for p, w in chosen) / total)


def assemble_boxes(tubes: Sequence[Sequence[Sequence[float]]], times: Sequence[float],
                   weights: Optional[Sequence[float]] = None, *, min_iou: float = 0.5) -> list[list[float]]:
    """One box per time of `times` (seconds) from the views' tubes ([[t, x1, y1, x2, y2], ...] in
    forward time and original pixels, one tube per view; [] when the view gave no boxes):

    1. each view's box at t: its boxes linearly interpolated between the two around t (the first
       box of a repeated t; corners ordered). A view whose boxes do not reach t gives none there,
       unless no view reaches t: then every view holds its nearest box (as the metrics hold a
       tube's first and last box);
    2. the anchor is the box that agrees most with all of them: the largest sum_j w_j IoU(b_i, b_j)
       (its own weight included); ties go to the earliest view (pass the original view first);
    3. the result is the mean of the anchor and the boxes with IoU >= `min_iou` with it, each
       weighted by w_i x IoU(b_i, anchor) (the anchor by w_anchor): views that agree pull the box
       towards them in proportion to how much they agree, views that do not are left out.

    Returns [[t, x1, y1, x2, y2], ...] for every t, or [] when no view has a box. `weights`
    default to 1 each and must be > 0."""
    weights = _weights(weights, len(tubes), "tubes", positive=True)
    if not 0.0 <= min_iou <= 1.0:
        raise ValueError(f"min_iou must be in [0, 1], got {min_iou}")
    views = [(_tube_rows(tube), float(w)) for tube, w in zip(tubes, weights)]
    views = [(rows, w) for rows, w in views if len(rows)]
    if not views:
        return []
    out = []
    for t in times:
        reaching = [(rows, w) for rows, w in views if rows[0, 0] <= t <= rows[-1, 0]] or views
        boxes = np.stack([_box_at(rows, t) for rows, _ in reaching])
        out.append([float(t), *_consensus(boxes, np.array([w for _, w in reaching]), min_iou).tolist()])
    return out


def _tube_rows(tube: Sequence[Sequence[float]]) -> np.ndarray:
    """[k, 5] rows sorted by t, the first of a repeated t, corners ordered (x1 <= x2, y1 <= y2)."""
    rows = np.asarray(tube, dtype=np.float64).reshape(-1, 5)
    _, first = np.unique(rows[:, 0], return_index=True)
    rows = rows[first]
    x1, x2 = np.minimum(rows[:, 1], rows[:, 3]), np.maximum(rows[:, 1], rows[:, 3])
    y1, y2 = np.minimum(rows[:, 2], rows[:, 4]), np.maximum(rows[:, 2], rows[:, 4])
    return np.stack([rows[:, 0], x1, y1, x2, y2], axis=-1)


def _box_at(rows: np.ndarray, t: float) -> np.ndarray:
    """The tube's box at t: linear interpolation, held at the first/last box outside its range."""
    return np.array([np.interp(t, rows[:, 0], rows[:, c]) for c in range(1, 5)])


def _consensus(boxes: np.ndarray, weights: np.ndarray, min_iou: float) -> np.ndarray:
    from rewards.boxes import iou

    n = len(boxes)
    pairwise = iou(np.repeat(boxes, n, axis=0), np.tile(boxes, (n, 1))).reshape(n, n)
    np.fill_diagonal(pairwise, 1.0)  # a zero-area box still agrees with itself
    anchor = int(np.argmax(pairwise @ weights))  # argmax returns the first maximum
    share = weights * pairwise[anchor] * (pairwise[anchor] >= min_iou)
    return share @ boxes / share.sum()


def vote_ids(ids: Sequence[Optional[int]], weights: Optional[Sequence[float]] = None) -> Optional[int]:
    """STVG-R1 target ids predicted on several views, combined: the id with the largest total weight
    (default 1 each); ties go to the id seen first (pass the original view first); None when no view
    gave an id. Ids need no mapping between views: they come from the same tracks."""
    weights = _weights(weights, len(ids), "ids")
    totals: dict[int, float] = {}
    for ident, w in zip(ids, weights):
        if ident is not None:
            totals[ident] = totals.get(ident, 0.0) + w
    return max(totals, key=lambda i: totals[i]) if totals else None  # max keeps the first of equals

