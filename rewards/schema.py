"""Tasks, reward term names, default weights, and validation of the reward targets.

Targets follow docs/conventions.md (times in seconds, boxes `[t, x1, y1, x2, y2]` in pixels of the
frame the model sees):
- stvg-o1: {"t_start", "t_end", "boxes", "width", "height"}: t_start/t_end and every box t are
  integer seconds (3 and 3.0 both count), 0 <= t < 10**9; GT indices are t_start..t_end inclusive;
  a box t may appear once; boxes at indices outside the span are allowed and never scored.
- stvg-r1: {"t_start", "t_end", "instance_id"} with instance_id an integer >= 0.
- vtg: {"t_start", "t_end"}.
Every number must be a finite real (bool is not a number); 0 <= t_start <= t_end; width, height > 0.
Extra keys are ignored.
"""

from __future__ import annotations

import math
import numbers
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from infra.errors import ConfigError, UserError

TASKS = ("stvg-o1", "stvg-r1", "vtg")

TERMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "stvg-o1": ("format", "consistency", "temporal", "spatial", "think"),
    "stvg-r1": ("tiou", "id", "format"),
    "vtg": ("tiou", "format"),
})

DEFAULT_WEIGHTS: Mapping[str, Mapping[str, float]] = MappingProxyType({
    "stvg-o1": MappingProxyType({"format": 1.0, "consistency": 1.0, "temporal": 1.0, "spatial": 1.0,
                                 "think": 0.5}),
    "stvg-r1": MappingProxyType({"tiou": 1.0, "id": 1.0, "format": 1.0}),
    "vtg": MappingProxyType({"tiou": 1.0, "format": 1.0}),
})
"""task -> term -> weight; the total reward is sum(weight * term)."""

MAX_INDEX = 999_999_999
"""Largest STVG-o1 index (integer second) a target or a completion may use (9 digits)."""


class TargetError(UserError):
    """A reward target (or the task name) is malformed; the message names the item and the field."""


class O1Target(NamedTuple):
    """A validated stvg-o1 target: span as ints, GT boxes as a float array [n, 5] (t, x1, y1, x2, y2)."""

    t_start: int
    t_end: int
    boxes: np.ndarray
    width: float
    height: float


class O1Batch(NamedTuple):
    """Validated stvg-o1 targets of a whole batch, flattened for array scoring."""

    t_start: np.ndarray
    """[n] int64"""
    t_end: np.ndarray
    width: np.ndarray
    """[n] float64"""
    height: np.ndarray
    boxes: np.ndarray
    """[m, 5] float64: every target's GT rows (t, x1, y1, x2, y2), concatenated in item order."""
    item: np.ndarray
    """[m] int64: the item each GT row belongs to."""


class SpanTarget(NamedTuple):
    """A validated stvg-r1 or vtg target (instance_id is None for vtg)."""

    t_start: float
    t_end: float
    instance_id: Optional[int]


def check_task(task: Any) -> str:
    if task not in TASKS:
        raise TargetError(f"unknown task {_show(task)}; choose one of: {', '.join(TASKS)}")
    return task


def resolve_weights(task: str, weights: Optional[Mapping[str, float]]) -> dict[str, float]:
    """The task's default weights with `weights` (term -> weight, any subset) applied on top."""
    resolved = dict(DEFAULT_WEIGHTS[check_task(task)])
    for term, value in (weights or {}).items():
        if term not in resolved:
            raise ConfigError(f"unknown reward term {term!r} for task {task}; terms: {', '.join(TERMS[task])}")
        if not _is_number(value) or not math.isfinite(float(value)):
            raise ConfigError(f"weight for reward term {term!r} must be a finite number, got {_show(value)}")
        resolved[term] = float(value)
    return resolved


SPATIAL_SPANS = ("intersection", "ground_truth")
"""STVG-o1's R_spa averages over the intersection of the spans (the paper) or the whole GT span."""


def check_spatial_span(spatial_span: Any) -> str:
    if spatial_span not in SPATIAL_SPANS:
        raise ConfigError(f"spatial span {_show(spatial_span)} is not one of {', '.join(SPATIAL_SPANS)}")
    return spatial_span


def validate_target(task: str, target: Mapping) -> None:
    """Raise TargetError naming the bad field if `target` is not a valid target for `task`."""
    check_target(task, target, where=f"{check_task(task)} target")


def check_o1_batch(targets: Sequence[Any]) -> O1Batch:
    """Validate a batch of stvg-o1 targets (errors name "target <position>"). The boxes of all
    targets are checked in one array pass; only a batch with a bad box pays the per-item check
    that finds and names it."""
    scalars = [check_target("stvg-o1", t, f"target {i}", boxes=False) for i, t in enumerate(targets)]
    rows: list[Any] = []
    lengths = []
    for target in targets:
        boxes = target["boxes"]
        if not isinstance(boxes, (list, tuple, np.ndarray)):
            lengths = None
            break
        rows.extend(boxes)
        lengths.append(len(boxes))
    array = None if lengths is None else _fast_rows(rows)
    if array is not None:
        item = np.repeat(np.arange(len(targets)), lengths)
        keys = np.sort(item * (MAX_INDEX + 1) + array[:, 0].astype(np.int64)) if _times_ok(array) else None
        if keys is None or (keys[1:] == keys[:-1]).any():
            array = None
    if array is None:  # find and name the bad box (or accept exotic but valid numbers, e.g. Fraction)
        per_item = [check_target("stvg-o1", t, f"target {i}").boxes for i, t in enumerate(targets)]
        array = np.concatenate(per_item) if per_item else np.zeros((0, 5))
        item = np.repeat(np.arange(len(targets)), [len(b) for b in per_item])
    return O1Batch(t_start=np.array([t.t_start for t in scalars], np.int64),
                   t_end=np.array([t.t_end for t in scalars], np.int64),
                   width=np.array([t.width for t in scalars], np.float64),
                   height=np.array([t.height for t in scalars], np.float64),
                   boxes=array.reshape(-1, 5), item=item)


