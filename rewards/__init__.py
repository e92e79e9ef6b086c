"""Reward functions, parsers and evaluation metrics for spatio-temporal grounding.

Public API (docs/rewards.md, docs/metrics.md):
    TASKS, TERMS, DEFAULT_WEIGHTS       task names, term names in order, default weights per task
    score_batch(task, completions, targets, weights=None) -> list[RewardResult]
    validate_target(task, target)      raises TargetError naming the bad field
    rewards.targets.build_target, rewards.predictions.completion_to_prediction,
    rewards.metrics.evaluate
"""

from rewards.schema import DEFAULT_WEIGHTS, TASKS, TERMS, TargetError, validate_target
from rewards.scoring import RewardResult, score_batch

__all__ = ["TASKS", "TERMS", "DEFAULT_WEIGHTS", "RewardResult", "score_batch", "validate_target", "TargetError"]
