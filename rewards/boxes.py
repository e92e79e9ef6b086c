"""Vectorised box math for the rewards and the metrics. Boxes are float arrays [..., 4] of
(x1, y1, x2, y2); every function works row-wise over a whole batch at once.

Conventions (docs/conventions.md, "Box hygiene in the rewards"): before a reward scores boxes
(spatial_score), coordinates are reordered so x1 <= x2 and y1 <= y2, then clamped to the frame
[0, W] x [0, H]. The metrics call iou() on boxes as given, with no hygiene. IoU with an empty union is 0;
GIoU = IoU - (C - U) / C with C the enclosing box's area, and GIoU = IoU when C is 0;
L1 = mean(|dx1| / W, |dy1| / H, |dx2| / W, |dy2| / H), so GIoU - L1 lies in [-2, 1].
"""

from __future__ import annotations

import numpy as np


def sanitize(boxes: np.ndarray, width: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """Reorder each box's corners, then clamp it to [0, width] x [0, height] (per row)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    width = np.asarray(width, dtype=np.float64)
    height = np.asarray(height, dtype=np.float64)
    x1 = np.minimum(boxes[..., 0], boxes[..., 2])
    x2 = np.maximum(boxes[..., 0], boxes[..., 2])
    y1 = np.minimum(boxes[..., 1], boxes[..., 3])
    y2 = np.maximum(boxes[..., 1], boxes[..., 3])
    return np.stack([np.clip(x1, 0.0, width), np.clip(y1, 0.0, height),
                     np.clip(x2, 0.0, width), np.clip(y2, 0.0, height)], axis=-1)


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])


def _intersection_union(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0.0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0.0, None)
    inter = w * h
    return inter, _area(a) + _area(b) - inter


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0 where den is 0."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU; 0 where the union is empty. The overlap's width and height are clipped at 0, so
    a box with x1 > x2 or y1 > y2 overlaps nothing and scores 0 (the metrics rely on this)."""
    inter, union = _intersection_union(a, b)
    return _safe_divide(inter, union)


def giou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise generalised IoU of well-ordered boxes; equals IoU where the enclosing area is 0."""
    inter, union = _intersection_union(a, b)
    value = _safe_divide(inter, union)
    enclosing = ((np.maximum(a[..., 2], b[..., 2]) - np.minimum(a[..., 0], b[..., 0]))
                 * (np.maximum(a[..., 3], b[..., 3]) - np.minimum(a[..., 1], b[..., 1])))
    return value - _safe_divide(enclosing - union, enclosing)


def l1(a: np.ndarray, b: np.ndarray, width: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """Row-wise mean absolute corner difference, x normalised by width and y by height."""
    scale = np.stack(np.broadcast_arrays(np.asarray(width, np.float64), np.asarray(height, np.float64),
                                         np.asarray(width, np.float64), np.asarray(height, np.float64)), -1)
    return (np.abs(a - b) / scale).mean(axis=-1)


def spatial_score(pred: np.ndarray, gt: np.ndarray, width: np.ndarray | float,
                  height: np.ndarray | float) -> np.ndarray:
    """GIoU - L1 per row after box hygiene on both boxes (the per-index term of R_spa)."""
    pred = sanitize(pred, width, height)
    gt = sanitize(gt, width, height)
    return giou(pred, gt) - l1(pred, gt, width, height)
