"""Frames back from a prompt's processed video: what the model actually saw, as uint8 RGB.

Qwen2.5-VL's processor cuts the [T, H, W, 3] frames into 14x14 patches, two frames per temporal
step, rows ordered (step, block row, block col, 2x2 merge row, merge col) and columns (channel,
frame of the step, y, x), each value normalised with CLIP's mean/std. This inverts that, written
from the layout (independent of the processor code), so tests can look at pixels.
"""

from __future__ import annotations

import numpy as np

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])
PATCH, MERGE, TEMPORAL = 14, 2, 2


def decode_frames(pixel_values_videos, video_grid_thw) -> np.ndarray:
    """[T, H, W, 3] uint8 frames of one video from its processed patches."""
    values = np.asarray(pixel_values_videos, dtype=np.float64)
    steps, rows, cols = (int(v) for v in np.asarray(video_grid_thw).reshape(-1)[:3])
    grid = values.reshape(steps, rows // MERGE, cols // MERGE, MERGE, MERGE, 3, TEMPORAL, PATCH, PATCH)
    # -> (step, frame of step, block row, merge row, y, block col, merge col, x, channel)
    frames = grid.transpose(0, 6, 1, 3, 7, 2, 4, 8, 5).reshape(steps * TEMPORAL, rows * PATCH, cols * PATCH, 3)
    return np.clip(np.rint((frames * CLIP_STD + CLIP_MEAN) * 255.0), 0, 255).astype(np.uint8)


def prompt_frames(prompt) -> np.ndarray:
    """The frames of a PromptInputs (its pixel_values_videos and grid)."""
    return decode_frames(prompt.pixel_values_videos.numpy(), prompt.video_grid_thw.numpy())
