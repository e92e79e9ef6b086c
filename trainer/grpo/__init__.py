"""GRPO as pure tensor functions: advantages, clipped loss, KL, filters, and their config.

Nothing here logs, touches a model or a process group; every function returns its metrics.
"""

from trainer.grpo.advantages import compute_advantages, group_indices
from trainer.grpo.config import GRPOConfig
from trainer.grpo.filters import overlong_penalty, zero_variance_mask
from trainer.grpo.kl import kl_estimate, kl_reward_penalty
from trainer.grpo.losses import LossNorm, aggregate, masked_mean, policy_loss

__all__ = [
    "GRPOConfig", "LossNorm", "aggregate", "compute_advantages", "group_indices", "kl_estimate",
    "kl_reward_penalty", "masked_mean", "overlong_penalty", "policy_loss", "zero_variance_mask",
]
