"""From a GroundingSample to the PromptInputs an engine consumes.

Frames are sampled here (infra.data.video.sample_frames at `fps`, at most `max_frames`, long side at
most `max_long_side`, sides rounded to the family's multiple so the processor never resizes), the
STVG-R1 ids are drawn when the task asks for them, the instruction states the frame times, and the
model family runs its processor. The same sample and settings always give the same ids and pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from infra.data.sample import GroundingSample
from infra.errors import DataError
from rollout.prompts import build_instruction


@dataclass(frozen=True)
class PromptSettings:
    """The knobs of prompt building (a subset of RolloutConfig)."""

    task: str = "stvg-o1"
    fps: float = 2.0
    max_frames: Optional[int] = 64
    max_long_side: int = 336
    max_prompt_tokens: int = 4096

    @classmethod
    def from_config(cls, config: Any, task: Optional[str] = None) -> "PromptSettings":
        return cls(task=task or config.task, fps=config.fps, max_frames=config.max_frames,
                   max_long_side=config.max_long_side, max_prompt_tokens=config.max_prompt_tokens)


def build_prompt_inputs(sample: GroundingSample, *, family: Any, processor: Any, settings: PromptSettings,
                        video_path: Optional[str] = None, keep_frames: bool = False) -> Any:
    """PromptInputs for `sample`. `video_path` overrides `sample.video` (a local copy of an s3://
    video); `keep_frames` leaves the uint8 frames in `extra['frames']` for engines that need them."""
    from infra.data.video import sample_frames

    sampled = sample_frames(video_path or sample.video, fps=settings.fps, max_frames=settings.max_frames,
                            max_long_side=settings.max_long_side, size_multiple=family.frame_multiple)
    frames = sampled.frames
    if settings.task == "stvg-r1":
        if not sample.tracks:
            raise DataError(f"sample {sample.id!r} has no candidate tracks; task stvg-r1 draws every candidate's "
                            "id on the frames, so give the dataset a tracks file (see infra/data/tracks.py)")
        from rollout.markers import draw_instance_ids

        frames = draw_instance_ids(frames, sampled.frame_ids, sample.tracks, sampled.scale_to_original)
    timestamps = [float(t) for t in sampled.timestamps]
    instruction = build_instruction(settings.task, sample.query, timestamps, sampled.frame_size)
    extra: dict[str, Any] = {"frame_ids": [int(i) for i in sampled.frame_ids], "video": sample.video}
    prompt = family.build_prompt(
        processor, sample_id=sample.id, frames=frames, timestamps=timestamps, instruction=instruction,
        task=settings.task, scale_to_original=sampled.scale_to_original,
        max_prompt_tokens=settings.max_prompt_tokens, extra=extra)
    if keep_frames:
        prompt.extra["frames"] = frames
    return prompt
