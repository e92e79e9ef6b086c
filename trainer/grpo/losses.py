"""Clipped policy-gradient loss (PPO/GRPO, DAPO clip-higher, dual clip) and loss aggregation.

Aggregation takes its denominators from a LossNorm instead of the tensor it is given, so a step
split into micro-batches (and across ranks) sums to exactly the loss of the whole batch: the
learner all-reduces the token and sequence counts of the step first, then every micro-batch adds
sum(loss * mask) / global_denominator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from infra.errors import ConfigError
from trainer.grpo.config import LOSS_AGGREGATIONS

LOG_RATIO_CLAMP = 20.0
"""log(pi / pi_old) is clamped to +-20 before exp (as verl does) so one wild token cannot overflow."""


@dataclass(frozen=True)
class LossNorm:
    """Denominators of the loss for the WHOLE step (all micro-batches of all ranks)."""

    num_tokens: float
    """Completion tokens in the step (used by token-mean)."""
    num_seqs: float
    """Completions in the step (used by the seq-mean-* modes)."""
    max_len: float = 1.0
    """Constant per-sequence divisor of seq-mean-token-sum-norm (the generation limit)."""

    @staticmethod
    def of(mask: torch.Tensor, max_len: float = 1.0) -> "LossNorm":
        """The norm of a batch that is the whole step (mask [B, T])."""
        return LossNorm(num_tokens=float(mask.sum()), num_seqs=float(mask.shape[0]), max_len=float(max_len))


def aggregate(values: torch.Tensor, mask: torch.Tensor, mode: str, norm: LossNorm) -> torch.Tensor:
    """This batch's share of the step's aggregated loss.

    Shapes: values, mask [B, T] -> scalar. With m the mask and n_i = sum_t m_it:
    - token-mean:              sum_it v*m / norm.num_tokens
    - seq-mean-token-mean:     sum_i (sum_t v*m / n_i) / norm.num_seqs   (rows with n_i = 0 add 0)
    - seq-mean-token-sum-norm: sum_it v*m / (norm.max_len * norm.num_seqs)
    Summing this over a partition of the step's rows gives the value for the whole step.
    """
    mask = mask.to(values.dtype)
    if mode == "token-mean":
        return (values * mask).sum() / max(norm.num_tokens, 1.0)
    if mode == "seq-mean-token-mean":
        per_seq = (values * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)
        return per_seq.sum() / max(norm.num_seqs, 1.0)
    if mode == "seq-mean-token-sum-norm":
        return (values * mask).sum() / (norm.max_len * max(norm.num_seqs, 1.0))
    raise ConfigError(f"loss aggregation {mode!r} is not one of {', '.join(LOSS_AGGREGATIONS)}")


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    """Plain token mean for metrics (0 when the mask is empty)."""
    total = float(mask.sum())
    return float((values * mask).sum()) / total if total > 0 else 0.0


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                clip_low: float = 0.2, clip_high: float = 0.2, clip_ratio_c: Optional[float] = None,
                entropy: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Per-token clipped surrogate loss (to minimise) and its metrics.

    Shapes: logp, old_logp, mask [B, T]; advantages [B] (one per completion) or [B, T];
    entropy [B, T] or None. Returns loss [B, T] (aggregate it with `aggregate`) and metrics that
    are token means over the mask: clip_frac_low, clip_frac_high, clip_frac_dual, approx_kl_old,
    ratio_mean, entropy (if given).

    r = exp(clamp(logp - old_logp, +-20))
    L = max(-A * r, -A * clip(r, 1 - clip_low, 1 + clip_high))
    dual clip (clip_ratio_c = c > 1): where A < 0, L = min(L, -A * c)
    clip_frac_high counts tokens where the upper bound is active (A > 0, r > 1 + clip_high),
    clip_frac_low where the lower bound is (A < 0, r < 1 - clip_low). approx_kl_old is the k3
    estimate of KL(pi_old || pi) at the sampled tokens: exp(d) - d - 1 with d = logp - old_logp.
    """
    if advantages.ndim == 1:
        advantages = advantages.unsqueeze(-1)
    advantages = advantages.to(logp.dtype)
    log_ratio = (logp - old_logp).clamp(-LOG_RATIO_CLAMP, LOG_RATIO_CLAMP)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(unclipped, clipped)
    dual_active = torch.zeros_like(loss, dtype=torch.bool)
    if clip_ratio_c is not None:
        cap = -advantages * clip_ratio_c
        negative = (advantages < 0).expand_as(loss)
        dual_active = negative & (loss > cap)
        loss = torch.where(negative, torch.minimum(loss, cap), loss)

    with torch.no_grad():
        m = mask.to(torch.float32)
        pos = (advantages > 0).expand_as(ratio)
        neg = (advantages < 0).expand_as(ratio)
        high = (pos & (ratio > 1.0 + clip_high)).float()
        low = (neg & (ratio < 1.0 - clip_low)).float()
        d = log_ratio.float()
        metrics = {
            "clip_frac_low": masked_mean(low, m),
            "clip_frac_high": masked_mean(high, m),
            "clip_frac_dual": masked_mean(dual_active.float(), m),
            "approx_kl_old": masked_mean(torch.exp(d) - d - 1.0, m),
            "ratio_mean": masked_mean(ratio.float(), m),
        }
        if entropy is not None:
            metrics["entropy"] = masked_mean(entropy.float(), m)
    return loss, metrics
