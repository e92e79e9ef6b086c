"""A Qwen2.5-VL model's shapes from its config.json, and what follows from them alone: parameter
counts (language model and vision tower), the largest single layer, KV-cache bytes per token.

Both config.json layouts are read: the published one (text keys at the top level, as in the
Qwen/Qwen2.5-VL-*-Instruct repositories) and transformers 5's (`text_config` / `vision_config`).
The counts follow the module layout of transformers' Qwen2_5_VLForConditionalGeneration; the tests
compare them with the model built on the meta device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.errors import UserError

MODEL_TYPES = ("qwen2_5_vl",)


@dataclass(frozen=True)
class TextShapes:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    """lm_head shares the embedding matrix (tie_word_embeddings)."""

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def layer_params(self) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        attention = (h * h + h) + 2 * (h * kv + kv) + h * h  # q, k, v with bias; o without
        return attention + 3 * h * i + 2 * h  # gate, up, down; two RMSNorms

    @property
    def params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.layers * self.layer_params + self.hidden  # + final norm

    @property
    def largest_layer(self) -> int:
        """Parameters of the largest single module (its own, not its children's), as DeepSpeed's
        `model_to_params` counts them: the embedding (or lm_head) in every Qwen2.5-VL size."""
        h = self.hidden
        return max(self.vocab * h, h * h + h, h * self.intermediate)


@dataclass(frozen=True)
class VisionShapes:
    hidden: int
    depth: int
    heads: int
    intermediate: int
    out_hidden: int
    patch: int
    merge: int
    temporal_patch: int
    in_channels: int
    window_size: int
    full_attention_blocks: tuple[int, ...]

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def patch_values(self) -> int:
        """Pixel values per patch (channels x temporal patch x patch x patch)."""
        return self.in_channels * self.temporal_patch * self.patch * self.patch

    @property
    def merged_hidden(self) -> int:
        return self.hidden * self.merge * self.merge

    @property
    def block_params(self) -> int:
        h, i = self.hidden, self.intermediate
        return 2 * h + (3 * h * h + 3 * h) + (h * h + h) + 2 * (h * i + i) + (i * h + h)

    @property
    def params(self) -> int:
        patch_embed = self.patch_values * self.hidden  # Conv3d without bias
        m = self.merged_hidden
        merger = self.hidden + (m * m + m) + (m * self.out_hidden + self.out_hidden)
        return patch_embed + self.depth * self.block_params + merger

    @property
    def largest_layer(self) -> int:
        m = self.merged_hidden
        return max(m * m + m, m * self.out_hidden + self.out_hidden, 3 * self.hidden * self.hidden + 3 * self.hidden,
                   self.hidden * self.intermediate + self.intermediate, self.patch_values * self.hidden)


@dataclass(frozen=True)
class ModelShapes:
    text: TextShapes
    vision: VisionShapes
    source: str
    """Where the config came from, for the report (a path, URI or shipped name)."""

    @property
    def params(self) -> int:
        return self.text.params + self.vision.params

    @property
    def largest_layer(self) -> int:
        return max(self.text.largest_layer, self.vision.largest_layer)

    def kv_bytes_per_token(self, dtype_bytes: int = 2, tensor_parallel: int = 1) -> int:
        """KV-cache bytes per token on one GPU: 2 (K and V) x layers x KV heads x head dim x dtype
        bytes, the KV heads split over the tensor-parallel ranks (at least one each, as vLLM does)."""
        t = self.text
        kv_heads = max(1, t.kv_heads // tensor_parallel)
        return 2 * t.layers * kv_heads * t.head_dim * dtype_bytes


def shapes_from_config(config: dict[str, Any], source: str) -> ModelShapes:
    """ModelShapes of a config.json dict; UserError naming the source for anything else."""
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise UserError(f"{source}: model_type {model_type!r} cannot be planned; stvg plan knows "
                        f"{', '.join(MODEL_TYPES)} (the model families the platform trains)")
    text = config.get("text_config") or config  # the published layout keeps text keys at the top
    vision = config.get("vision_config") or {}
    try:
        hidden, heads = int(text["hidden_size"]), int(text["num_attention_heads"])
        tied = text.get("tie_word_embeddings", config.get("tie_word_embeddings", False))
        text_shapes = TextShapes(
            hidden=hidden, layers=int(text["num_hidden_layers"]), heads=heads,
            kv_heads=int(text.get("num_key_value_heads") or heads),
            head_dim=int(text.get("head_dim") or hidden // heads),
            intermediate=int(text["intermediate_size"]), vocab=int(text["vocab_size"]), tied=bool(tied))
        vision_shapes = VisionShapes(
            hidden=int(vision["hidden_size"]), depth=int(vision["depth"]), heads=int(vision["num_heads"]),
            intermediate=int(vision["intermediate_size"]), out_hidden=int(vision["out_hidden_size"]),
            patch=int(vision.get("patch_size", 14)), merge=int(vision.get("spatial_merge_size", 2)),
            temporal_patch=int(vision.get("temporal_patch_size", 2)),
            in_channels=int(vision.get("in_channels", vision.get("in_chans", 3))),
            window_size=int(vision.get("window_size", 112)),
            full_attention_blocks=tuple(int(b) for b in vision.get("fullatt_block_indexes", ())))
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{source}: config.json lacks or mangles {err} needed to size the model") from None
    return ModelShapes(text_shapes, vision_shapes, source)
