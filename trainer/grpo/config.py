"""GRPOConfig: every knob of the GRPO objective (advantages, clipped loss, KL, filters).

Defaults follow the STVG papers where they say something (STVG-o1: G = 8, advantage
(R - mean) / (std + 1e-6)) and otherwise the frameworks the papers trained with (verl for STVG-o1,
TRL 0.15 for STVG-R1): symmetric clip 0.2, a k3 KL penalty in the loss. The optimiser settings
(lr 1e-6, weight decay 1e-2) belong to the learner: see trainer.learner.config.LearnerConfig.
docs/learner.md writes out every formula.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from infra.config import check_choice, check_range
from infra.errors import ConfigError

ADVANTAGE_ESTIMATORS = ("grpo", "dr_grpo", "rloo")
LOSS_AGGREGATIONS = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")
KL_ESTIMATORS = ("k1", "k2", "k3")
KL_MODES = ("loss", "reward")
CREDITS = ("answer", "box")


@dataclass
class GRPOConfig:
    # --- groups and advantages ---
    group_size: int = 8
    """G: completions sampled per prompt (STVG-o1 and STVG-R1 both use 8)."""
    advantage_estimator: str = "grpo"
    """grpo: (r - mean_g) / (std_g + std_eps) with the sample std (ddof 1); dr_grpo: r - mean_g
    (no std, Dr. GRPO); rloo: r - mean of the other G-1 rewards. A group of one gets advantage 0."""
    std_eps: float = 1e-6
    """Epsilon added to the group std in the grpo estimator (STVG-o1 writes 1e-6)."""
    credit: str = "answer"
    """answer: every token of an answer takes the answer's advantage (the papers' GRPO). box
    (STVG-o1 only): the tokens of each box take the advantage of that box's own score (GIoU - L1)
    against the same box in the group's other answers; the rest keep the answer's
    (trainer/grpo/credit.py, docs/learner.md)."""

    # --- clipped policy loss ---
    clip_ratio_low: float = 0.2
    """Ratio clipped below at 1 - clip_ratio_low (PPO epsilon)."""
    clip_ratio_high: float = 0.2
    """Ratio clipped above at 1 + clip_ratio_high. 0.2 reproduces the papers' frameworks (verl, TRL
    0.15); DAPO's clip-higher uses 0.28. The ratio leaves 1 after the first optimizer step of a
    step (ppo_mini_batch_size, ppo_epochs) or with rollout log-probs of a stale policy; with one
    update per step and recomputed old log-probs it is exactly 1 and clipping is inert."""
    clip_ratio_c: Optional[float] = None
    """Dual-clip bound (> 1, verl uses 3): for negative advantages the loss is capped at -A * c.
    None disables dual clipping."""
    ppo_mini_batch_size: int = 0
    """Prompts per mini-batch (verl's unit): the step's completions are split into
    ceil(completions / (ppo_mini_batch_size x group_size)) mini-batches, one optimizer step each.
    0: the whole step is one mini-batch."""
    ppo_epochs: int = 1
    """Passes over the step's mini-batches (verl's ppo_epochs, TRL's num_iterations). pi_old stays
    the policy from before the first update, so every update after the first is off-policy and
    the clip terms act."""
    loss_agg: str = "token-mean"
    """How per-token losses become one number: token-mean (sum / all completion tokens of the step,
    verl's default and DAPO's choice), seq-mean-token-mean (mean over sequences of each sequence's
    token mean, the original GRPO), seq-mean-token-sum-norm (mean over sequences of token sum /
    max_completion_length, Dr. GRPO). The same aggregation applies to the KL loss term."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts: the learner divides logits by it so that new, old and
    reference log-probs describe the distribution that was sampled. Must equal the rollout's."""

    # --- KL to the frozen reference model ---
    kl_coef: float = 0.04
    """Weight of the KL penalty (TRL 0.15's beta, the setup STVG-R1 released). 0 disables the
    penalty and the reference model is not loaded at all."""
    kl_estimator: str = "k3"
    """k1: logp - ref; k2: (logp - ref)^2 / 2; k3: exp(ref - logp) - (ref - logp) - 1 (unbiased,
    non-negative, low variance; clamped to <= 10 like verl)."""
    kl_mode: str = "loss"
    """loss: kl_coef * aggregated KL is added to the loss; reward: kl_coef * (sum of per-token KL of
    the completion) is subtracted from its reward before advantages are computed."""

    # --- filters and shaping ---
    filter_zero_variance: bool = True
    """Drop groups whose rewards are all equal before the step (their advantages are all 0 and
    would only dilute token-mean normalisation); the number dropped is reported."""
    max_completion_length: int = 1024
    """Generation limit in tokens (the rollout's max_new_tokens): the constant denominator of
    seq-mean-token-sum-norm and the end of the overlong buffer."""
    overlong_buffer_len: int = 0
    """DAPO overlong shaping: completions longer than max_completion_length - overlong_buffer_len
    lose reward linearly, reaching -overlong_penalty_factor at max_completion_length. 0 disables."""
    overlong_penalty_factor: float = 1.0
    """Largest overlong penalty (DAPO uses 1.0)."""

    def __post_init__(self) -> None:
        check_range("grpo.group_size", self.group_size, low=1)
        check_choice("grpo.advantage_estimator", self.advantage_estimator, ADVANTAGE_ESTIMATORS)
        check_range("grpo.std_eps", self.std_eps, low=0.0, low_open=True)
        check_choice("grpo.credit", self.credit, CREDITS)
        check_range("grpo.clip_ratio_low", self.clip_ratio_low, low=0.0, high=1.0, low_open=True, high_open=True)
        check_range("grpo.clip_ratio_high", self.clip_ratio_high, low=0.0, low_open=True)
        if self.clip_ratio_c is not None:
            check_range("grpo.clip_ratio_c", self.clip_ratio_c, low=1.0, low_open=True)
        check_range("grpo.ppo_mini_batch_size", self.ppo_mini_batch_size, low=0)
        check_range("grpo.ppo_epochs", self.ppo_epochs, low=1)
        check_choice("grpo.loss_agg", self.loss_agg, LOSS_AGGREGATIONS)
        check_range("grpo.temperature", self.temperature, low=0.0, low_open=True)
        check_range("grpo.kl_coef", self.kl_coef, low=0.0)
        check_choice("grpo.kl_estimator", self.kl_estimator, KL_ESTIMATORS)
        check_choice("grpo.kl_mode", self.kl_mode, KL_MODES)
        check_range("grpo.max_completion_length", self.max_completion_length, low=1)
        check_range("grpo.overlong_buffer_len", self.overlong_buffer_len, low=0)
        if self.overlong_buffer_len >= self.max_completion_length:
            raise ConfigError(
                f"grpo.overlong_buffer_len={self.overlong_buffer_len} must be smaller than "
                f"grpo.max_completion_length={self.max_completion_length} (0 disables the overlong penalty)")
        check_range("grpo.overlong_penalty_factor", self.overlong_penalty_factor, low=0.0)
        if self.credit == "box" and self.uses_reference and self.kl_mode == "reward":
            raise ConfigError("grpo.credit=box needs grpo.kl_mode=loss (kl_mode=reward recomputes one advantage "
                              "per answer from the KL-shaped rewards), or grpo.kl_coef=0")

    @property
    def uses_reference(self) -> bool:
        """True when a frozen reference model is needed (kl_coef > 0)."""
        return self.kl_coef > 0.0
