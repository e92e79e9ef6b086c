"""Rollout pictures for MLflow: drawn on the frames the model saw, for parseable and garbage answers,\nwith the ground truth only where the sample has it."""

from __future__ import annotations

import numpy as np
import torch

from infra.data.synth import generate, load_synthetic
from infra.data.video import sample_frames
from rollout.config import RolloutConfig
from rollout.types import Completion, PromptInputs, RolloutBatch
from trainer.pictures import draw_rollouts


def _batch(sample, frame_size, texts):
    prompt = PromptInputs(sample_id=sample.id, input_ids=torch.zeros(1, dtype=torch.long),
                          pixel_values_videos=torch.zeros(1, 1), video_grid_thw=torch.ones(1, 3, dtype=torch.long),
                          second_per_grid_ts=None, frame_timestamps=[], frame_size=frame_size,
                          scale_to_original=(1.0, 1.0))
    completions = [Completion(0, "g", [1], text, [0.0], "stop", 0) for text in texts]
    return RolloutBatch(prompts=[prompt], completions=completions)


def _panels(strip: np.ndarray, frames: np.ndarray) -> dict[int, tuple[int, int]]:
    """{frame index: top-left (y, x)} of the panels of a strip of `frames` ([T, H, W, 3]): panels sit
    6 px apart from x = 6 (infra.viz's layout) at the height where frame 0's top rows are found; each
    panel is the frame it differs least from (boxes drawn over it aside)."""
    _, h, w, _ = frames.shape
    band = np.lib.stride_tricks.sliding_window_view(strip[:, 6:6 + w], (6, w, 3))[:, 0, 0]
    rows = np.argwhere(np.all(band == frames[0][:6], axis=(1, 2, 3)))[:, 0]
    y = int(rows[0])
    found = {}
    for j in range((strip.shape[1] - 6) // (w + 6)):
        x = 6 + j * (w + 6)
        panel = strip[y:y + h, x:x + w].astype(int)
        diffs = [np.abs(panel - frame.astype(int)).mean() for frame in frames]
        found[int(np.argmin(diffs))] = (y, x)
    return found


def test_ground_truth_is_drawn_in_white_on_the_shown_frames_inside_the_gt_span_only(tmp_path):
    generate(tmp_path, 1, seed=5)
    sample = load_synthetic(tmp_path)[0]
    rollout = RolloutConfig(fps=0.5, max_frames=10, max_long_side=112)
    # 160x120 frames fit to long side 112 -> 112x84 (multiples of 28), as the rollout sampled them.
    frames = sample_frames(sample.video, fps=0.5, max_frames=10, max_long_side=112, size_multiple=28)
    start = int(np.ceil(sample.span_seconds[0]))
    answer = (f"<time> {start} - {start} </time> <think_bbox> {start}. [1, 1, 20, 20] </think_bbox> "
              f"<pred_bbox> {start}. [2, 2, 30, 30] </pred_bbox>")
    for text in ("complete garbage", answer):
        images = draw_rollouts(_batch(sample, (112, 84), [text]), [0.0], [sample], rollout, "stvg-o1", 4)
        assert len(images) == 1
        strip = np.asarray(images[0].convert("RGB"))
        panels = _panels(strip, frames.frames)
        assert sorted(panels) == [0, 2, 4, 6, 8]  # 10 frames 2 s apart, at most 6 shown: every other one
        for k, (y, x) in panels.items():
            t = frames.timestamps[k]
            panel = strip[y:y + 84, x:x + 112]
            white = np.all(panel == 255, axis=-1)
            inside = sample.span_seconds[0] <= t < sample.span_seconds[1]
            assert white.any() == inside, (t, sample.span_seconds)
            if inside:  # the box's left edge is the sample's box of that frame, in the frame's pixels
                x1 = round(sample.boxes[int(frames.frame_ids[k])][0] / frames.scale_to_original[0])
                assert white[:, x1].sum() > 5
