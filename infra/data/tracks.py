"""Instance tracks files: candidate objects for STVG-R1 style visual prompting.

    {"<sample id or video file name>": {"target_id": 3,                    # optional
                                        "<instance id>": {"<frame id>": [x1, y1, x2, y2], ...},
                                        ...},
     ...}

Instance ids are integers written as JSON keys; boxes are xyxy in original-video pixels. An entry
is matched to a sample by the sample id first, then by the video's file name, then by its stem.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

from infra.data.readers.common import Record, load_json
from infra.data.sample import Box, GroundingSample
from infra.errors import DataError

log = logging.getLogger("infra.data.tracks")

TARGET_KEY = "target_id"


@dataclasses.dataclass(frozen=True)
class VideoTracks:
    tracks: dict[int, dict[int, Box]]
    target_id: int | None = None


def read_tracks(path: str | Path) -> dict[str, VideoTracks]:
    """Parse a tracks file; a malformed entry raises DataError naming the key, instance and frame."""
    data = load_json(path, what="tracks file")
    if not isinstance(data, dict):
        raise DataError(f"tracks file {str(path)!r} must hold an object keyed by sample or video id")
    out = {}
    for key, entry in data.items():
        rec = Record(path, f"key {key!r}", entry, key)
        if not isinstance(entry, dict):
            rec.fail("instances", f"must be an object of instance id -> frames, got {entry!r}")
        target = rec.integer(TARGET_KEY) if TARGET_KEY in entry else None
        tracks: dict[int, dict[int, Box]] = {}
        for inst, frames in entry.items():
            if inst == TARGET_KEY:
                continue
            tid = _int_key(rec, inst, inst)
            if not isinstance(frames, dict):
                rec.fail(inst, f"must be an object of frame id -> [x1, y1, x2, y2], got {frames!r}")
            boxes = {}
            for frame, box in frames.items():
                x1, y1, x2, y2 = rec.box4(box, f"{inst}.{frame}")
                if x2 < x1 or y2 < y1:
                    rec.fail(f"{inst}.{frame}", f"must be [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2, got {box!r}")
                boxes[_int_key(rec, frame, f"{inst}.{frame}")] = (x1, y1, x2, y2)
            tracks[tid] = dict(sorted(boxes.items()))
        if target is not None and target not in tracks:
            rec.fail(TARGET_KEY, f"({target}) is not one of the instances {sorted(tracks)}")
        out[str(key)] = VideoTracks(tracks, target)
    return out


def _int_key(rec: Record, raw: str, name: str) -> int:
    try:
        return int(raw)
    except ValueError:
        rec.fail(name, "must be an integer key (instance id or frame id)")


def attach_tracks(samples: Iterable[GroundingSample], path: str | Path) -> list[GroundingSample]:
    """Samples with tracks (and target id, when the file gives one) from the tracks file at `path`.

    Samples without an entry keep what they had; entries matching no sample are reported in a warning.
    """
    table = read_tracks(path)
    used: set[str] = set()
    out = []
    for sample in samples:
        name = PurePosixPath(sample.video).name
        key = next((k for k in (sample.id, name, PurePosixPath(name).stem) if k in table), None)
        if key is None:
            out.append(sample)
            continue
        used.add(key)
        entry = table[key]
        target = entry.target_id if entry.target_id is not None else sample.target_id
        out.append(dataclasses.replace(sample, tracks=entry.tracks, target_id=target))
    unused = len(table) - len(used)
    if unused:
        log.warning("%d of %d entries of tracks file %s match no sample id or video name", unused, len(table), path)
    return out


def tracks_to_json(tracks: dict[int, dict[int, Any]], target_id: int | None = None) -> dict[str, Any]:
    """One entry of a tracks file (the inverse of read_tracks for one key)."""
    entry: dict[str, Any] = {} if target_id is None else {TARGET_KEY: target_id}
    for tid, frames in tracks.items():
        entry[str(tid)] = {str(f): [_num(v) for v in box] for f, box in sorted(frames.items())}
    return entry


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)


def dump_by_key(entries: dict[str, Any]) -> str:
    """JSON with one line per top-level key: diffable, and far smaller than indent=1."""
    lines = [f"{json.dumps(key)}: {json.dumps(value)}" for key, value in entries.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def write_tracks(path: str | Path, entries: dict[str, dict[str, Any]]) -> None:
    Path(path).write_text(dump_by_key(entries), encoding="utf-8")
