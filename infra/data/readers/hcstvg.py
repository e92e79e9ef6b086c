"""HC-STVG v1 (`train.json`/`test.json`) and v2 (`trainv2.json`/`valv2.json`).

A dict keyed by video file name; `bbox` holds one xywh box per frame from `st_frame`. Every video is
20 s long, so fps = img_num / 20. The GT tube covers frames st_frame .. st_frame + len(bbox) - 1,
`st_frame` used as given (TubeDETR does; the dataset README calls it 1-based, STCAT subtracts 1).
v1 has `caption`, `width`, `height`; v2 has `English` and `img_size: [h, w]`.
"""

from __future__ import annotations

from pathlib import Path

from infra.data.readers.common import Record, default_video_root, join_video, load_json, parse_all
from infra.data.sample import GroundingSample
from infra.errors import DataError

HCSTVG_SECONDS = 20.0
"""Length of every HC-STVG video; the datasets give frame counts only."""


def read_hcstvg(path: str | Path, *, version: int, video_root: str | Path | None = None,
                skip_invalid: bool = False) -> list[GroundingSample]:
    """Samples of an HC-STVG v1 or v2 annotation file, one per video (id = the video file name)."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise DataError(f"annotation file {str(path)!r} must hold an object keyed by video file name "
                        f"(HC-STVG v{version}), got a {type(data).__name__}")
    root = default_video_root(path) if video_root is None else video_root
    records = (Record(path, f"key {key!r}", value, key) for key, value in data.items())
    return parse_all(path, records, lambda rec: [_sample(rec, version, root)], skip_invalid=skip_invalid)


def _sample(rec: Record, version: int, root: str | Path) -> GroundingSample:
    key = rec.key
    img_num = rec.integer("img_num", low=1)
    st_frame = rec.integer("st_frame", low=0)
    st_time = rec.number("st_time", low=0)
    ed_time = rec.number("ed_time", low=0)
    if ed_time < st_time:
        rec.fail("ed_time", f"({ed_time}) is before st_time ({st_time})")
    if version == 1:
        query = _caption(rec, "caption", other="English", other_version=2)
        width, height = rec.integer("width", low=1), rec.integer("height", low=1)
    else:
        query = _caption(rec, "English", other="caption", other_version=1)
        size = rec.get("img_size")
        if not (isinstance(size, list) and len(size) == 2):
            rec.fail("img_size", f"must be [height, width], got {size!r}")
        height = rec.integer(0, size, name="img_size[0]", low=1)
        width = rec.integer(1, size, name="img_size[1]", low=1)
    boxes = {}
    for i, raw in enumerate(rec.items("bbox")):
        x, y, w, h = rec.box4(raw, f"bbox[{i}]")
        if w < 0 or h < 0:
            rec.fail(f"bbox[{i}]", f"has a negative width or height: {raw!r} (boxes are [x, y, w, h])")
        boxes[st_frame + i] = (x, y, x + w, y + h)
    return GroundingSample(
        id=key,
        video=join_video(root, key),
        fps=img_num / HCSTVG_SECONDS,
        frame_count=img_num,
        width=width,
        height=height,
        query=query,
        span_frames=(st_frame, st_frame + len(boxes)),
        span_seconds=(st_time, ed_time),
        boxes=boxes,
        dataset=f"hcstvg-v{version}",
    )


def _caption(rec: Record, key: str, *, other: str, other_version: int) -> str:
    if key not in rec.data and isinstance(rec.data, dict) and other in rec.data:
        rec.fail(key, f"is missing (this record has {other!r}: is the file HC-STVG v{other_version}?)")
    return rec.text(key)
