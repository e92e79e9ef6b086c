"""TrainItem (one completion to learn from) and its collation into a right-padded micro-batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from rollout.types import Completion, PromptInputs

VIDEO_TYPE = 2  # mm_token_type_ids: text 0, image 1, video 2 (transformers' Qwen2/2.5-VL convention)


@dataclass
class TrainItem:
    """One completion with everything the learner needs about it."""

    prompt: PromptInputs
    """The processed prompt exactly as the rollout engine consumed it."""
    completion: Completion
    """The sampled tokens (and the engine's per-token log-probs, used when old_logprobs=rollout)."""
    advantage: float
    """Group-relative advantage (trainer.grpo.compute_advantages). With kl_mode=reward the learner
    recomputes it from `reward` after subtracting the KL penalty."""
    token_advantages: Optional[list[float]] = None
    """One advantage per completion token (grpo.credit=box); None: `advantage` on every token."""
    reward: Optional[float] = None
    """Scalar reward; required only with kl_mode=reward."""
    is_padding: bool = False
    """A copy that only keeps ranks in lockstep (ZeRO-3 forwards are collective): it runs forward
    and backward but weighs nothing in the loss, the counts and the metrics."""


@dataclass
class MicroBatch:
    """Model inputs for prompt + completion rows, right-padded, with one video per distinct prompt."""

    input_ids: torch.Tensor
    """[B, L] long: prompt ids then completion ids, then pad."""
    attention_mask: torch.Tensor
    """[B, L] long."""
    mm_token_type_ids: torch.Tensor
    """[B, L] int32: 2 at video placeholder tokens (drives the model's mRoPE positions)."""
    pixel_values_videos: torch.Tensor
    """[P, D]: the distinct prompts' videos, concatenated (a prompt shared by several rows once)."""
    video_grid_thw: torch.Tensor
    """[U, 3] long: one row per distinct video."""
    second_per_grid_ts: torch.Tensor
    """[U] float: seconds per temporal grid step of each distinct video."""
    video_index: torch.Tensor
    """[B] long: which distinct video row b uses."""
    completion_ids: torch.Tensor
    """[B, T] long: completion tokens, 0 past each row's length."""
    completion_mask: torch.Tensor
    """[B, T] float: 1 at real completion tokens of real (non-padding) items."""
    token_rows: torch.Tensor
    """[N] long: row of every real completion token (N = sum of completion lengths)."""
    token_cols: torch.Tensor
    """[N] long: its index inside the completion."""
    logit_positions: torch.Tensor
    """[N] long: sequence position whose logits predict that token (prompt_len + t - 1)."""
    advantages: torch.Tensor
    """[B] float32, or [B, T] when some item carries token_advantages (the others' rows repeat their
    advantage; 0 past each row's length)."""

    def to(self, device: torch.device | str) -> "MicroBatch":
        moved = {name: getattr(self, name).to(device) for name in self.__dataclass_fields__}
        return MicroBatch(**moved)


def collate(items: Sequence[TrainItem], pad_token_id: int, video_token_id: int) -> MicroBatch:
    """Right-padded model inputs for `items`; prompts shared by object identity are encoded once."""
    if not items:
        raise ValueError("collate needs at least one item")
    distinct: dict[int, int] = {}
    prompts: list[PromptInputs] = []
    video_index = []
    for item in items:
        key = id(item.prompt)
        if key not in distinct:
            distinct[key] = len(prompts)
            prompts.append(item.prompt)
        video_index.append(distinct[key])

    lengths = [item.prompt.input_ids.numel() + len(item.completion.token_ids) for item in items]
    width = max(lengths)
    comp_width = max(max(len(item.completion.token_ids) for item in items), 1)
    batch = len(items)
    input_ids = torch.full((batch, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((batch, width), dtype=torch.long)
    completion_ids = torch.zeros((batch, comp_width), dtype=torch.long)
    completion_mask = torch.zeros((batch, comp_width), dtype=torch.float32)
    mm_token_type_ids = torch.zeros((batch, width), dtype=torch.int32)
    rows, cols, positions = [], [], []
    for b, item in enumerate(items):
        prompt_ids = item.prompt.input_ids.long().reshape(-1)
        tokens = torch.as_tensor(list(item.completion.token_ids), dtype=torch.long)
        n_prompt, n_comp = prompt_ids.numel(), tokens.numel()
        if bool((tokens == video_token_id).any()):
            raise ValueError(f"a completion of sample {item.prompt.sample_id!r} contains the video placeholder "
                             f"token {video_token_id}; generation must block vision special tokens")
        mm_token_type_ids[b, :n_prompt] = (prompt_ids == video_token_id).to(torch.int32) * VIDEO_TYPE
        input_ids[b, :n_prompt] = prompt_ids
        input_ids[b, n_prompt:n_prompt + n_comp] = tokens
        attention_mask[b, :n_prompt + n_comp] = 1
        completion_ids[b, :n_comp] = tokens
        if not item.is_padding:
            completion_mask[b, :n_comp] = 1.0
        rows.append(torch.full((n_comp,), b, dtype=torch.long))
        cols.append(torch.arange(n_comp))
        positions.append(torch.arange(n_comp) + n_prompt - 1)
    return MicroBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        mm_token_type_ids=mm_token_type_ids,
        pixel_values_videos=torch.cat([p.pixel_values_videos for p in prompts]),
        video_grid_thw=torch.cat([p.video_grid_thw.reshape(-1, 3).long() for p in prompts]),
        second_per_grid_ts=torch.tensor([float(p.second_per_grid_ts or 1.0) for p in prompts]),
        video_index=torch.tensor(video_index, dtype=torch.long),
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        token_rows=torch.cat(rows),
        token_cols=torch.cat(cols),
        logit_positions=torch.cat(positions),
        advantages=_advantages(items, comp_width),
    )


def _advantages(items: Sequence[TrainItem], width: int) -> torch.Tensor:
    if all(item.token_advantages is None for item in items):
        return torch.tensor([float(item.advantage) for item in items], dtype=torch.float32)
    out = torch.zeros((len(items), width), dtype=torch.float32)
    for b, item in enumerate(items):
        n = len(item.completion.token_ids)
        if item.token_advantages is None:
            out[b, :n] = float(item.advantage)
        elif len(item.token_advantages) != n:
            raise ValueError(f"item {b} has {len(item.token_advantages)} token advantages for {n} completion tokens")
        else:
            out[b, :n] = torch.tensor(item.token_advantages, dtype=torch.float32)
    return out
