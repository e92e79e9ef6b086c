"""Group-relative advantages (outcome rewards, one scalar per completion).

Completions are grouped by an explicit per-sample group id (Completion.group_id), never by
comparing prompt tokens: two prompts with the same text over same-shaped videos must stay apart.
"""

from __future__ import annotations

from typing import Hashable, Sequence

import torch

from infra.errors import ConfigError
from trainer.grpo.config import ADVANTAGE_ESTIMATORS


def group_indices(group_ids: Sequence[Hashable]) -> list[list[int]]:
    """Positions of each group, groups in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for i, gid in enumerate(group_ids):
        groups.setdefault(gid, []).append(i)
    return list(groups.values())


def compute_advantages(rewards: torch.Tensor, group_ids: Sequence[Hashable], estimator: str = "grpo",
                       std_eps: float = 1e-6) -> tuple[torch.Tensor, dict[str, float]]:
    """Advantage of every completion relative to its group.

    Shapes: rewards [N] float; group_ids length N; returns advantages [N] float32.

    For a group with rewards r_1..r_G (G >= 2), mean m = sum(r) / G:
    - "grpo":    A_i = (r_i - m) / (s + std_eps), s = sqrt(sum((r - m)^2) / (G - 1)) (sample std,
                 as torch.std, verl, TRL and OpenRLHF compute it);
    - "dr_grpo": A_i = r_i - m (Dr. GRPO: no division by the std);
    - "rloo":    A_i = r_i - sum_{j != i} r_j / (G - 1) = G / (G - 1) * (r_i - m).
    A group of size 1 has no baseline: its advantage is 0.
    """
    if estimator not in ADVANTAGE_ESTIMATORS:
        raise ConfigError(f"advantage estimator {estimator!r} is not one of {', '.join(ADVANTAGE_ESTIMATORS)}")
    if rewards.ndim != 1 or rewards.shape[0] != len(group_ids):
        raise ValueError(f"rewards must be [N] with N = len(group_ids) = {len(group_ids)}, got {tuple(rewards.shape)}")
    rewards = rewards.to(torch.float64)  # group statistics in double; cast once at the end
    advantages = torch.zeros_like(rewards)
    singletons = 0
    for idx in group_indices(group_ids):
        if len(idx) == 1:
            singletons += 1
            continue
        r = rewards[idx]
        centred = r - r.mean()
        if estimator == "grpo":
            advantages[idx] = centred / (r.std(unbiased=True) + std_eps)
        elif estimator == "dr_grpo":
            advantages[idx] = centred
        else:  # rloo
            g = len(idx)
            advantages[idx] = centred * g / (g - 1)
    metrics = {
        "advantage_mean": float(advantages.mean()) if len(advantages) else 0.0,
        "advantage_abs_mean": float(advantages.abs().mean()) if len(advantages) else 0.0,
        "groups_singleton": float(singletons),
    }
    return advantages.to(torch.float32), metrics
