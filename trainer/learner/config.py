"""LearnerConfig: how the policy is trained (workers, sharding, precision, optimiser)."""

from __future__ import annotations

from dataclasses import dataclass, field

from infra.config import check_choice, check_range

AUTO_BOOL = ("auto", "true", "false")
ATTN_IMPLEMENTATIONS = ("auto", "flash_attention_2", "sdpa", "eager")
ZERO_STAGES = (0, 3)
OLD_LOGPROBS = ("recompute", "rollout")


@dataclass
class LearnerConfig:
    # --- workers (Ray Train) ---
    num_workers: int = 1
    """Learner ranks (Ray Train workers); each holds 1/num_workers of the ZeRO-3 model state."""
    use_gpu: str = "auto"
    """auto: a GPU per worker when CUDA is visible on the driver; true / false to force."""
    resources_per_worker: dict[str, float] = field(default_factory=dict)
    """Ray resources per worker, e.g. {CPU: 4, stvg_learner: 1} so that workers land on the learner
    node group of a Kubernetes RayCluster. Empty = Ray Train's default (1 CPU, plus 1 GPU with use_gpu)."""
    max_failures: int = 2
    """Times Ray Train restarts the worker group after a worker dies (it resumes from the latest
    checkpoint); -1 = forever."""

    # --- sharding and memory ---
    zero_stage: int = 3
    """3: DeepSpeed ZeRO-3 (parameters, gradients and optimizer state sharded over ranks);
    0: plain torch (full replica per rank, gradients all-reduced), kept for comparison and tests."""
    micro_batch_size: int = 1
    """Completions per forward/backward; a step accumulates gradients over ceil(n / this) micro-batches."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward (saves memory on long video prompts, costs ~30 % compute)."""
    bf16: str = "auto"
    """auto: bfloat16 weights with fp32 master copies on GPU, fp32 on CPU; true / false to force."""
    attn_implementation: str = "auto"
    """auto: flash_attention_2 when flash-attn imports, CUDA is available and bf16 is on (flash-attention
    refuses fp32), else sdpa."""

    # --- optimiser (AdamW; STVG-o1: lr 1e-6, weight decay 1e-2) ---
    lr: float = 1e-6
    """AdamW learning rate (constant)."""
    weight_decay: float = 1e-2
    """AdamW decoupled weight decay, applied to matrices only (not to biases and norm weights)."""
    adam_beta1: float = 0.9
    """AdamW beta1."""
    adam_beta2: float = 0.999
    """AdamW beta2."""
    adam_eps: float = 1e-8
    """AdamW epsilon."""
    max_grad_norm: float = 1.0
    """Clip the global gradient L2 norm to this; 0 disables clipping."""

    # --- importance ratio ---
    old_logprobs: str = "recompute"
    """Denominator of the ratio pi / pi_old. recompute: the learner's own log-probs before the
    step's first update (free with one update per step: the forward's, detached; with PPO
    mini-batches or epochs, one extra no-grad forward over the step), so engine numerics never
    enter the loss. rollout: the log-probs the rollout engine reported, of the distribution it
    sampled (temperature included; needs rollout.top_p=1): also corrects for stale weights in
    one-step-off async mode, but sees engine-vs-learner numeric differences (vLLM bf16 kernels)."""

    def __post_init__(self) -> None:
        check_range("learner.num_workers", self.num_workers, low=1)
        check_choice("learner.use_gpu", str(self.use_gpu).lower(), AUTO_BOOL)
        check_range("learner.max_failures", self.max_failures, low=-1)
        check_choice("learner.zero_stage", self.zero_stage, ZERO_STAGES)
        check_range("learner.micro_batch_size", self.micro_batch_size, low=1)
        check_choice("learner.bf16", str(self.bf16).lower(), AUTO_BOOL)
        check_choice("learner.attn_implementation", self.attn_implementation, ATTN_IMPLEMENTATIONS)
        check_range("learner.lr", self.lr, low=0.0, low_open=True)
        check_range("learner.weight_decay", self.weight_decay, low=0.0)
        check_range("learner.adam_beta1", self.adam_beta1, low=0.0, high=1.0, high_open=True)
        check_range("learner.adam_beta2", self.adam_beta2, low=0.0, high=1.0, high_open=True)
        check_range("learner.adam_eps", self.adam_eps, low=0.0, low_open=True)
        check_range("learner.max_grad_norm", self.max_grad_norm, low=0.0)
        check_choice("learner.old_logprobs", self.old_logprobs, OLD_LOGPROBS)
