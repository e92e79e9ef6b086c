"""Prediction objects for `stvg score`: validation and reading of prediction files.

A prediction: {"id": str, "t_start": seconds, "t_end": seconds, "boxes": [[t, x1, y1, x2, y2], ...]}
with boxes in original-video pixels (optional; VTG predictions have none). Extra keys are ignored.
t_start > t_end is allowed and scores as an empty span. A file is JSON Lines (one object per line,
blank lines skipped) or one JSON array of objects.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from infra.errors import DataError


class Prediction(NamedTuple):
    id: str
    t_start: float
    t_end: float
    boxes: np.ndarray
    """[k, 5] float64: t, x1, y1, x2, y2."""


def check_prediction(obj: Any, where: str) -> Prediction:
    """Validate one prediction object; DataError messages start with `where` and name the field."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: a prediction must be a JSON object with id, t_start, t_end, boxes; "
                        f"got {type(obj).__name__}")
    if not isinstance(obj.get("id"), str):
        raise DataError(f"{where}: field 'id' must be a string (the query id), got {obj.get('id')!r}")
    times = []
    for name in ("t_start", "t_end"):
        if name not in obj:
            raise DataError(f"{where}: missing field {name!r} (seconds)")
        times.append(_finite(obj[name], where, name))
    boxes = obj.get("boxes", [])
    if boxes is None:
        boxes = []
    if not isinstance(boxes, list):
        raise DataError(f"{where}: field 'boxes' must be a list of [t, x1, y1, x2, y2], got {type(boxes).__name__}")
    rows = []
    for i, row in enumerate(boxes):
        if not isinstance(row, list) or len(row) != 5:
            raise DataError(f"{where}: field 'boxes[{i}]' must be [t, x1, y1, x2, y2] (5 numbers), got {row!r}")
        rows.append([_finite(v, where, f"boxes[{i}][{j}]") for j, v in enumerate(row)])
    return Prediction(obj["id"], times[0], times[1], np.array(rows, dtype=np.float64).reshape(-1, 5))


def read_predictions(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Read and validate a prediction file: (objects, a label per object such as "FILE line 7" for
    evaluate's messages). Errors name the file, the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"predictions file {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(items, list):
            raise DataError(f"{path}: expected a JSON array of predictions or JSON Lines")
        labels = [f"{path} item {i + 1}" for i in range(len(items))]
        for item, label in zip(items, labels):
            check_prediction(item, label)
        return items, labels
    items, labels = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path} line {number}: not valid JSON ({err.msg})") from None
        labels.append(f"{path} line {number}")
        check_prediction(item, labels[-1])
        items.append(item)
    return items, labels


def _finite(value: Any, where: str, name: str) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
    raise DataError(f"{where}: field {name!r} must be a finite number, got {value!r}")
