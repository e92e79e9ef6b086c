"""A classical detector + tracker for the synthetic videos: coloured blobs, associated over time.

Detection (components.py): saturated-colour foreground split by hue sector, connected components.
Association, frame by frame in decoding order:
- each live track predicts its box on the new frame by moving its last whole (not cut short by an
  occluder) box at the mean velocity of its recent whole boxes (constant velocity, as the
  synthetic shapes move);
- a detection may join a track only if both have the same hue sector, and either the IoU of the
  predicted box with the detection is >= `min_iou`, or their centres are closer than
  `max_centre_jump` times the track's typical size (the longest box side of its last 10
  observations: a box cut short by an occlusion does not shrink the gate);
- blobs of one colour inside the same track's gate are merged first when their union is no
  larger than 1.25 times the track's typical size (an object cut in pieces by an occluder stays
  one detection; two separate objects of one colour stay two);
- pairs are matched greedily, best first (higher IoU, then smaller centre distance): each track
  and detection is used at most once per frame;
- an unmatched detection starts a new track; a track not seen for more than `max_gap_seconds`
  ends (a later blob of its colour starts a new one);
- at the end, tracks seen on fewer than `min_frames` analysed frames are dropped (flicker, debris
  of occlusions) and the survivors are numbered 1, 2, ... in order of first appearance.

Good on the synthetic videos (distinct saturated colours on grey); it is NOT a detector for real
footage: use a learned detector + tracker there (docs/seed-methods.md lists those that fit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from infra.config import check_range
from infra.data.instances import box_iou
from infra.data.sample import Box
from infra.data.trackers.components import Detection, detect


@dataclass
class ColourBlobTrackerConfig:
    min_saturation: float = 0.35
    """HSV saturation a pixel needs to count as foreground (grey background ~0, objects ~0.85)."""
    min_value: float = 50.0
    """Brightness (max channel, 0-255) a foreground pixel needs: very dark pixels have unstable hue."""
    hue_bins: int = 6
    """Hue sectors (the first centred on red); blobs of different sectors never merge."""
    min_area_fraction: float = 0.0006
    """Blobs smaller than this fraction of the analysed frame's area are ignored (at least 4 px)."""
    min_side_fraction: float = 0.02
    """Blobs whose box is thinner than this fraction of the frame's short side (at least 3 px) are
    ignored: slivers where two colours blend under chroma subsampling take a third hue."""
    min_iou: float = 0.1
    """IoU of a track's predicted box with a detection that lets them match."""
    max_centre_jump: float = 1.5
    """...or the centre distance, in units of the track's typical size, that lets them match."""
    max_gap_seconds: float = 2.0
    """A track unseen for longer than this ends."""
    min_frames: int = 2
    """Tracks seen on fewer analysed frames are dropped."""
    max_long_side: int = 320
    """Frames are analysed at most this large (long side, pixels); boxes are mapped back to the
    video's pixels. All analysed frames are held in memory at once (fine for 20-60 s clips)."""

    def __post_init__(self):
        check_range("tracker.min_saturation", self.min_saturation, 0.0, 1.0)
        check_range("tracker.min_value", self.min_value, 0.0, 255.0)
        check_range("tracker.hue_bins", self.hue_bins, 2, 36)
        check_range("tracker.min_area_fraction", self.min_area_fraction, 0.0, 1.0)
        check_range("tracker.min_side_fraction", self.min_side_fraction, 0.0, 1.0)
        check_range("tracker.min_iou", self.min_iou, 0.0, 1.0, low_open=True)
        check_range("tracker.max_centre_jump", self.max_centre_jump, 0.0)
        check_range("tracker.max_gap_seconds", self.max_gap_seconds, 0.0)
        check_range("tracker.min_frames", self.min_frames, 1)
        check_range("tracker.max_long_side", self.max_long_side, 16)


@dataclass
class _Track:
    hue_bin: int
    boxes: dict[int, Box] = field(default_factory=dict)  # frame id -> box, analysed-frame pixels

    def predict(self, frame: int) -> tuple[Box, float]:
        """(box guessed for `frame`, the track's typical size: the longest box side seen in the last
        HISTORY observations). Only "whole" observations (both sides at least WHOLE_SHARE of the
        window's largest) are extrapolated, at the velocity between the first and the last of
        them: a box cut short by an occluder would drag a centre-based velocity along with it."""
        recent = list(self.boxes)[-HISTORY:]  # insertion order = time order
        boxes = [self.boxes[f] for f in recent]
        width = max(b[2] - b[0] for b in boxes)
        height = max(b[3] - b[1] for b in boxes)
        whole = [f for f, b in zip(recent, boxes)
                 if b[2] - b[0] >= WHOLE_SHARE * width and b[3] - b[1] >= WHOLE_SHARE * height]
        if not whole:  # the widest and the tallest boxes differ: keep the largest
            whole = [max(zip(recent, boxes), key=lambda fb: (fb[1][2] - fb[1][0]) * (fb[1][3] - fb[1][1]))[0]]
        last = self.boxes[whole[-1]]
        if len(whole) < 2:
            return last, max(width, height)
        first = self.boxes[whole[0]]
        steps = (frame - whole[-1]) / (whole[-1] - whole[0])
        dx = ((last[0] + last[2]) - (first[0] + first[2])) / 2 * steps
        dy = ((last[1] + last[3]) - (first[1] + first[3])) / 2 * steps
        return (last[0] + dx, last[1] + dy, last[2] + dx, last[3] + dy), max(width, height)

    @property
    def last_frame(self) -> int:
        return next(reversed(self.boxes))


