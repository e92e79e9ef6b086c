"""Rollouts drawn as frame strips for MLflow: the ground truth (the sample's own boxes on the frames
the model saw, only inside the GT span), the prediction and the think boxes (what `stvg score` and
the rewards read from the answer), both spans in seconds."""

from __future__ import annotations

import logging
from typing import Sequence

from infra.data.sample import GroundingSample
from infra.data.video import SampledFrames, sample_frames
from infra.viz import draw_rollout_strip
from rewards.frames import nearest_frame
from rewards.parsing import parse_stvg_o1
from rewards.predictions import completion_to_prediction
from rollout.config import RolloutConfig
from rollout.types import RolloutBatch

log = logging.getLogger("stvg.train")


def gt_boxes(sample: GroundingSample, frames: SampledFrames) -> list:
    """The ground-truth box on each sampled frame inside the GT span, in the frames' pixels: the
    sample's box of that frame (or of the nearest annotated frame of the span); None elsewhere."""
    low, high = sample.span_frames
    annotated = sorted(f for f in sample.boxes if low <= f < high)
    sx, sy = frames.scale_to_original
    out = []
    for fid in frames.frame_ids.tolist():
        nearest = nearest_frame(int(fid), annotated) if low <= fid < high else None
        box = sample.boxes[nearest] if nearest is not None else None
        out.append(None if box is None else (box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy))
    return out


def _answer(task: str, text: str, sample_id: str):
    """(predicted boxes [[t, x1, y1, x2, y2]], think boxes, predicted span) in seconds and the
    model's frame pixels, the span as `stvg score` reads the answer (rewards.predictions)."""
    prediction = completion_to_prediction(task, text, sample_id)  # scale 1: the model's own pixels
    if prediction is None:
        return None, None, None
    span = (prediction["t_start"], prediction["t_end"])
    if task != "stvg-o1":
        return None, None, span
    think = [[i, *box] for i, box in parse_stvg_o1(text).think]
    return prediction["boxes"] or None, think or None, span


def draw_rollouts(batch: RolloutBatch, rewards: Sequence[float], samples: Sequence[GroundingSample],
                  rollout: RolloutConfig, task: str, count: int):
    """Strips of the first completion of the first `count` prompts. Videos are read through this
    node's video cache (learner rank 0 may run on a node that has not decoded them yet)."""
    from rollout.video_cache import VideoCache

    videos = VideoCache(rollout.video_cache_dir, rollout.video_cache_bytes)
    by_id = {s.id: s for s in samples}
    images, seen = [], set()
    for index, completion in enumerate(batch.completions):
        prompt = batch.prompts[completion.prompt_index]
        if completion.prompt_index in seen or len(images) >= count:
            continue
        sample = by_id[prompt.sample_id]
        seen.add(completion.prompt_index)
        # The same sampling recipe the rollout used, so boxes land on the frames the model saw.
        frames = sample_frames(videos.local_path(sample.video), fps=rollout.fps, max_frames=rollout.max_frames,
                               max_long_side=rollout.max_long_side, size_multiple=28)
        pred, think, pred_span = _answer(task, completion.text, sample.id)
        images.append(draw_rollout_strip(
            frames.frames, frames.timestamps, gt_boxes(sample, frames) if sample.boxes else None, pred, think,
            caption=f"{sample.query} [{sample.id}]", gt_span=sample.span_seconds, pred_span=pred_span,
            reward=rewards[index]))
    return images


def log_reward_curve(tracker) -> None:
    """The whole run's reward curve (resumed parts included, read back from MLflow), as a PNG."""
    from infra.viz import plot_reward_curve

    def history(name: str) -> list[tuple[int, float]]:
        points = {m.step: m.value for m in tracker.client.get_metric_history(tracker.run_id, name)}
        return sorted(points.items())  # a step run again after a resume counts once, latest value

    try:
        rewards = history("reward/mean")
        evals = {name: history(name) for name in ("eval/m_tIoU", "eval/m_vIoU")}
        image = plot_reward_curve([s for s, _ in rewards], [r for _, r in rewards],
                                  {k: v for k, v in evals.items() if v})
    except Exception as err:  # noqa: BLE001 - best effort, like every picture
        log.warning("could not plot the reward curve: %s", err)
        return
    tracker.log_image(image, rewards[-1][0] if rewards else 0, key="plots", suffix="reward-curve")
