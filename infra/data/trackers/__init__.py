"""Detector + tracker stage for STVG-R1 visual prompting: candidate instances with consistent ids.

An `InstanceTracker` turns a local video file into tracks: instance id -> frame id -> xyxy box in
original-video pixels (the same shape as `GroundingSample.tracks` and the tracks file). Trackers:

- `colour-blobs` (colour.py): classical, numpy only, for the synthetic videos;
- `yolo` (yolo.py): Ultralytics YOLO with its ByteTrack / BoT-SORT tracker, for real footage,
  used when `ultralytics` is installed (not installed here: that path is unverified).

Tracking a whole dataset is done once, offline: `track_samples` runs the tracker per distinct
video, picks each sample's target id (infra.data.instances) and can write a tracks file, which
`read_annotations(..., tracks=...)` attaches from then on. `tracks_for` is the per-sample accessor.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Protocol, runtime_checkable

from infra.data.instances import ground_truth_instance
from infra.data.sample import Box, GroundingSample
from infra.errors import ConfigError, DataError, VideoError

log = logging.getLogger("stvg.data")

Tracks = dict[int, dict[int, Box]]


@runtime_checkable
class InstanceTracker(Protocol):
    def track(self, video_path: str | Path, *, fps: float | None = None) -> Tracks:
        """Instance id -> frame id -> xyxy box (original-video pixels) for the local video file.
        `fps`: analyse frames at about this rate (None: every frame); only analysed frames get boxes."""
        ...


TRACKERS = ("colour-blobs", "yolo")


def build_tracker(name: str, **options) -> InstanceTracker:
    """A tracker by name (TRACKERS); `options` are its config fields."""
    if name == "colour-blobs":
        from infra.data.trackers.colour import ColourBlobTracker as tracker_cls, ColourBlobTrackerConfig as config_cls
    elif name == "yolo":
        from infra.data.trackers.yolo import YoloTracker as tracker_cls, YoloTrackerConfig as config_cls
    else:
        raise ConfigError(f"tracker {name!r} is not known; choose one of: {', '.join(TRACKERS)}")
    fields = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(f"tracker {name!r} has no option {unknown[0]!r}; its options: {', '.join(sorted(fields))}")
    return tracker_cls(config_cls(**options))


def tracks_for(sample: GroundingSample, tracker: Optional[InstanceTracker] = None, *,
               video_path: str | Path | None = None, fps: float | None = None) -> Tracks:
    """The sample's own tracks when it has any (dataset or tracks file), else the tracker's on
    `video_path` (default: the sample's video, which must then be a local file)."""
    if sample.tracks:
        return sample.tracks
    if tracker is None:
        raise DataError(f"sample {sample.id!r} has no instance tracks: attach a tracks file "
                        "(read_annotations(..., tracks=FILE)) or give a tracker")
    path = str(video_path if video_path is not None else sample.video)
    if "://" in path:
        raise DataError(f"sample {sample.id!r}: the tracker needs a local video file, got {path!r}; "
                        "fetch it first and pass video_path")
    return tracker.track(path, fps=fps)


def iter_tracked(samples: Iterable[GroundingSample], tracker: InstanceTracker, *, fps: float | None = None,
                 local_video: Callable[[GroundingSample], str | Path] | None = None,
                 progress: bool = False, skip_bad_videos: bool = False) -> Iterator[GroundingSample]:
    """Each sample with tracks from `tracker` (run once per distinct video) and `target_id` from
    `ground_truth_instance` (None when the GT box overlaps no track), as soon as it is tracked, so a
    caller can keep what was done when a later video fails. Samples that already have tracks keep
    them and their target id. `local_video(sample)` gives the local file of a sample's video
    (default: `sample.video`). A video that cannot be read raises VideoError, or with
    `skip_bad_videos` is warned about once and its samples are not yielded."""
    from tqdm import tqdm

    samples = list(samples)
    by_video: dict[str, Tracks | None] = {}
    for sample in tqdm(samples, desc="tracking", unit="sample", disable=not progress):
        if not sample.tracks:
            path = str(local_video(sample) if local_video else sample.video)
            if path not in by_video:
                try:
                    by_video[path] = tracks_for(sample, tracker, video_path=path, fps=fps)
                except VideoError as err:
                    if not skip_bad_videos:
                        raise
                    log.warning("leaving out the samples of a video the tracker cannot read: %s", err)
                    by_video[path] = None
            tracks = by_video[path]
            if tracks is None:
                continue
            target = ground_truth_instance(sample.boxes, tracks) if sample.boxes else None
            sample = dataclasses.replace(sample, tracks=tracks, target_id=target)
        yield sample


def track_samples(samples: Iterable[GroundingSample], tracker: InstanceTracker, *, fps: float | None = None,
                  local_video: Callable[[GroundingSample], str | Path] | None = None,
                  out_path: str | Path | None = None, progress: bool = False) -> list[GroundingSample]:
    """iter_tracked's samples as a list. With `out_path`, also write a tracks file keyed by sample id."""
    from infra.data.tracks import tracks_to_json, write_tracks

    out = list(iter_tracked(samples, tracker, fps=fps, local_video=local_video, progress=progress))
    if out_path is not None:
        write_tracks(out_path, {s.id: tracks_to_json(s.tracks or {}, s.target_id) for s in out})
    return out
