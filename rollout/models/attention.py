"""Which attention kernel a model runs with: one rule for the rollout engines and the learner.

flash-attention 2 runs in bf16/fp16 only: transformers hands it fp32 activations as they are
unless autocast is on, and flash-attn then refuses them. So `auto` picks it only when the
model computes in half precision (bf16/fp16 weights, or the learner's bf16 autocast over fp32
weights) on CUDA with flash-attn importable; otherwise SDPA.
"""

from __future__ import annotations

import importlib.util

from infra.errors import ConfigError


def flash_attn_importable() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def choose_attention(requested: str, *, cuda: bool, half_precision: bool, flash_available: bool, key: str,
                     precision_key: str) -> str:
    """Resolve `requested` ('auto', 'flash_attention_2', 'sdpa', 'eager'). An explicit
    flash_attention_2 that cannot run is a ConfigError naming `key` and `precision_key`."""
    if requested == "auto":
        return "flash_attention_2" if cuda and half_precision and flash_available else "sdpa"
    if requested == "flash_attention_2":
        if not (cuda and flash_available):
            raise ConfigError(f"{key}=flash_attention_2 needs a CUDA device and the flash-attn package; "
                              f"use {key}=sdpa (or auto)")
        if not half_precision:
            raise ConfigError(f"{key}=flash_attention_2 runs in bf16/fp16 only but {precision_key} makes this model "
                              f"compute in fp32; set {precision_key} to bf16, or {key}=sdpa (or auto)")
    return requested
