"""VideoTG-R1's curriculum: the videos of hard samples are partly masked early in training, less later.

VideoTG-R1 says only that it "dynamically masks the videos of hard-to-ground samples according to
the training steps". Its schedule, what it masks and its difficulty threshold are not public, so
the choices here are ours, all configurable:

- What is masked: whole frames OUTSIDE the ground-truth span [t_start, t_end] (inclusive), set to
  black. Frames inside the span are never touched, so the answer stays visible while the search
  space shrinks: a hard sample becomes an easier one with fewer distractor moments.
- How many: `share` of the frames outside the span, rounded half up (floor(share * n + 0.5)).
- Which: `order="farthest"` (default) masks the frames farthest from the span first (distance in
  seconds to the nearest span end; equal distances in random order), which keeps the context next
  to the boundaries and acts like cropping the video around the moment; `order="random"` picks them
  uniformly. Both are deterministic for a given rng seed.
- When: the share follows `masked_share(step, total_steps, schedule, start_share, end_share)`,
  from start_share at step 0 to end_share at total_steps (and after). Schedules, with progress
  p = clamp(step / total_steps, 0, 1):
    linear:  start + (end - start) * p
    cosine:  end + (start - end) * (1 + cos(pi * p)) / 2
    step:    `stages` equal stages (default 2), stage k = min(floor(p * stages), stages - 1)
             holding start + (end - start) * k / (stages - 1)
- Whom: only samples whose difficulty (trainer.curation) is >= `difficulty_threshold`; others,
  and samples without a difficulty score, are left alone.
Masking tells the model that black frames are not the answer; that is the intended easing, and it
disappears as the share goes to end_share (0 by default).

In training, the trainer holds a `CurriculumPlan` (config, run length, difficulty per sample) and
asks it each step for every prompt's `FrameMask`; the rollout worker applies that mask while
building the prompt (rollout.prompting), after the STVG-R1 ids are drawn and before the processor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from infra.config import check_choice, check_range

SCHEDULES = ("linear", "cosine", "step")
ORDERS = ("farthest", "random")


@dataclass
class CurriculumConfig:
    enabled: bool = False
    """Mask the videos of hard samples (VideoTG-R1's curriculum)."""
    schedule: str = "linear"
    """How the masked share decays over training: linear, cosine or step."""
    start_share: float = 0.5
    """Share of the frames outside the GT span masked at step 0."""
    end_share: float = 0.0
    """Share masked at the last step (and after)."""
    stages: int = 2
    """Number of equal stages of the step schedule."""
    order: str = "farthest"
    """Which outside frames go first: farthest (from the span) or random."""
    difficulty_threshold: float = 0.7
    """Samples with difficulty (1 - mean zero-shot tIoU) at or above this are masked."""
    seed: int = 0
    """Seed of the masking rng, mixed with the step and the sample id (curriculum_rng)."""

    def __post_init__(self):
        check_choice("curriculum.schedule", self.schedule, SCHEDULES)
        check_choice("curriculum.order", self.order, ORDERS)
        check_range("curriculum.start_share", self.start_share, 0.0, 1.0)
        check_range("curriculum.end_share", self.end_share, 0.0, 1.0)
        check_range("curriculum.stages", self.stages, 2)
        check_range("curriculum.difficulty_threshold", self.difficulty_threshold, 0.0, 1.0)


def masked_share(step: int, total_steps: int, schedule: str, start_share: float, end_share: float, *,
                 stages: int = 2) -> float:
    """Share of the outside-span frames to mask at `step` (see the module docstring)."""
    check_choice("curriculum.schedule", schedule, SCHEDULES)
    if total_steps <= 0:
        raise ValueError(f"total_steps must be > 0, got {total_steps}")
    p = min(max(step / total_steps, 0.0), 1.0)
    if schedule == "linear":
        return start_share + (end_share - start_share) * p
    if schedule == "cosine":
        return end_share + (start_share - end_share) * (1.0 + math.cos(math.pi * p)) / 2.0
    if stages < 2:
        raise ValueError(f"the step schedule needs stages >= 2, got {stages}")
    stage = min(int(math.floor(p * stages)), stages - 1)
    return start_share + (end_share - start_share) * stage / (stages - 1)


def frames_to_mask(timestamps: Sequence[float], span: tuple[float, float], share: float,
                   rng: np.random.Generator | int, order: str = "farthest") -> np.ndarray:
    """Sorted indices of the frames to black out (see the module docstring)."""
    check_choice("curriculum.order", order, ORDERS)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    times = np.asarray(timestamps, dtype=np.float64)
    start, end = span
    distance = np.where(times < start, start - times, times - end)
    outside = np.flatnonzero(distance > 0)
    count = int(math.floor(share * outside.size + 0.5 + 1e-9))  # the epsilon: 0.35 * 10 is 3.4999...
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    if order == "random":
        chosen = rng.choice(outside, size=count, replace=False)
    else:
        tie_break = rng.permutation(outside.size)
        ranked = np.lexsort((tie_break, -distance[outside]))  # farthest first, ties at random
        chosen = outside[ranked[:count]]
    return np.sort(chosen).astype(np.int64)


def mask_frames(frames: np.ndarray, timestamps: Sequence[float], span: tuple[float, float], share: float,
                rng: np.random.Generator | int, order: str = "farthest") -> np.ndarray:
    """A copy of `frames` [T, H, W, C] with `share` of the frames outside `span` (seconds,
    inclusive) set to 0; frames inside the span are unchanged."""
    if len(timestamps) != len(frames):
        raise ValueError(f"{len(timestamps)} timestamps for {len(frames)} frames")
    out = np.array(frames, copy=True)
    out[frames_to_mask(timestamps, span, share, rng, order)] = 0
    return out


def curriculum_rng(seed: int, step: int, sample_id: str) -> np.random.Generator:
    """The masking rng of one sample at one step: stable across processes and restarts (crc32 of
    the id, not Python's per-process salted hash), so a resumed run masks the same frames."""
    import zlib

    return np.random.default_rng([seed, step, zlib.crc32(sample_id.encode("utf-8"))])


def curriculum_frames(frames: np.ndarray, timestamps: Sequence[float], span: tuple[float, float],
                      difficulty: Optional[float], step: int, total_steps: int, cfg: CurriculumConfig,
                      rng: np.random.Generator | int) -> np.ndarray:
    """What the curriculum shows the model for one sample at `step`: the frames unchanged when the
    curriculum is off or the sample is not hard (difficulty None or < threshold), else masked."""
    if not cfg.enabled or difficulty is None or difficulty < cfg.difficulty_threshold:
        return frames
    share = masked_share(step, total_steps, cfg.schedule, cfg.start_share, cfg.end_share, stages=cfg.stages)
    return mask_frames(frames, timestamps, span, share, rng, cfg.order)


# ---- wiring: what the trainer decides per step, and what the rollout worker applies ---------------

@dataclass(frozen=True)
class FrameMask:
    """One sample's masking at one step, decided by the trainer (CurriculumPlan.mask_for) and applied
    by the rollout worker's prompt building, after the ids are drawn and before the processor, so
    the PromptInputs the learner trains on hold exactly the masked pixels the rollout saw."""

    share: float
    """Share of the frames outside the GT span to black out."""
    step: int
    """The GRPO step (seeds the rng with the sample id: the same frames on every process)."""
    order: str = "farthest"
    seed: int = 0

    def indices(self, timestamps: Sequence[float], span: tuple[float, float], sample_id: str) -> np.ndarray:
        """Sorted indices of the frames to black out, for frames at these forward-time `timestamps`."""
        return frames_to_mask(timestamps, span, self.share, curriculum_rng(self.seed, self.step, sample_id),
                              self.order)

    def apply(self, frames: np.ndarray, timestamps: Sequence[float], span: tuple[float, float],
              sample_id: str) -> np.ndarray:
        """A copy of `frames` with the chosen frames set to 0 (what curriculum_frames returns)."""
        if len(timestamps) != len(frames):
            raise ValueError(f"{len(timestamps)} timestamps for {len(frames)} frames")
        out = np.array(frames, copy=True)
        out[self.indices(timestamps, span, sample_id)] = 0
        return out


@dataclass(frozen=True)
class CurriculumPlan:
    """Everything the curriculum needs during training: its config, the run's length and the
    difficulty of every training sample (sample id -> score; missing = never masked)."""

    config: CurriculumConfig
    total_steps: int
    difficulty: dict

    def mask_for(self, sample_id: str, step: int) -> Optional[FrameMask]:
        """The masking of this sample at `step`, or None (curriculum off, sample not hard, nothing to
        mask): the same decision as curriculum_frames."""
        cfg = self.config
        difficulty = self.difficulty.get(sample_id)
        if not cfg.enabled or difficulty is None or difficulty < cfg.difficulty_threshold:
            return None
        share = masked_share(step, self.total_steps, cfg.schedule, cfg.start_share, cfg.end_share, stages=cfg.stages)
        return FrameMask(share, step, cfg.order, cfg.seed) if share > 0 else None
