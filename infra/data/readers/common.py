"""What every reader shares: field checks that name file, record and field; loading JSON; the
skip-invalid policy; joining video paths that may be local or s3:// URIs."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Iterable, NoReturn, TypeVar

from infra.errors import DataError

log = logging.getLogger("infra.data.readers")

T = TypeVar("T")


class Record:
    """One raw record plus where it came from, so every complaint names file, record and field."""

    def __init__(self, path: str | Path, ref: str, data: Any, key: Any = None):
        self.path = str(path)
        self.ref = ref
        """How a user finds the record: `key '55_x.mp4'`, `record 3`, `line 12`."""
        self.data = data
        self.key = key
        """The record's key or index in the file."""

    def fail(self, field: str, problem: str) -> NoReturn:
        raise DataError(f"{self.path}: {self.ref}: field {field!r} {problem}")

    def get(self, key: str | int, obj: Any = None, *, name: str | None = None) -> Any:
        """`obj[key]` (obj defaults to the record), failing if obj is not a dict or lacks key;
        an int key indexes a list whose length the caller has checked."""
        obj = self.data if obj is None else obj
        name = name or str(key)
        if isinstance(key, int) and isinstance(obj, list):
            return obj[key]
        if not isinstance(obj, dict):
            parent = name.rsplit(".", 1)[0] if "." in name else "record"
            self.fail(parent, f"must be an object, got {_kind(obj)}")
        if key not in obj:
            self.fail(name, "is missing")
        return obj[key]

    def number(self, key: str | int, obj: Any = None, *, name: str | None = None, low: float | None = None) -> float:
        name = name or str(key)
        value = self.get(key, obj, name=name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(name, f"must be a finite number, got {value!r}")
        if low is not None and value < low:
            self.fail(name, f"must be >= {low}, got {value!r}")
        return float(value)

    def integer(self, key: str | int, obj: Any = None, *, name: str | None = None, low: int | None = None) -> int:
        name = name or str(key)
        value = self.get(key, obj, name=name)
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # some dumps write 268.0 for frame numbers
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, f"must be an integer, got {value!r}")
        if low is not None and value < low:
            self.fail(name, f"must be >= {low}, got {value!r}")
        return value

    def text(self, key: str | int, obj: Any = None, *, name: str | None = None) -> str:
        name = name or str(key)
        value = self.get(key, obj, name=name)
        if not isinstance(value, str) or not value.strip():
            self.fail(name, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def items(self, key: str | int, obj: Any = None, *, name: str | None = None, allow_empty: bool = False) -> list:
        name = name or str(key)
        value = self.get(key, obj, name=name)
        if not isinstance(value, list):
            self.fail(name, f"must be a list, got {_kind(value)}")
        if not value and not allow_empty:
            self.fail(name, "must not be empty")
        return value

    def box4(self, value: Any, name: str) -> tuple[float, float, float, float]:
        """Four finite numbers."""
        if not isinstance(value, (list, tuple)) or len(value) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        ):
            self.fail(name, f"must be a list of 4 numbers, got {value!r}")
        return tuple(float(v) for v in value)  # type: ignore[return-value]


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string"}.get(type(value), type(value).__name__)


def check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotation file {str(path)!r} does not exist")
    if not path.read_bytes().strip():
        raise DataError(f"annotation file {str(path)!r} is empty")
    return path


def load_json(path: str | Path, *, what: str = "annotation file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} {str(path)!r} does not exist")
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DataError(f"{what} {str(path)!r} is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{what} {str(path)!r} is not valid JSON: {err}") from None


def parse_all(path: str | Path, records: Iterable[Record], parse: Callable[[Record], list[T]],
              *, skip_invalid: bool) -> list[T]:
    """Parse every record; a bad one raises, or with skip_invalid is counted and skipped with one
    warning at the end (never silently). A file whose records are all invalid raises either way."""
    out: list[T] = []
    bad: list[DataError] = []
    total = 0
    for record in records:
        total += 1
        try:
            out.extend(parse(record))
        except DataError as err:
            if not skip_invalid:
                raise
            bad.append(err)
    if total == 0:
        raise DataError(f"annotation file {str(path)!r} has no records")
    if bad:
        if len(bad) == total:
            raise DataError(f"all {total} records are invalid; the first: {bad[0]}")
        log.warning("skipped %d invalid of %d records in %s; the first: %s", len(bad), total, path, bad[0])
    return out


def join_video(root: str | Path, name: str) -> str:
    """`root/name`, by string join for URIs (Path would turn s3://b/k into s3:/b/k)."""
    root = str(root)
    if "://" in root:
        return root.rstrip("/") + "/" + name.lstrip("/")
    return str(Path(root) / name)


def default_video_root(annotation_path: str | Path) -> str:
    """Videos live in `videos/` beside the annotation file unless a video_root is given."""
    return str(Path(annotation_path).resolve().parent / "videos")
