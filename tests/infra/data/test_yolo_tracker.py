"""The YOLO adapter (infra/data/trackers/yolo.py) on a real encoded video whose objects' boxes are
known on every frame, through a fake of the part of Ultralytics' API it calls (the package is not
installed here, see the module docstring of that file):

- `ultralytics.YOLO(weights).track(source=..., stream=True, vid_stride=..., ...)` yields one
  `Results` per analysed frame. For a video file Ultralytics' loader (`LoadImagesAndVideos.__next__`)
  grabs `vid_stride` frames and retrieves the last one grabbed, and stops after
  int(frame_count / vid_stride) results: result k is frame (k + 1) * vid_stride - 1.
- `Results.boxes` is a `Boxes` whose data rows are (x1, y1, x2, y2, track_id, conf, cls) when
  tracking; `.xyxy` is data[:, :4], `.id` data[:, -3] (None when not tracking), `.conf`, `.cls`.

The fake's "detector" finds the test video's saturated squares by colour and its "tracker" gives each
colour one id, so any frame-mapping error shows up as boxes shifted along the objects' motion."""

from __future__ import annotations

import sys
import types
from fractions import Fraction

import numpy as np
import pytest

from infra.data.trackers import build_tracker

FPS = 15
FRAMES = 31  # not a multiple of the stride: the loader's int(frame_count / vid_stride) drops the tail
RED_SIZE, BLUE_SIZE = 24, 12


def red_box(f: int) -> tuple[float, float, float, float]:
    """The red square moves right 4 px per frame."""
    return (8.0 + 4 * f, 20.0, 8.0 + 4 * f + RED_SIZE, 20.0 + RED_SIZE)


def blue_box(f: int) -> tuple[float, float, float, float]:
    """The blue square moves down 2 px per frame."""
    return (100.0, 4.0 + 2 * f, 100.0 + BLUE_SIZE, 4.0 + 2 * f + BLUE_SIZE)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    import av

    path = tmp_path_factory.mktemp("yolo") / "moving.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.options = {"crf": "12"}
        for f in range(FRAMES):
            frame = np.full((96, 160, 3), 128, dtype=np.uint8)
            for box, colour in ((red_box(f), (230, 20, 20)), (blue_box(f), (20, 20, 230))):
                x1, y1, x2, y2 = (int(v) for v in box)
                frame[y1:y2, x1:x2] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class FakeBoxes:
    """ultralytics.engine.results.Boxes: rows (x1, y1, x2, y2, track_id, conf, cls) when tracking."""

    def __init__(self, data):
        self.data = data
        self.is_track = data.shape[-1] == 7

    @property
    def xyxy(self):
        return self.data[:, :4]

    @property
    def id(self):
        return self.data[:, -3] if self.is_track else None

    @property
    def conf(self):
        return self.data[:, -2]

    @property
    def cls(self):
        return self.data[:, -1]


class FakeResults:
    def __init__(self, orig_img, boxes):
        self.orig_img = orig_img
        self.boxes = boxes


class FakeYOLO:
    calls: list[dict] = []

    def __init__(self, weights):
        self.weights = weights

    def track(self, source, *, stream=False, persist=False, tracker="botsort.yaml", conf=0.25, vid_stride=1,
              verbose=True, classes=None, device=None):
        import av
        import torch

        FakeYOLO.calls.append(dict(source=source, stream=stream, persist=persist, tracker=tracker, conf=conf,
                                   vid_stride=vid_stride, classes=classes))
        with av.open(source) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        for k in range(len(frames) // vid_stride):  # the loader stops after int(frame_count / vid_stride)
            image = frames[(k + 1) * vid_stride - 1]  # vid_stride grabs, then retrieve the last grabbed
            rows = []
            for track_id, channel in ((1, 0), (2, 2)):  # red -> id 1, blue -> id 2, both class 0
                others = [c for c in range(3) if c != channel]
                ys, xs = np.nonzero((image[..., channel] > 160) & (image[..., others] < 80).all(axis=-1))
                if xs.size:
                    rows.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, track_id, 0.9, 0])
            rows = [r for r in rows if r[5] >= conf and (classes is None or r[6] in classes)]
            data = torch.tensor(rows, dtype=torch.float32).reshape(-1, 7)
            yield FakeResults(image[..., ::-1], FakeBoxes(data))


@pytest.fixture
def yolo(monkeypatch, tmp_path):
    module = types.ModuleType("ultralytics")
    module.YOLO = FakeYOLO
    monkeypatch.setitem(sys.modules, "ultralytics", module)
    FakeYOLO.calls.clear()
    weights = tmp_path / "yolo12x.pt"
    weights.write_bytes(b"not read by the fake")
    return weights


def _assert_boxes_at(track: dict, expected_box, frames: list[int]):
    assert sorted(track) == frames
    for f in frames:
        assert np.abs(np.array(track[f]) - np.array(expected_box(f))).max() <= 1.0, f


def test_every_frame_is_tracked_without_fps(yolo, video):
    tracks = build_tracker("yolo", weights=str(yolo)).track(video)
    assert FakeYOLO.calls[-1]["vid_stride"] == 1 and FakeYOLO.calls[-1]["stream"] is True
    _assert_boxes_at(tracks[1], red_box, list(range(FRAMES)))
    _assert_boxes_at(tracks[2], blue_box, list(range(FRAMES)))


def test_strided_results_are_mapped_to_the_last_frame_of_each_stride(yolo, video):
    # 15 fps analysed at 5 fps: vid_stride 3; results are frames 2, 5, ..., 29 (10 = int(31 / 3) of
    # them). Mapping result k to k * 3 would put each box 2 frames early: 8 px off for the red square.
    tracks = build_tracker("yolo", weights=str(yolo)).track(video, fps=5.0)
    assert FakeYOLO.calls[-1]["vid_stride"] == 3
    expected = [2, 5, 8, 11, 14, 17, 20, 23, 26, 29]
    _assert_boxes_at(tracks[1], red_box, expected)
    _assert_boxes_at(tracks[2], blue_box, expected)


def test_boxes_under_the_relative_area_floor_and_other_classes_are_dropped(yolo, video):
    # the blue square is (12 / 24)^2 = 1/4 of the red one's area: dropped at a 1/3 floor
    tracks = build_tracker("yolo", weights=str(yolo), min_relative_area=1 / 3, classes=[0]).track(video, fps=5.0)
    assert sorted(tracks) == [1]
    assert FakeYOLO.calls[-1]["classes"] == [0]