HISTORY = 10
"""Observations a track's velocity and typical size are measured over."""
WHOLE_SHARE = 0.8
"""An observation is "whole" (unoccluded) when both its sides are at least this share of the
largest seen in the history."""
MERGE_SLACK = 1.25
"""Pieces of one colour merge only if their union's longer side is at most this times the track's size."""


def _centre_distance(a: Box, b: Box) -> float:
    return (((a[0] + a[2]) - (b[0] + b[2])) ** 2 + ((a[1] + a[3]) - (b[1] + b[3])) ** 2) ** 0.5 / 2


def _merge_split_blobs(detections: list[Detection], live: list[_Track], guesses: list[tuple[Box, float]],
                       cfg: ColourBlobTrackerConfig) -> list[Detection]:
    """Blobs of one colour inside the same track's gate become one detection (their union box) when
    that union is no larger than the track's typical size allows: an object cut in pieces by an
    occluder must not start a second track, while two separate objects (whose union is larger than
    either) stay apart. A blob goes to the gate whose predicted centre is nearest."""
    groups: dict[int, list[int]] = {}
    for d, det in enumerate(detections):
        best, best_dist = None, float("inf")
        for t, (guess, size) in enumerate(guesses):
            dist = _centre_distance(guess, det.box)
            if live[t].hue_bin == det.hue_bin and dist <= cfg.max_centre_jump * size and dist < best_dist:
                best, best_dist = t, dist
        if best is not None:
            groups.setdefault(best, []).append(d)
    merged_away, out = set(), []
    for t, members in groups.items():
        if len(members) < 2:
            continue
        boxes = [detections[d].box for d in members]
        union = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        if max(union[2] - union[0], union[3] - union[1]) > MERGE_SLACK * guesses[t][1]:
            continue
        out.append(Detection(union, sum(detections[d].area for d in members), detections[members[0]].hue_bin))
        merged_away.update(members)
    return [det for d, det in enumerate(detections) if d not in merged_away] + out


def associate(detections_per_frame: list[tuple[int, list[Detection]]], cfg: ColourBlobTrackerConfig,
              max_gap_frames: int) -> dict[int, dict[int, Box]]:
    """Tracks (id -> frame id -> box) from detections per frame id, in increasing frame order."""
    live: list[_Track] = []
    finished: list[_Track] = []
    for frame, detections in detections_per_frame:
        still = []
        for track in live:
            (still if frame - track.last_frame <= max_gap_frames else finished).append(track)
        live = still
        guesses = [track.predict(frame) for track in live]
        detections = _merge_split_blobs(detections, live, guesses, cfg)
        pairs = []
        for t, track in enumerate(live):
            guess, size = guesses[t]
            reach = cfg.max_centre_jump * size
            for d, det in enumerate(detections):
                if det.hue_bin != track.hue_bin:
                    continue
                overlap, dist = box_iou(guess, det.box), _centre_distance(guess, det.box)
                if overlap >= cfg.min_iou or dist <= reach:
                    pairs.append((-overlap, dist, t, d))
        pairs.sort()
        used_tracks, used_dets = set(), set()
        for _, _, t, d in pairs:
            if t in used_tracks or d in used_dets:
                continue
            used_tracks.add(t)
            used_dets.add(d)
            live[t].boxes[frame] = detections[d].box
        for d, det in enumerate(detections):
            if d not in used_dets:
                live.append(_Track(det.hue_bin, {frame: det.box}))
    kept = [t for t in finished + live if len(t.boxes) >= cfg.min_frames]
    kept.sort(key=lambda t: (next(iter(t.boxes)), t.boxes[next(iter(t.boxes))]))
    return {i + 1: dict(t.boxes) for i, t in enumerate(kept)}


class ColourBlobTracker:
    """InstanceTracker for the synthetic videos (see the module docstring)."""

    name = "colour-blobs"

    def __init__(self, cfg: ColourBlobTrackerConfig | None = None):
        self.cfg = cfg or ColourBlobTrackerConfig()

    def track(self, video_path: str | Path, *, fps: float | None = None) -> dict[int, dict[int, Box]]:
        """Instance id -> frame id -> xyxy box in the video's pixels. `fps`: analyse frames at this
        rate (None: every frame); only the analysed frames get boxes."""
        from infra.data.video import sample_frames

        cfg = self.cfg
        sampled = sample_frames(video_path, fps=fps if fps else 1e6, max_long_side=cfg.max_long_side)
        height, width = sampled.frames.shape[1:3]
        min_area = max(4, int(round(cfg.min_area_fraction * width * height)))
        min_side = max(3, int(round(cfg.min_side_fraction * min(width, height))))
        per_frame = []
        for frame_id, frame in zip(sampled.frame_ids.tolist(), sampled.frames):
            per_frame.append((frame_id, detect(frame, min_saturation=cfg.min_saturation, min_value=cfg.min_value,
                                               hue_bins=cfg.hue_bins, min_area=min_area, min_side=min_side)))
        max_gap = max(1, int(round(cfg.max_gap_seconds * sampled.video_fps)))
        tracks = associate(per_frame, cfg, max_gap)
        sx, sy = sampled.scale_to_original
        return {tid: {f: (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for f, b in boxes.items()}
                for tid, boxes in tracks.items()}
