"""VidSTG (`{train,val,test}_annotations.json`) with boxes from VidOR per-video trajectory files.

One sample per sentence: each caption (declarative) and each question (interrogative) of a record.
Frame ranges follow VidOR/TubeDETR: `used_segment` and `temporal_gt` are [begin_fid, end_fid) with
the end exclusive (TubeDETR samples evaluation frames from range(begin, end) and treats the tube end
as exclusive). Trajectory files are found as `<dir>/<vid>.json` or VidOR's `<dir>/<folder>/<vid>.json`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from infra.data.readers.common import Record, default_video_root, join_video, load_json, parse_all
from infra.data.sample import Box, GroundingSample
from infra.errors import DataError

log = logging.getLogger("infra.data.readers")

SENTENCE_KINDS = (("captions", "caption", "declarative"), ("questions", "question", "interrogative"))
"""(annotation field, id infix, sentence_type)."""


def read_vidstg(path: str | Path, *, trajectories_dir: str | Path | None = None,
                video_root: str | Path | None = None, skip_invalid: bool = False) -> list[GroundingSample]:
    """Samples of a VidSTG annotation file, one per caption and per question.

    Without `trajectories_dir` the samples have no boxes and no tracks (temporal grounding only).
    """
    data = load_json(path)
    if not isinstance(data, list):
        raise DataError(f"annotation file {str(path)!r} must hold a list of records (VidSTG), "
                        f"got a {type(data).__name__}")
    root = default_video_root(path) if video_root is None else video_root
    trajectories = VidorTrajectories(trajectories_dir) if trajectories_dir is not None else None
    if trajectories is None:
        log.warning("reading %s without a trajectories_dir: VidSTG samples get no boxes", path)
    records = (Record(path, f"record {i}", value, i) for i, value in enumerate(data))
    return parse_all(path, records, lambda rec: _samples(rec, trajectories, root), skip_invalid=skip_invalid)


def _span(rec: Record, key: str, frame_count: int) -> tuple[int, int]:
    obj = rec.get(key)
    begin = rec.integer("begin_fid", obj, name=f"{key}.begin_fid", low=0)
    end = rec.integer("end_fid", obj, name=f"{key}.end_fid", low=0)
    if not begin < end <= frame_count:
        rec.fail(key, f"must satisfy begin_fid < end_fid <= frame_count ({frame_count}), got [{begin}, {end})")
    return begin, end


def _samples(rec: Record, trajectories: "VidorTrajectories | None", root: str | Path) -> list[GroundingSample]:
    raw_vid = rec.get("vid")
    if isinstance(raw_vid, bool) or not isinstance(raw_vid, (str, int)) or not str(raw_vid).strip():
        rec.fail("vid", f"must be a video id string, got {raw_vid!r}")
    vid = str(raw_vid).strip()
    fps = rec.number("fps")
    if fps <= 0:
        rec.fail("fps", f"must be > 0, got {fps}")
    frame_count = rec.integer("frame_count", low=1)
    width, height = rec.integer("width", low=1), rec.integer("height", low=1)
    segment = _span(rec, "used_segment", frame_count)
    gt = _span(rec, "temporal_gt", frame_count)
    if not (segment[0] <= gt[0] and gt[1] <= segment[1]):
        rec.fail("temporal_gt", f"[{gt[0]}, {gt[1]}) is not inside used_segment [{segment[0]}, {segment[1]})")

    sentences = []  # (field name for errors, id infix, sentence type, description, target id)
    for key, infix, kind in SENTENCE_KINDS:
        for i, item in enumerate(rec.items(key, allow_empty=True)):
            name = f"{key}[{i}]"
            sentences.append((name, f"{infix}{i}", kind, rec.text("description", item, name=f"{name}.description"),
                              rec.integer("target_id", item, name=f"{name}.target_id")))
    if not sentences:
        rec.fail("captions", "and 'questions' are both empty: the record has no sentence")

    tracks: dict[int, dict[int, Box]] | None = None
    video_rel = f"{vid}.mp4"
    if trajectories is not None:
        try:
            video_rel, all_tracks = trajectories.load(vid)
        except DataError as err:
            raise DataError(f"{rec.path}: {rec.ref} (vid {vid!r}): {err}") from None
        tracks = {tid: {f: b for f, b in frames.items() if segment[0] <= f < segment[1]}
                  for tid, frames in all_tracks.items()}
        tracks = {tid: frames for tid, frames in tracks.items() if frames}

    samples = []
    for name, infix, kind, description, target in sentences:
        boxes: dict[int, Box] = {}
        if tracks is not None:
            target_frames = tracks.get(target, {})
            boxes = {f: target_frames[f] for f in range(gt[0], gt[1]) if f in target_frames}
            if not boxes:
                rec.fail(f"{name}.target_id", f"({target}) has no box in temporal_gt frames [{gt[0]}, {gt[1]}) "
                         f"of the trajectory file of video {vid!r}")
        samples.append(GroundingSample(
            id=f"{vid}_{rec.key}_{infix}",
            video=join_video(root, video_rel),
            fps=fps,
            frame_count=frame_count,
            width=width,
            height=height,
            query=description,
            span_frames=gt,
            span_seconds=(gt[0] / fps, gt[1] / fps),
            boxes=boxes,
            sentence_type=kind,
            tracks=tracks,  # shared by the record's sentences: never mutate
            target_id=target,
            eval_segment=segment,
            dataset="vidstg",
        ))
    return samples


class VidorTrajectories:
    """Finds and parses VidOR per-video annotation files under one folder (cached: a video has many
    VidSTG records, usually next to each other)."""

    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        if not self.dir.is_dir():
            raise DataError(f"trajectories_dir {str(self.dir)!r} is not a directory")
        self._index: dict[str, Path] | None = None
        self.load = functools.lru_cache(maxsize=8)(self._load)

    def find(self, vid: str) -> Path:
        flat = self.dir / f"{vid}.json"
        if flat.is_file():
            return flat
        if self._index is None:  # VidOR layout: <dir>/<folder>/<vid>.json, indexed once
            self._index = {f.stem: f for sub in sorted(self.dir.iterdir()) if sub.is_dir()
                           for f in sub.glob("*.json")}
        if vid not in self._index:
            raise DataError(f"no trajectory file {vid}.json in {str(self.dir)!r} or its sub-folders")
        return self._index[vid]

    def _load(self, vid: str) -> tuple[str, dict[int, dict[int, Box]]]:
        """(video path relative to the video root, tid -> frame id -> xyxy box)."""
        path = self.find(vid)
        data = load_json(path, what="trajectory file")
        rec = Record(path, f"video {vid!r}", data)
        frames = rec.items("trajectories", allow_empty=True)
        tracks: dict[int, dict[int, Box]] = {}
        for fid, entries in enumerate(frames):
            if not isinstance(entries, list):
                rec.fail(f"trajectories[{fid}]", f"must be a list of boxes, got {entries!r}")
            for j, entry in enumerate(entries):
                name = f"trajectories[{fid}][{j}]"
                tid = rec.integer("tid", entry, name=f"{name}.tid")
                bbox = rec.get("bbox", entry, name=f"{name}.bbox")
                box = tuple(rec.number(k, bbox, name=f"{name}.bbox.{k}") for k in ("xmin", "ymin", "xmax", "ymax"))
                if box[2] < box[0] or box[3] < box[1]:
                    rec.fail(f"{name}.bbox", f"has xmax < xmin or ymax < ymin: {bbox!r}")
                tracks.setdefault(tid, {})[fid] = box  # type: ignore[assignment]
        video_path = data.get("video_path") if isinstance(data, dict) else None
        if not isinstance(video_path, str) or not video_path:
            folder = path.parent.name if path.parent != self.dir else ""
            video_path = f"{folder}/{vid}.mp4" if folder else f"{vid}.mp4"
        return video_path, tracks