def check_target(task: str, target: Any, where: str, boxes: bool = True) -> O1Target | SpanTarget:
    """Validate and normalise one target; `where` prefixes error messages (e.g. "target 3").
    boxes=False skips the stvg-o1 boxes (check_o1_batch checks them in bulk; `boxes` is then None)."""
    if type(target) is not dict and not isinstance(target, Mapping):  # the exact-type test is the fast path
        raise TargetError(f"{where}: must be an object with fields {', '.join(_FIELDS[task])}, "
                          f"got {type(target).__name__}")
    for name in _FIELDS[task]:
        if name not in target:
            raise TargetError(f"{where}: missing field {name!r} (a {task} target needs: {', '.join(_FIELDS[task])})")
    start = _finite(target["t_start"], where, "t_start")
    end = _finite(target["t_end"], where, "t_end")
    if start < 0:
        raise TargetError(f"{where}: field 't_start' must be >= 0, got {start!r}")
    if start > end:
        raise TargetError(f"{where}: field 't_start' ({start!r}) must be <= 't_end' ({end!r})")
    if task == "vtg":
        return SpanTarget(start, end, None)
    if task == "stvg-r1":
        ident = target["instance_id"]
        if not isinstance(ident, (int, np.integer)) or isinstance(ident, bool) or ident < 0:
            raise TargetError(f"{where}: field 'instance_id' must be an integer >= 0, got {_show(ident)}")
        return SpanTarget(start, end, int(ident))
    for name, value in (("t_start", start), ("t_end", end)):
        if not value.is_integer() or value > MAX_INDEX:
            raise TargetError(f"{where}: field {name!r} must be an integer second in 0..{MAX_INDEX} "
                              f"for stvg-o1, got {value!r}")
    width = _finite(target["width"], where, "width")
    height = _finite(target["height"], where, "height")
    for name, value in (("width", width), ("height", height)):
        if value <= 0:
            raise TargetError(f"{where}: field {name!r} must be > 0, got {value!r}")
    return O1Target(int(start), int(end), _o1_boxes(target["boxes"], where) if boxes else None, width, height)


_FIELDS = {
    "stvg-o1": ("t_start", "t_end", "boxes", "width", "height"),
    "stvg-r1": ("t_start", "t_end", "instance_id"),
    "vtg": ("t_start", "t_end"),
}


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _finite(value: Any, where: str, name: str) -> float:
    if type(value) is float:  # fast path; the ABC check in _is_number is slow
        if math.isfinite(value):
            return value
    elif type(value) is int or _is_number(value):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            number = math.inf
        if math.isfinite(number):
            return number
    raise TargetError(f"{where}: field {name!r} must be a finite number, got {_show(value)}")


def _fast_rows(rows: Any) -> Optional[np.ndarray]:
    """rows as a float array [m, 5] when it plainly is one (numbers, 5 per row, all finite), else None."""
    if len(rows) == 0:
        return np.zeros((0, 5))
    try:
        array = np.asarray(rows)
    except (ValueError, TypeError, OverflowError):  # ragged rows and the like
        return None
    if array.dtype.kind not in "iuf" or array.ndim != 2 or array.shape[1] != 5:
        return None
    array = array.astype(np.float64)
    return array if np.isfinite(array).all() else None


def _times_ok(array: np.ndarray) -> bool:
    times = array[:, 0]
    return bool(((times == np.floor(times)) & (times >= 0) & (times <= MAX_INDEX)).all())


def _o1_boxes(boxes: Any, where: str) -> np.ndarray:
    if not isinstance(boxes, (list, tuple, np.ndarray)):
        raise TargetError(f"{where}: field 'boxes' must be a list of [t, x1, y1, x2, y2], got {type(boxes).__name__}")
    array = _fast_rows(boxes)
    if array is None:
        array = np.array([_box_row(row, where, i) for i, row in enumerate(boxes)], dtype=np.float64)
    array = array.reshape(-1, 5)
    times = array[:, 0]
    bad = np.flatnonzero((times != np.floor(times)) | (times < 0) | (times > MAX_INDEX))
    if bad.size:
        i = int(bad[0])
        raise TargetError(f"{where}: field 'boxes[{i}]' has t={float(times[i]):g}; t must be an integer second "
                          f"in 0..{MAX_INDEX}")
    seen: dict[float, int] = {}
    for i, t in enumerate(times.tolist()):
        if t in seen:
            raise TargetError(f"{where}: field 'boxes[{i}]' repeats t={int(t)} (already at boxes[{seen[t]}]); "
                              "give one box per index")
        seen[t] = i
    return array


def _box_row(row: Any, where: str, i: int) -> list[float]:
    if not isinstance(row, (list, tuple, np.ndarray)) or len(row) != 5:
        raise TargetError(f"{where}: field 'boxes[{i}]' must be [t, x1, y1, x2, y2] (5 numbers), got {_show(row)}")
    return [_finite(value, where, f"boxes[{i}][{j}]") for j, value in enumerate(row)]
