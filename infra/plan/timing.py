"""Step time from FLOPs and bytes, under stated assumptions (MFU, bandwidth efficiency, network).

Compute-bound work (the learner's forward and backward, the engines' prefill) takes FLOPs / (GPUs x
peak bf16 x MFU); a decode step reads the weights and the batch's KV cache once and takes the longer
of that read at `bandwidth_efficiency` x peak bandwidth and its FLOPs. Forward FLOPs per token are
2 x the layer parameters it passes (Kaplan et al. 2020) plus attention's 2 x hidden x context per
layer and matrix product; backward costs twice the forward, checkpointing adds one more forward.
Every completion is taken at max_new_tokens and every row with its own video: an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.plan.gpus import GpuSpec
from infra.plan.prompt import PromptSize
from infra.plan.shapes import ModelShapes


@dataclass(frozen=True)
class Assumptions:
    mfu: float = 0.4
    """Model-FLOPs utilisation of compute-bound work."""
    bandwidth_efficiency: float = 0.7
    """Fraction of peak memory bandwidth a decode step reaches."""
    network_gbps: float = 100.0
    """Bandwidth between the learner and the rollout nodes for the weight sync, Gbit/s."""


def text_flops_per_token(shapes: ModelShapes, context: float) -> float:
    t = shapes.text
    return 2 * t.layers * t.layer_params + 4 * t.layers * t.heads * t.head_dim * context


def vision_flops_per_patch(shapes: ModelShapes, frame_grid: tuple[int, int]) -> float:
    from infra.plan.learner import attention_span

    v = shapes.vision
    per_patch = v.patch_values * v.hidden + v.depth * v.block_params
    merger = v.params - per_patch  # acts on merged tokens: one per merge x merge patches
    dense = 2 * per_patch + 2 * merger / (v.merge * v.merge)
    return dense + sum(4 * v.hidden * attention_span(v, b, frame_grid) for b in range(v.depth))


def forward_flops(shapes: ModelShapes, prompt: PromptSize, completion: int) -> float:
    """One sequence through the policy as the learner runs it: vision tower, all tokens, LM head at
    the completion positions."""
    tokens = prompt.tokens + completion
    return (tokens * text_flops_per_token(shapes, tokens / 2)
            + prompt.patches * vision_flops_per_patch(shapes, prompt.grid[1:])
            + 2 * completion * shapes.text.vocab * shapes.text.hidden)


@dataclass(frozen=True)
class StepTime:
    generation: float
    prefill: float
    decode: float
    logprob: float
    """The reference model's forward (grpo.kl_coef > 0); the policy's old log-probs come from the
    update's own forward (learner.old_logprobs=recompute) or from the engine."""
    update: float
    weight_sync: float
    total: float
    overlapped: bool
    """mode=async: generation of step k+1 overlaps learning on step k."""


def step_time(*, shapes: ModelShapes, prompt: PromptSize, completion: int, prompts: int, group: int,
              engines: int, max_sequences: int, kv_bytes_per_token: int, weight_bytes: int, ranks: int,
              checkpointing: bool, reference: bool, asynchronous: bool, rollout_gpu: GpuSpec,
              learner_gpu: GpuSpec, sync_copies: int, assume: Assumptions) -> StepTime:
    sequences = prompts * group
    seqs_per_engine = math.ceil(sequences / engines)
    prompts_per_engine = math.ceil(prompts / engines)
    rollout_flops = rollout_gpu.bf16_tflops * 1e12 * assume.mfu
    prefill = (seqs_per_engine * prompt.tokens * text_flops_per_token(shapes, prompt.tokens / 2)
               + prompts_per_engine * prompt.patches * vision_flops_per_patch(shapes, prompt.grid[1:])) / rollout_flops
    batch = max(1, min(seqs_per_engine, max_sequences))
    context = prompt.tokens + completion / 2
    read = weight_bytes + batch * context * kv_bytes_per_token
    per_step = max(read / (rollout_gpu.memory_gbps * 1e9 * assume.bandwidth_efficiency),
                   batch * text_flops_per_token(shapes, context) / rollout_flops)
    decode = math.ceil(seqs_per_engine / batch) * completion * per_step
    learner_flops = ranks * learner_gpu.bf16_tflops * 1e12 * assume.mfu
    forward = sequences * forward_flops(shapes, prompt, completion) / learner_flops
    update = forward * (4 if checkpointing else 3)
    logprob = forward if reference else 0.0
    sync = sync_copies * weight_bytes * 8 / (assume.network_gbps * 1e9)
    generation = prefill + decode
    learn = logprob + update
    total = (max(generation, learn) if asynchronous else generation + learn) + sync
    return StepTime(generation, prefill, decode, logprob, update, sync, total, asynchronous)
