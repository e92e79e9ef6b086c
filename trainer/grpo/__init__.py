"""GRPO as pure tensor functions: advantages, clipped loss, KL, filters, and their config.

Nothing here logs, touches a model or a process group; every function returns its metrics.
The names load on first use (PEP 562), so that reading a run config (trainer.grpo.config) does not
import torch: `stvg submit --dry-run` and the config checks stay instant.
"""

from infra.lazy import lazy_exports

_HOMES = {
    "compute_advantages": "advantages", "group_indices": "advantages", "GRPOConfig": "config",
    "overlong_penalty": "filters", "zero_variance_mask": "filters", "kl_estimate": "kl",
    "kl_reward_penalty": "kl", "LossNorm": "losses", "aggregate": "losses", "masked_mean": "losses",
    "policy_loss": "losses",
}
__all__ = sorted(_HOMES)

__getattr__ = lazy_exports(__name__, _HOMES)
