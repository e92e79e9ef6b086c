"""Generation engines: one interface, a Hugging Face implementation (CPU/GPU) and a vLLM one (GPU).

Log-prob convention (both engines): `GeneratedSequence.logprobs[j]` is log p(token_j | prompt,
tokens_<j) under the distribution that was sampled: softmax(logits / temperature) (temperature 1
for greedy decoding). The learner divides its logits by the same temperature (grpo.temperature =
rollout.temperature), so for unchanged weights the ratio is 1 and `learner.old_logprobs=rollout`
works at any temperature. Not reproduced by the learner, hence kept out of the ratio: top_p < 1
(the run config refuses it with rollout log-probs) and the blocked vision tokens' mass (the HF
engine normalises over the whole vocabulary like the learner; vLLM's processed log-probs over the
allowed tokens, a difference of log(1 - p_blocked), negligible once the model avoids them).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Protocol

from infra.config import check_range
from infra.errors import ConfigError


@dataclass
class SamplingConfig:
    temperature: float = 1.0
    """0 means greedy decoding."""
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: Optional[int] = None
    """Same seed, same prompts, same weights -> same completions (per engine and device)."""

    def __post_init__(self) -> None:
        check_range("sampling.temperature", self.temperature, 0)
        check_range("sampling.top_p", self.top_p, 0, 1, low_open=True)
        check_range("sampling.max_new_tokens", self.max_new_tokens, 1)


@dataclass
class GeneratedSequence:
    token_ids: list[int]
    """Completion tokens, the stop token included when generation stopped on one."""
    text: str
    """Decoded completion, special tokens dropped."""
    logprobs: list[float]
    """Log-prob of each token under the sampled (tempered) distribution (see the module docstring)."""
    finish_reason: str
    """'stop' (a stop token was generated) or 'length' (max_new_tokens reached)."""
    extra: dict[str, Any] = field(default_factory=dict)


class GenerationEngine(Protocol):
    policy_version: int
    needs_frames: bool
    """True when the engine wants the raw frames in `prompt.extra['frames']` (vLLM runs its own
    processor); the worker removes them before results travel to the learner."""

    def generate(self, prompts: list, n: int, sampling: SamplingConfig) -> list[list[GeneratedSequence]]:
        """n sequences for each prompt (a list per prompt, in prompt order)."""
        ...

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        """Copy the given parameters (Hugging Face names) into the engine; set policy_version."""
        ...


def vllm_usable() -> bool:
    """vLLM is importable and CUDA is available."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def select_engine(engine: Any) -> str:
    """Resolve 'auto' to 'vllm' (vLLM importable and CUDA present) or 'hf'; check explicit choices.
    `engine` is the choice itself or a config with an `engine` field (RolloutConfig)."""
    engine = getattr(engine, "engine", engine)
    if engine == "auto":
        return "vllm" if vllm_usable() else "hf"
    if engine == "vllm" and not vllm_usable():
        raise ConfigError("rollout.engine=vllm needs the vllm package and a CUDA GPU on the rollout workers; "
                          "use rollout.engine=hf (or auto) on CPU")
    if engine not in ("hf", "vllm"):
        raise ConfigError(f"rollout.engine={engine!r} is not allowed; choose one of: auto, hf, vllm")
    return engine


def make_engine(kind: str, model_dir: str, *, family: Any, processor: Any, dtype: str = "auto",
                device: Optional[str] = None, gpu_memory_utilization: float = 0.6,
                max_model_len: Optional[int] = None) -> GenerationEngine:
    """Build the engine `select_engine(kind)` names, for the checkpoint in `model_dir`."""
    kind = select_engine(kind)
    if kind == "vllm":
        from rollout.engines.vllm import VLLMEngine

        return VLLMEngine(model_dir, family=family, processor=processor, dtype=dtype,
                          gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len)
    from rollout.engines.hf import HFEngine

    return HFEngine(model_dir, family=family, processor=processor, dtype=dtype, device=device)
