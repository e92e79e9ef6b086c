"""Rollout engine memory: vLLM's KV capacity worked by hand for the 7B preset's engines, and the
plan beside a figure vLLM itself logged (Qwen2.5-VL-72B over 4 A100-40GB, vllm-project/vllm#16570)."""

from __future__ import annotations

import json

from infra.plan.rollout import vllm_memory
from infra.plan.shapes import shapes_from_config
from infra.plan.source import SHIPPED_DIR

GIB = 1024**3


def _shapes(name):
    return shapes_from_config(json.loads((SHIPPED_DIR / f"{name}.json").read_text()), name)


def test_seven_b_engine_on_a100_40gb_by_hand():
    engine = vllm_memory(_shapes("qwen2.5-vl-7b"), 40.0, 0.6, 6258)
    budget = int(0.6 * 40 * GIB)                       # 25,769,803,776 bytes vLLM may use
    weights = 2 * 8_292_166_656                        # bf16
    reserve = 40 * 3584 * 8192 + int(0.4 * GIB) + GIB  # activation peak at 8,192 batched tokens, non-torch, graphs
    kv_cache = budget - weights - reserve              # 6,507,826,791 bytes
    per_sequence = 392 * 16 * 57344                    # 6,258 tokens in 392 blocks of 16, 56 KiB each
    assert (engine.budget, engine.weights, engine.reserve, engine.kv_cache) == (budget, weights, reserve, kv_cache)
    assert engine.max_sequences == kv_cache // per_sequence == 18


def test_a_larger_gpu_raises_vllms_token_budget_and_caps_sequences_at_max_num_seqs():
    small = vllm_memory(_shapes("qwen2.5-vl-3b"), 80.0, 0.9, 300)
    # at 80 GiB vLLM's defaults are 16,384 batched tokens and 1,024 sequences
    assert small.reserve == 40 * 2048 * 16384 + int(0.4 * GIB) + GIB
    assert small.max_sequences == 1024


def test_72b_over_four_a100_40gb_beside_vllms_own_log():
    """vLLM 0.8.3 logged, per GPU of 39.38 GiB at gpu_memory_utilization 0.95 and max_model_len 8192:
    'model weights take 34.43GiB ... the rest of the memory reserved for KV Cache is 0.13GiB', and
    the engine could not serve one 8192-token sequence (80 KiB per token per GPU: 0.625 GiB)."""
    engine = vllm_memory(_shapes("qwen2.5-vl-72b"), 39.38, 0.95, 8192, tensor_parallel=4)
    assert abs(engine.weights / GIB - 34.43) / 34.43 < 0.01  # 34.18 GiB: vLLM replicates a few small layers
    assert engine.kv_bytes_per_token == 2 * 80 * 2 * 128 * 2  # 8 KV heads over 4 GPUs
    assert engine.kv_cache < 8192 * engine.kv_bytes_per_token  # no room for one max_model_len sequence
