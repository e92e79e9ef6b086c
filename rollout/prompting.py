"""From a GroundingSample to the PromptInputs an engine consumes.

Frames are sampled here (infra.data.video.sample_frames at `fps`, at most `max_frames`, long side at
most `max_long_side`, sides rounded to the family's multiple so the processor never resizes), the
instruction states the frame times, and the model family runs its processor. In order:

    frames  (sampled here; or a temporal view of them, options.view; or given by the caller, `frames`)
    -> STVG-R1 ids drawn (task stvg-r1: rollout.visual_prompt, from the sample's tracks)
    -> curriculum mask (options.mask: frames outside the GT span blacked out, VideoTG-R1)
    -> instruction (the task's in the rollout.instruction wording, with options.query in place of the
       sample's query; or options.instruction)
    -> processor

so the PromptInputs (and the learner, which never re-processes the video) hold exactly the pixels
the model saw. The same sample, settings and options always give the same ids and pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence

import numpy as np

from infra.data.sample import GroundingSample
from infra.errors import DataError
from rollout.curriculum import FrameMask
from rollout.prompts import Instruction, build_instruction, frames_line


@dataclass(frozen=True)
class PromptSettings:
    """The knobs of prompt building (a subset of RolloutConfig)."""

    task: str = "stvg-o1"
    fps: float = 2.0
    max_frames: Optional[int] = 64
    max_long_side: int = 336
    max_prompt_tokens: int = 4096
    instruction: str = "paper"
    """rollout.instruction: paper, compact, or a template's text (rollout.prompts)."""

    @classmethod
    def from_config(cls, config: Any, task: Optional[str] = None) -> "PromptSettings":
        return cls(task=task or config.task, fps=config.fps, max_frames=config.max_frames,
                   max_long_side=config.max_long_side, max_prompt_tokens=config.max_prompt_tokens,
                   instruction=config.instruction)


VIEWS = ("original", "reversed", "shifted")


@dataclass(frozen=True)
class PromptOptions:
    """Per-prompt changes to the default prompt of a sample (every field optional)."""

    query: Optional[str] = None
    """Put this text in the task's instruction instead of the sample's query (e.g. a sub-query)."""
    instruction: Optional[str] = None
    """Replace the task's instruction by this text (e.g. a reflection question); the line stating
    the frames and their times is kept in front of it, and the video goes first."""
    mask: Optional[FrameMask] = None
    """Curriculum masking to apply to the frames (after the ids are drawn)."""
    view: str = "original"
    """Temporal view of the sampled frames (rollout.zero_shot): original, reversed or shifted. The
    instruction states the view's presented times."""

    def __post_init__(self):
        if self.view not in VIEWS:
            raise ValueError(f"view {self.view!r} is not known; choose one of {VIEWS}")
        if self.mask is not None and self.view != "original":
            raise ValueError("a curriculum mask applies to the original view only")


class FrameSource(Protocol):
    """Frames to prompt with: infra.data.video.SampledFrames and rollout.zero_shot.TemporalView fit."""

    frames: np.ndarray
    """[T, H, W, 3] uint8, in the order shown."""
    timestamps: np.ndarray
    """[T] seconds the prompt states for each frame (presented times for an augmented view)."""
    frame_ids: np.ndarray
    """[T] video frame id of each frame (where the STVG-R1 ids are looked up)."""
    frame_size: tuple[int, int]
    scale_to_original: tuple[float, float]
    video_fps: float


def sample_prompt_frames(video: str, sample: GroundingSample, settings: PromptSettings, size_multiple: int,
                         view: str = "original") -> FrameSource:
    """The frames build_prompt_inputs uses for `sample` from the local `video` file."""
    from infra.data.video import sample_frames

    options = dict(fps=settings.fps, max_frames=settings.max_frames, max_long_side=settings.max_long_side,
                   size_multiple=size_multiple)
    if view == "original":
        return sample_frames(video, **options)
    from rollout.zero_shot import sample_views

    return sample_views(video, (view,), duration=sample.duration or None, **options)[0]


def build_prompt_inputs(sample: GroundingSample, *, family: Any, processor: Any, settings: PromptSettings,
                        video_path: Optional[str] = None, keep_frames: bool = False,
                        options: Optional[PromptOptions] = None, frames: Optional[FrameSource] = None) -> Any:
    """PromptInputs for `sample`. `video_path` overrides `sample.video` (a local copy of an s3://
    video); `keep_frames` leaves the uint8 frames in `extra['frames']` for engines that need them;
    `options` changes the prompt (PromptOptions); `frames` are frames the caller sampled itself
    (then `options.view` must be original: the caller made the view)."""
    options = options or PromptOptions()
    if frames is None:
        frames = sample_prompt_frames(video_path or sample.video, sample, settings, family.frame_multiple,
                                      options.view)
    elif options.view != "original":
        raise ValueError("give either frames or options.view, not both")
    pixels = np.asarray(frames.frames)
    frame_ids = [int(i) for i in np.asarray(frames.frame_ids)]
    timestamps = [float(t) for t in np.asarray(frames.timestamps)]
    if settings.task == "stvg-r1":
        if not sample.tracks:
            raise DataError(f"sample {sample.id!r} has no candidate tracks; task stvg-r1 draws every candidate's "
                            "id on the frames: set data.tracks (a tracks file, docs/data.md) or data.tracker "
                            "(colour-blobs, yolo) so the run tracks the videos once")
        from rollout.visual_prompt import draw_instance_ids

        pixels = draw_instance_ids(pixels, frame_ids, sample.tracks, frames.scale_to_original,
                                   video_fps=frames.video_fps or None)
    extra: dict[str, Any] = {"frame_ids": frame_ids, "video": sample.video}
    if options.mask is not None:
        masked = options.mask.indices(timestamps, sample.span_seconds, sample.id)
        pixels = pixels.copy()
        pixels[masked] = 0
        extra["masked_frames"] = [int(i) for i in masked]
    if options.view != "original":
        extra["view"] = options.view
    instruction = _instruction(sample, settings, options, timestamps, frames.frame_size)
    prompt = family.build_prompt(
        processor, sample_id=sample.id, frames=pixels, timestamps=timestamps, instruction=instruction,
        task=settings.task, scale_to_original=frames.scale_to_original,
        max_prompt_tokens=settings.max_prompt_tokens, extra=extra)
    if keep_frames:
        prompt.extra["frames"] = pixels
    return prompt


def _instruction(sample: GroundingSample, settings: PromptSettings, options: PromptOptions,
                 timestamps: Sequence[float], frame_size: tuple[int, int]) -> Instruction:
    if options.instruction is not None:
        head = frames_line(timestamps, frame_size, settings.instruction)
        return Instruction(f"{head}\n{options.instruction}", True)
    return build_instruction(settings.task, options.query if options.query is not None else sample.query,
                             timestamps, frame_size, settings.instruction)
