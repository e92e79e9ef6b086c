"""How long a prompt is: frames sampled, their size, the video grid and tokens, the text tokens.

Frames follow the rollout's sampling rule (infra.data.video: `fps`, at most `max_frames`, long side
at most `max_long_side`, sides rounded to patch x merge = 28 so the processor never resizes them),
and the Qwen2.5-VL video processor then makes a grid of (ceil(T / temporal_patch), H / patch,
W / patch) patches, one token per merge x merge patches: the same arithmetic `stvg train` checks on
every prompt (rollout/models/qwen2_5_vl.py). The processor's own min/max_pixels resizing is off
(`do_resize=False`), so those settings do not enter.

Text tokens are counted with the model's tokenizer and chat template when the plan has them
(`tiny`, a local folder); otherwise they are estimated as the pieces of Qwen2's pre-tokenizer split
(one per word, digit or punctuation run; special tokens one each), which undercounts words a
151k-token vocabulary splits further. The stand-in query below takes the sample's place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

from infra.plan.shapes import VisionShapes

PLAN_QUERY = ("the man in the dark suit who walks across the crowded room, stops beside the long table, "
              "picks up the phone and then talks to the woman standing near the window")
"""A long grounding query (29 words) standing in for the samples' queries."""


@dataclass(frozen=True)
class VideoAssumption:
    """The video a prompt is sized for: for real datasets the config does not say how long or how
    large the videos are."""

    width: int
    height: int
    seconds: float
    fps: Optional[float] = None
    """The video's own frame rate, when known (the sampler never goes above it)."""
    origin: str = "given"
    """Where the figures come from, for the report: given, synthetic data, or worst case."""


def assumed_video(cfg: Any, size: Optional[tuple[int, int]] = None, seconds: Optional[float] = None) -> VideoAssumption:
    """The video to plan for: what the flags give, else the synthetic generator's videos, else the
    worst case: square at rollout.max_long_side (the largest frame area the sampler makes) and 60 s
    long (120 frames at 2 fps, more than the default max_frames of 64)."""
    if size is not None or seconds is not None:
        width, height = size or (cfg.rollout.max_long_side, cfg.rollout.max_long_side)
        return VideoAssumption(width, height, seconds or 60.0)
    if cfg.data.source == "synthetic":
        from infra.data.synth import VIDEO_SECONDS

        d = cfg.data
        return VideoAssumption(d.synthetic_width, d.synthetic_height, VIDEO_SECONDS, d.synthetic_fps, "synthetic data")
    side = cfg.rollout.max_long_side
    return VideoAssumption(side, side, 60.0, None, "worst case")


@dataclass(frozen=True)
class PromptSize:
    frames: int
    frame_size: tuple[int, int]
    """(width, height) of the frames the model sees."""
    grid: tuple[int, int, int]
    """(T, H, W) patch grid of the video (the processor's video_grid_thw)."""
    video_tokens: int
    text_tokens: int
    """Everything but the video tokens: chat template, frame-times line, instruction with the query."""
    text_exact: bool
    """True when counted with the model's tokenizer, False when estimated."""

    @property
    def patches(self) -> int:
        t, h, w = self.grid
        return t * h * w

    @property
    def tokens(self) -> int:
        return self.video_tokens + self.text_tokens


def size_prompt(rollout: Any, vision: VisionShapes, video: VideoAssumption, tokenizer: Optional[Any] = None,
                task: Optional[str] = None) -> PromptSize:
    """The prompt `rollout` (a RolloutConfig) builds for `video`."""
    from infra.data.video import fit_size, sample_times

    times, _ = sample_times(0.0, video.seconds, min(rollout.fps, video.fps or rollout.fps), rollout.max_frames)
    width, height = fit_size(video.width, video.height, rollout.max_long_side, vision.patch * vision.merge)
    grid = (math.ceil(len(times) / vision.temporal_patch), height // vision.patch, width // vision.patch)
    video_tokens = grid[0] * grid[1] * grid[2] // (vision.merge * vision.merge)
    text, exact = _text_tokens(task or rollout.task, times, (width, height), tokenizer)
    return PromptSize(frames=len(times), frame_size=(width, height), grid=grid, video_tokens=video_tokens,
                      text_tokens=text, text_exact=exact)


def _text_tokens(task: str, times, frame_size: tuple[int, int], tokenizer: Optional[Any]) -> tuple[int, bool]:
    from rollout.models import get_family
    from rollout.prompts import build_instruction

    messages = get_family("qwen2_5_vl").messages(build_instruction(task, PLAN_QUERY, times, frame_size))
    if tokenizer is not None:
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text)["input_ids"]
        placeholders = ids.count(tokenizer.convert_tokens_to_ids("<|video_pad|>"))
        return len(ids) - placeholders, True
    return _estimate(messages), False


def _estimate(messages: list[dict]) -> int:
    """Pieces of Qwen2's pre-tokenizer split of the chat in Qwen's layout, special tokens one each,
    the video placeholder left out."""
    import jinja2
    import regex

    from rollout.models.tiny import CHAT_TEMPLATE, PRETOKENIZE_REGEX, SPECIAL_TOKENS

    text = jinja2.Environment().from_string(CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=True)
    specials = regex.compile("|".join(regex.escape(t) for t in SPECIAL_TOKENS))
    pieces = len(specials.findall(text)) - text.count("<|video_pad|>")
    splitter = regex.compile(PRETOKENIZE_REGEX)
    return pieces + sum(len(splitter.findall(chunk)) for chunk in specials.split(text))
