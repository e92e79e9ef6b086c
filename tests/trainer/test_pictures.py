"""Rollout pictures for MLflow: drawn on the frames the model saw, for parseable and garbage answers."""

from __future__ import annotations

import numpy as np
import torch

from infra.data.synth import generate, load_synthetic
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


def test_a_garbage_answer_and_a_real_one_both_draw_a_strip_with_the_ground_truth_in_green(tmp_path):
    generate(tmp_path, 1, seed=5)
    sample = load_synthetic(tmp_path)[0]
    rollout = RolloutConfig(fps=0.5, max_frames=10, max_long_side=112)
    # 160x120 frames fit to long side 112 -> 112x84 (multiples of 28), as the rollout sampled them.
    start = int(np.ceil(sample.span_seconds[0]))
    answer = (f"<time> {start} - {start} </time> <think_bbox> {start}. [1, 1, 20, 20] </think_bbox> "
              f"<pred_bbox> {start}. [2, 2, 30, 30] </pred_bbox>")
    for text in ("complete garbage", answer):
        images = draw_rollouts(_batch(sample, (112, 84), [text]), [0.0], [sample], rollout, "stvg-o1", 4)
        assert len(images) == 1
        pixels = np.asarray(images[0].convert("RGB")).reshape(-1, 3).astype(int)
        green = (pixels[:, 1] > 150) & (pixels[:, 0] < 100) & (pixels[:, 2] < 100)
        assert green.sum() > 20  # the ground-truth tube (and its span bar) is drawn
