"""Experience filters and reward shaping applied before advantages (DAPO-style)."""

from __future__ import annotations

from typing import Hashable, Sequence

import torch

from trainer.grpo.advantages import group_indices


def zero_variance_mask(rewards: torch.Tensor, group_ids: Sequence[Hashable],
                       atol: float = 1e-9) -> tuple[torch.Tensor, dict[str, float]]:
    """Which completions to keep: groups whose rewards are all equal (max - min <= atol) are dropped.

    Shapes: rewards [N]; returns keep [N] bool. A group of size 1 counts as zero-variance (it has no
    baseline, its advantage is 0). Metrics: groups, groups_zero_variance, samples_kept.
    """
    keep = torch.ones(rewards.shape[0], dtype=torch.bool)
    groups = group_indices(group_ids)
    dropped = 0
    for idx in groups:
        r = rewards[idx]
        if float(r.max() - r.min()) <= atol:
            keep[idx] = False
            dropped += 1
    metrics = {"groups": float(len(groups)), "groups_zero_variance": float(dropped),
               "samples_kept": float(keep.sum())}
    return keep, metrics


def overlong_penalty(lengths: torch.Tensor, max_len: int, buffer_len: int, factor: float = 1.0) -> torch.Tensor:
    """DAPO soft overlong punishment, to ADD to the reward (values are <= 0).

    Shapes: lengths [N] (completion tokens) -> [N] float32. With expected = max_len - buffer_len:
      0                                     if L <= expected
      -factor * (L - expected) / buffer_len if expected < L <= max_len
      -factor                               if L > max_len
    buffer_len 0 disables the penalty (all zeros).
    """
    lengths = lengths.to(torch.float32)
    if buffer_len <= 0:
        return torch.zeros_like(lengths)
    expected = max_len - buffer_len
    penalty = -factor * (lengths - expected).clamp(min=0.0) / buffer_len
    return penalty.clamp(min=-factor)
