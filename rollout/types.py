"""What travels from the rollout side to the learner.

The learner never re-derives model inputs: the exact prompt token ids and video tensors the rollout
engine generated from go with every completion, so rollout and training see identical frames and
identical token sequences (a mismatch here is the classic source of log-prob drift and of
"video features and video tokens do not match" errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch


@dataclass
class PromptInputs:
    """One processed multimodal prompt, exactly as the engine consumed it."""

    sample_id: str
    """Id of the GroundingSample the prompt was built from."""
    input_ids: torch.Tensor
    """[prompt_len] int64: chat template applied, video placeholder tokens expanded."""
    pixel_values_videos: torch.Tensor
    """[num_patches, patch_dim] float: the processor's output for this prompt's video."""
    video_grid_thw: torch.Tensor
    """[1, 3] int64: temporal, height, width patch grid of the video."""
    second_per_grid_ts: Optional[float]
    """Seconds per temporal grid step (needed for Qwen2.5-VL's time-aligned mRoPE)."""
    frame_timestamps: list[float]
    """Seconds of each sampled frame in the original video."""
    frame_size: tuple[int, int]
    """(width, height) of the frames as the model sees them."""
    scale_to_original: tuple[float, float]
    """(sx, sy): multiply model-frame pixels by these to get original-video pixels."""
    task: str = "stvg-o1"
    """Output format the instruction asked for: stvg-o1, stvg-r1 or vtg."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Completion:
    """One sampled answer to a prompt."""

    prompt_index: int
    """Index into the batch of PromptInputs this completion answers."""
    group_id: str
    """Completions that share a group id form one GRPO group (never grouped by prompt tokens)."""
    token_ids: list[int]
    text: str
    logprobs: list[float]
    """Per-token log-probs under the policy that sampled it (same length as token_ids)."""
    finish_reason: str
    """'stop' (end-of-sequence token) or 'length' (hit max_new_tokens)."""
    policy_version: int
    """Version of the weights that generated it (0 = initial weights)."""


@dataclass
class SkippedPrompt:
    """A prompt left out of a batch because its video could not be used (data.on_bad_video=skip)."""

    sample_id: str
    video: str
    problem: str
    """What is wrong with the file (infra.errors.VideoError.problem)."""


@dataclass
class RolloutBatch:
    prompts: list[PromptInputs]
    completions: list[Completion]
    tokens_per_second: float = 0.0
    skipped: list[SkippedPrompt] = field(default_factory=list)
    """Samples asked for but left out (their video is damaged, truncated or missing), when the
    caller asked the pool to skip them; completions' prompt_index counts only the prompts kept."""
    timing: dict[str, float] = field(default_factory=dict)
    """Seconds the workers spent, summed over their calls: `prompt_s` (videos to PromptInputs) and
    `generate_s` (the engine); the rest of the call's wall time is dispatch and transfer."""

    def answers_by_sample(self) -> dict[str, tuple[PromptInputs, list[str]]]:
        """Sample id -> (its prompt, its completions' texts), for the samples kept (a skipped one has
        no entry). Callers holding the samples they asked for look answers up by id, since
        prompt_index counts only the prompts kept."""
        answers = {p.sample_id: (p, []) for p in self.prompts}
        for completion in self.completions:
            answers[self.prompts[completion.prompt_index].sample_id][1].append(completion.text)
        return answers
