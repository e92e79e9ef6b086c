"""STVG-R1 instance-level visual prompting: every candidate object's id drawn at its box centre.

STVG-R1 (preprocess/mask2marker.py) draws each tracked object's id as a red number at the centre of
its mask, with the font scaled to max(H, W) / 336, then asks which id is the target. Here, on the
frames the model sees (after resizing):

- Where: the centre of the object's box (tracks carry boxes, not masks), mapped from original-video
  pixels to the shown frame by dividing by `scale_to_original`.
- When: a sampled frame gets an object's id when the track has a box for that frame id. Trackers
  often run at a lower rate than the video (STVG-R1 detects every 15 frames), so otherwise: the
  box is linearly interpolated between the track's annotated frames before and after when they
  are at most 2 * `tolerance_s` apart (a gap in a sparse track); else the nearest annotated frame
  is used when it is within `tolerance_s` and within half the track's own spacing (the median gap
  between its annotated frames), so a dense track is never extended past its ends (the object
  has left) while a 1-fps track covers the half second around each of its boxes; else the object
  is not drawn on that frame. Default 0.5 s: tracks at 1 fps or more. Without `video_fps` only
  exact frame matches are drawn.
- Look: red (255, 0, 0) digits with a white outline (the outline keeps a red number legible on a
  red object or a dark scene), centred on the point. The font size is `FONT_PX_AT_336` pixels
  at a 336-pixel long side, scaled with max(H, W) and never below `MIN_FONT_PX`, so it stays
  readable at the model's input resolution; the outline is about 1/8 of that (at least 1 px).
- Consistency: the same id is the same object on every frame (ids come from the tracks), and an id
  is drawn identically wherever it appears (same font, size and colours on every frame).
Objects are drawn in increasing id order, so where labels overlap the higher id is on top.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Mapping, Optional, Sequence

import numpy as np

Box = tuple[float, float, float, float]

FONT_PX_AT_336 = 20
"""Font size (Pillow em size, pixels; digits are about 0.7 of it tall) on a frame whose long side is
336 px. STVG-R1 scales cv2's font with max(H, W) / 336 but its exact scale is not recorded here;
20 px keeps digits well over the 14-px half of a Qwen2.5-VL patch."""
MIN_FONT_PX = 9
"""Smallest glyph size: below this digits stop being legible."""
DIGIT_RGB = (255, 0, 0)
OUTLINE_RGB = (255, 255, 255)
DEFAULT_TOLERANCE_S = 0.5


def stvg_r1_query(query: str) -> str:
    """The query as STVG-R1's prompt quotes it: whitespace collapsed, lower-cased, trailing '.'
    stripped (the same normalisation as rollout.prompts.build_instruction for stvg-r1)."""
    return " ".join(query.split()).lower().rstrip(".")


def font_px(width: int, height: int, px_at_336: int = FONT_PX_AT_336) -> int:
    """Font size for a frame of this size (see the module docstring)."""
    return max(MIN_FONT_PX, round(px_at_336 * max(width, height) / 336))


def box_at(track: Mapping[int, Box], frame_id: int, tolerance_frames: int) -> Optional[Box]:
    """The track's box at `frame_id` (see the module docstring): exact; else interpolated between
    the annotated frames before and after when they are at most 2 * tolerance_frames apart; else the
    nearest annotated frame when it is within min(tolerance_frames, step / 2), step being the
    track's median spacing (a dense track is never extended past its ends); else None."""
    exact = track.get(frame_id)
    if exact is not None or tolerance_frames <= 0 or not track:
        return exact
    frames = sorted(track)
    k = bisect_left(frames, frame_id)
    before = frames[k - 1] if k > 0 else None
    after = frames[k] if k < len(frames) else None
    if before is not None and after is not None and after - before <= 2 * tolerance_frames:
        a = (frame_id - before) / (after - before)
        return tuple(u + a * (v - u) for u, v in zip(track[before], track[after]))  # type: ignore[return-value]
    step = float(np.median(np.diff(frames))) if len(frames) > 1 else 2.0 * tolerance_frames
    reach = min(float(tolerance_frames), step / 2)
    gaps = [(frame_id - f, f) for f in (before, after) if f is not None]
    gap, nearest = min((abs(g), f) for g, f in gaps)
    return track[nearest] if gap <= reach else None


def frame_ids_of(timestamps: Sequence[float], video_fps: float) -> list[int]:
    """Frame ids on screen at these seconds: floor(t * fps), as infra.data.video.sample_frames."""
    return [int(np.floor(t * video_fps + 1e-6)) for t in timestamps]


def draw_instance_ids(frames: np.ndarray, frame_ids: Optional[Sequence[int]],
                      tracks: Mapping[int, Mapping[int, Box]], scale_to_original: tuple[float, float] = (1.0, 1.0),
                      *, video_fps: Optional[float] = None, timestamps: Optional[Sequence[float]] = None,
                      tolerance_s: float = DEFAULT_TOLERANCE_S, font_px_at_336: int = FONT_PX_AT_336) -> np.ndarray:
    """A new [T, H, W, 3] uint8 array: `frames` with each object's id drawn at its box centre.

    `frame_ids` are the video frame ids of the frames; give `timestamps` (seconds) and `video_fps`
    instead to derive them. `tracks`: instance id -> frame id -> xyxy box in original-video pixels;
    `scale_to_original` = (sx, sy), original / shown pixels. See the module docstring for which
    frames get which ids and how they look; `font_px_at_336` changes the size."""
    from PIL import Image, ImageDraw, ImageFont

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a [T, H, W, 3] uint8 array, got {frames.dtype} {frames.shape}")
    if frame_ids is None:
        if timestamps is None or not video_fps:
            raise ValueError("give frame_ids, or timestamps with video_fps")
        frame_ids = frame_ids_of(timestamps, video_fps)
    if len(frame_ids) != len(frames):
        raise ValueError(f"{len(frame_ids)} frame ids for {len(frames)} frames")
    count, height, width = frames.shape[:3]
    size = font_px(width, height, font_px_at_336)
    font = ImageFont.load_default(size=size)  # scalable with Pillow >= 10.1
    stroke = max(1, round(size / 8))
    tolerance = int(np.floor(tolerance_s * video_fps + 1e-9)) if video_fps else 0
    sx, sy = scale_to_original
    out = frames.copy()
    for k in range(count):
        labels = []
        for instance_id in sorted(tracks):
            box = box_at(tracks[instance_id], int(frame_ids[k]), tolerance)
            if box is not None:
                labels.append((instance_id, (box[0] + box[2]) / 2 / sx, (box[1] + box[3]) / 2 / sy))
        if not labels:
            continue
        image = Image.fromarray(out[k])
        draw = ImageDraw.Draw(image)
        for instance_id, cx, cy in labels:
            draw.text((cx, cy), str(instance_id), fill=DIGIT_RGB, font=font, anchor="mm",
                      stroke_width=stroke, stroke_fill=OUTLINE_RGB)
        out[k] = np.asarray(image)
    return out


def mark_sampled_frames(sampled, tracks: Mapping[int, Mapping[int, Box]], *,
                        tolerance_s: float = DEFAULT_TOLERANCE_S) -> np.ndarray:
    """`draw_instance_ids` on an infra.data.video.SampledFrames (its frames, ids, scale and fps)."""
    return draw_instance_ids(sampled.frames, sampled.frame_ids.tolist(), tracks, sampled.scale_to_original,
                             video_fps=sampled.video_fps or None, tolerance_s=tolerance_s)
