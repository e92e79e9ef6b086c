"""KL to the frozen reference policy, estimated per token from sampled tokens (Schulman's k1/k2/k3)."""

from __future__ import annotations

import torch

from infra.errors import ConfigError
from trainer.grpo.config import KL_ESTIMATORS

K3_CLAMP = 10.0
"""k3 is clamped to [-10, 10] (as verl does): one token with a huge log-ratio must not blow up a step."""


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, estimator: str = "k3") -> torch.Tensor:
    """Per-token estimate of KL(policy || reference) at the sampled tokens.

    Shapes: logp, ref_logp [B, T] -> [B, T]. With d = logp - ref_logp:
    - k1 = d                        (unbiased, can be negative, high variance)
    - k2 = d^2 / 2                  (biased, low variance)
    - k3 = exp(-d) - (-d) - 1 = exp(ref - logp) - (ref - logp) - 1   (unbiased, >= 0)
    Gradients flow through logp (ref_logp is a constant).
    """
    if estimator not in KL_ESTIMATORS:
        raise ConfigError(f"KL estimator {estimator!r} is not one of {', '.join(KL_ESTIMATORS)}")
    d = logp - ref_logp
    if estimator == "k1":
        return d
    if estimator == "k2":
        return 0.5 * d.square()
    neg = -d
    return (torch.exp(neg) - neg - 1.0).clamp(min=-K3_CLAMP, max=K3_CLAMP)


def kl_reward_penalty(logp: torch.Tensor, ref_logp: torch.Tensor, mask: torch.Tensor,
                      coef: float, estimator: str = "k3") -> torch.Tensor:
    """What kl_mode="reward" subtracts from each completion's reward: coef * sum_t KL_t.

    Shapes: logp, ref_logp, mask [B, T] -> [B] float32 (no gradient). verl's in-reward KL subtracts
    coef * KL_t from every token's reward; for an outcome-reward GRPO group that adds up to this sum.
    """
    with torch.no_grad():
        kl = kl_estimate(logp.float(), ref_logp.float(), estimator)
        return coef * (kl * mask).sum(dim=-1)
