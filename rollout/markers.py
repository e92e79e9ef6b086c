"""STVG-R1 visual prompting: draw each candidate object's instance id at its box centre.

Ids come from `GroundingSample.tracks` (instance id -> frame id -> xyxy box in original-video
pixels), so they are temporally consistent by construction. A frame gets an object's id only when
the track has a box for exactly that frame id. As in STVG-R1, the number is red and its size grows
with the frame (proportional to max(H, W) / 336); a thin white outline keeps it legible.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

Box = tuple[float, float, float, float]


def draw_instance_ids(frames: np.ndarray, frame_ids: Sequence[int], tracks: Mapping[int, Mapping[int, Box]],
                      scale_to_original: tuple[float, float]) -> np.ndarray:
    """A copy of `frames` ([T, H, W, 3] uint8) with ids drawn; boxes are divided by scale_to_original."""
    from PIL import Image, ImageDraw, ImageFont

    count, height, width = frames.shape[:3]
    size = max(8, round(14 * max(width, height) / 336))
    font = ImageFont.load_default(size=size)
    sx, sy = scale_to_original
    out = np.empty_like(frames)
    for k in range(count):
        image = Image.fromarray(frames[k])
        draw = ImageDraw.Draw(image)
        for instance_id in sorted(tracks):
            box = tracks[instance_id].get(int(frame_ids[k]))
            if box is None:
                continue
            cx = (box[0] + box[2]) / 2 / sx
            cy = (box[1] + box[3]) / 2 / sy
            draw.text((cx, cy), str(instance_id), fill=(255, 0, 0), font=font, anchor="mm",
                      stroke_width=1, stroke_fill=(255, 255, 255))
        out[k] = np.asarray(image)
    return out
