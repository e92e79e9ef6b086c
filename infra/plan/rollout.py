"""Rollout engine memory per GPU: weights, KV cache, and how many full-length sequences fit.

vLLM takes `gpu_memory_utilization` x the GPU's memory and, after loading the weights and running
its profiling forward, gives the rest to the KV cache in blocks of 16 tokens. Its activation peak
is not computable from shapes alone; the plan reserves 40 bytes x hidden size per token of the
scheduler's token budget, the ratio vLLM's own profiling log shows for Qwen2.5-VL-72B (a text-only
Llama-3.1-8B logs 27; docs/plan.md cites both), plus fixed allowances for non-torch memory and CUDA
graphs.
The HF engine (transformers generate) holds the KV cache of one request's sequences at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from infra.plan.shapes import ModelShapes

GIB = 1024**3
BLOCK_TOKENS = 16
"""vLLM's KV-cache block size (tokens)."""
ACTIVATION_BYTES_PER_HIDDEN_TOKEN = 40
NON_TORCH_BYTES = int(0.4 * GIB)
"""NCCL, cuBLAS workspaces and the like: vLLM logs 0.34-0.43 GiB of non-torch memory."""
CUDA_GRAPH_BYTES = 1 * GIB
"""vLLM (since 0.21) counts captured CUDA graphs inside gpu_memory_utilization."""


def vllm_defaults(gpu_memory_gib: float) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) vLLM picks for the offline LLM class when unset, as the
    engine leaves them: larger on GPUs of 70 GiB and more."""
    return (16384, 1024) if gpu_memory_gib >= 70 else (8192, 256)


@dataclass(frozen=True)
class EngineMemory:
    budget: int
    """Bytes the engine may use on one GPU (vLLM: gpu_memory_utilization x memory)."""
    weights: int
    reserve: int
    """Activation peak, non-torch memory and CUDA graphs (vLLM); activations of one request (HF)."""
    kv_bytes_per_token: int
    sequence_tokens: int
    max_sequences: int
    """Full-length sequences whose KV cache fits at once (capped by vLLM's max_num_seqs)."""
    kv_cache: int
    """Bytes left for the KV cache (may be negative: the weights alone do not fit)."""


def vllm_memory(shapes: ModelShapes, gpu_memory_gib: float, utilization: float, sequence_tokens: int,
                dtype_bytes: int = 2, tensor_parallel: int = 1) -> EngineMemory:
    budget = int(utilization * gpu_memory_gib * GIB)
    weights = dtype_bytes * shapes.params // tensor_parallel
    batched_tokens, max_seqs = vllm_defaults(gpu_memory_gib)
    batched_tokens = max(batched_tokens, sequence_tokens)  # vLLM raises it to fit one whole prompt
    # not divided by tensor_parallel: the residual stream is whole on every rank (vLLM's 72B log: 40 x
    # hidden per token at TP 4, as at TP 1)
    activation = ACTIVATION_BYTES_PER_HIDDEN_TOKEN * shapes.text.hidden * batched_tokens
    reserve = activation + NON_TORCH_BYTES + CUDA_GRAPH_BYTES
    kv_per_token = shapes.kv_bytes_per_token(dtype_bytes, tensor_parallel)
    kv_cache = budget - weights - reserve
    per_sequence = math.ceil(sequence_tokens / BLOCK_TOKENS) * BLOCK_TOKENS * kv_per_token
    fit = max(0, kv_cache) // per_sequence
    return EngineMemory(budget, weights, reserve, kv_per_token, sequence_tokens, min(fit, max_seqs), kv_cache)


def hf_memory(shapes: ModelShapes, gpu_memory_gib: float, sequences: int, sequence_tokens: int,
              dtype_bytes: int = 2) -> EngineMemory:
    """transformers generate: the whole GPU, one request (`sequences` rows) prefilled at a time."""
    budget = int(gpu_memory_gib * GIB)
    weights = dtype_bytes * shapes.params
    kv_per_token = shapes.kv_bytes_per_token(dtype_bytes)
    reserve = ACTIVATION_BYTES_PER_HIDDEN_TOKEN * shapes.text.hidden * sequences * sequence_tokens + NON_TORCH_BYTES
    kv_cache = budget - weights - reserve
    fit = max(0, kv_cache) // (kv_per_token * sequence_tokens)
    return EngineMemory(budget, weights, reserve, kv_per_token, sequence_tokens, fit, kv_cache)
