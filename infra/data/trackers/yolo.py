"""Ultralytics YOLO detection with its built-in multi-object tracker (ByteTrack or BoT-SORT).

STVG-R1 ran YOLOv12x (confidence 0.25, persons only on HC-STVG) every 15 frames with SAM2 tracking
in between; this adapter is the simpler box-level stand-in that fits the same `InstanceTracker`
interface: `model.track(source=video, stream=True, persist=True, tracker=..., vid_stride=...)`,
keeping each result's `boxes.id` and `boxes.xyxy` (original-image pixels).

Frame ids: for a video file, Ultralytics' loader (`LoadImagesAndVideos.__next__`) grabs `vid_stride`
frames and returns the last one grabbed, and stops after int(frame_count / vid_stride) results, so
result k (from 0) is frame (k + 1) * vid_stride - 1, not k * vid_stride.

NOT VERIFIED HERE against the real package: `ultralytics` is not installed on the development
machines (and its weights cannot be downloaded in tests). tests/infra/data/test_yolo_tracker.py
runs this adapter on a real encoded video against a fake of the part of Ultralytics' API it calls
(YOLO(weights).track(...) yielding results with boxes.id / boxes.xyxy, and the loader's frame
stride above). The weights must be a local file, so nothing is fetched from a hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.config import check_choice, check_range
from infra.data.sample import Box
from infra.errors import ConfigError, UserError


@dataclass
class YoloTrackerConfig:
    weights: str = ""
    """Local path of the YOLO weights file (e.g. yolo12x.pt). Required."""
    tracker: str = "bytetrack.yaml"
    """Ultralytics tracker config: bytetrack.yaml or botsort.yaml."""
    conf: float = 0.25
    """Detection confidence threshold (STVG-R1: 0.25)."""
    classes: list[int] = field(default_factory=list)
    """Class ids to keep (COCO person = 0, as STVG-R1 on HC-STVG); empty = all classes."""
    min_relative_area: float = 0.0
    """Per frame, drop boxes smaller than this fraction of the frame's largest box (STVG-R1 drops
    masks under 1/3 of the largest)."""
    device: str = ""
    """Torch device for Ultralytics ('' = its default choice)."""

    def __post_init__(self):
        check_choice("tracker.tracker", self.tracker, ("bytetrack.yaml", "botsort.yaml"))
        check_range("tracker.conf", self.conf, 0.0, 1.0)
        check_range("tracker.min_relative_area", self.min_relative_area, 0.0, 1.0)
        if not self.weights or not Path(self.weights).is_file():
            raise ConfigError(f"tracker.weights={self.weights!r} must be an existing local weights file "
                              "(nothing is downloaded)")


class YoloTracker:
    """InstanceTracker on Ultralytics YOLO + ByteTrack/BoT-SORT (unverified: see the module docstring)."""

    name = "yolo"

    def __init__(self, cfg: YoloTrackerConfig):
        try:
            from ultralytics import YOLO
        except ImportError:
            raise UserError("tracker 'yolo' needs the ultralytics package (pip install ultralytics)") from None
        self.cfg = cfg
        self._yolo = YOLO

    def track(self, video_path: str | Path, *, fps: float | None = None) -> dict[int, dict[int, Box]]:
        cfg = self.cfg
        stride = 1 if not fps else max(1, round(_video_fps(video_path) / fps))
        model = self._yolo(cfg.weights)  # a fresh model: tracker state must not leak across videos
        options = dict(source=str(video_path), stream=True, persist=True, tracker=cfg.tracker, conf=cfg.conf,
                       vid_stride=stride, verbose=False)
        if cfg.classes:
            options["classes"] = list(cfg.classes)
        if cfg.device:
            options["device"] = cfg.device
        tracks: dict[int, dict[int, Box]] = {}
        for k, result in enumerate(model.track(**options)):
            frame = (k + 1) * stride - 1  # the last of the stride frames the loader grabbed
            boxes = result.boxes
            if boxes is None or boxes.id is None:
                continue
            ids = boxes.id.int().tolist()
            xyxy = boxes.xyxy.tolist()
            areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in xyxy]
            floor = cfg.min_relative_area * max(areas, default=0.0)
            for tid, box, area in zip(ids, xyxy, areas):
                if area >= floor:
                    tracks.setdefault(int(tid), {})[frame] = tuple(float(v) for v in box)
        return tracks


def _video_fps(path: str | Path) -> float:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.average_rate or stream.guessed_rate or stream.base_rate)
