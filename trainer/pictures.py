"""Rollouts drawn as frame strips (ground truth, prediction, draft boxes) for MLflow."""

from __future__ import annotations

import logging
from typing import Sequence

from infra.data.sample import GroundingSample
from infra.data.video import sample_frames
from infra.viz import draw_rollout_strip
from rewards.parsing import parse_stvg_o1, parse_stvg_r1, parse_vtg
from rollout.config import RolloutConfig
from rollout.types import RolloutBatch
from trainer.experience import targets_for

log = logging.getLogger("stvg.train")


def _predicted(task: str, text: str):
    """(pred boxes [[t, x1, y1, x2, y2]], draft boxes, predicted span) in model-frame pixels."""
    if task == "stvg-o1":
        parsed = parse_stvg_o1(text)
        if parsed is None:
            return [], [], None
        return ([[i, *b] for i, b in parsed.pred], [[i, *b] for i, b in parsed.think],
                (parsed.t_start, parsed.t_end))
    parsed = parse_stvg_r1(text) if task == "stvg-r1" else parse_vtg(text)
    return [], [], None if parsed is None else (parsed.t_start, parsed.t_end)


def draw_rollouts(batch: RolloutBatch, rewards: Sequence[float], samples: Sequence[GroundingSample],
                  rollout: RolloutConfig, task: str, count: int):
    """Strips of the first completion of the first `count` prompts. Videos are read through this
    node's video cache (learner rank 0 may run on a node that has not decoded them yet)."""
    from rollout.video_cache import VideoCache

    videos = VideoCache(rollout.video_cache_dir, rollout.video_cache_bytes)
    by_id = {s.id: s for s in samples}
    targets = targets_for(batch, samples, task)
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
        target = targets[completion.prompt_index]
        pred, draft, pred_span = _predicted(task, completion.text)
        images.append(draw_rollout_strip(
            frames.frames, frames.timestamps, target.get("boxes"), pred or None, draft or None,
            caption=f"{sample.query} [{sample.id}]",
            gt_span=(target["t_start"], target["t_end"]), pred_span=pred_span, reward=rewards[index]))
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
