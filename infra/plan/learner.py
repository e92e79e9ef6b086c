"""Learner memory per GPU: ZeRO-3 model states, the reference model, activations, the logits buffer.

Model states follow DeepSpeed's own estimator (`estimate_zero3_model_states_mem_needs`, no offload):
18 bytes per parameter over the ranks plus the largest layer gathered at once in 4 bytes per
parameter. The 18 bytes are the ZeRO paper's 16 for mixed-precision Adam (2 bf16 weights, 2 bf16
gradients, 12 fp32 master weights and Adam moments) plus the 2 DeepSpeed's estimator adds for its
fp32 gradient partition. Plain torch (`zero_stage=0`) keeps fp32 weights, gradients and both
moments on every rank: 16 bytes per parameter, unsharded.

Activations are the tensors autograd saves for backward in the learner's forward
(trainer/learner/logprobs.py) with bf16 activations, itemised per decoder layer, per vision block
and for the parts around them (docs/plan.md derives each term; tests/infra/plan compares the sum
with the bytes autograd really saves on a small Qwen2.5-VL). With activation checkpointing a layer
keeps only its input, and backward recomputes one layer at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.plan.shapes import ModelShapes, TextShapes, VisionShapes

ZERO3_BYTES_PER_PARAM = 18
GATHER_BYTES_PER_PARAM = 4
PLAIN_BYTES_PER_PARAM = 16


@dataclass(frozen=True)
class Workload:
    """What one learner micro-batch holds at worst: full-length rows, each with its own video."""

    rows: int
    """Sequences per micro-batch (learner.micro_batch_size)."""
    sequence_tokens: int
    """Prompt (video tokens included) + max_new_tokens."""
    completion_tokens: int
    """max_new_tokens: the positions whose logits are computed."""
    patches: int
    """Vision patches of one row's video (before the 2 x 2 merge)."""
    frame_grid: tuple[int, int]
    """(H, W) patches of one temporal grid step: the vision tower attends within a step, not across."""


def model_state_bytes(params: int, largest_layer: int, ranks: int, zero_stage: int = 3) -> int:
    """Per GPU; for ZeRO-3 exactly DeepSpeed's estimate (no offload) for `ranks` GPUs."""
    if zero_stage == 0:
        return PLAIN_BYTES_PER_PARAM * params
    return GATHER_BYTES_PER_PARAM * largest_layer + int(ZERO3_BYTES_PER_PARAM * params / ranks)


def reference_bytes(params: int, ranks: int, zero_stage: int, bf16: bool) -> int:
    """The frozen reference model (grpo.kl_coef > 0): weights only, sharded like the policy's."""
    weights = (2 if bf16 else 4) * params
    return weights if zero_stage == 0 else weights // ranks


# --- activations, bytes saved for backward ----------------------------------------------------

def text_layer_bytes_per_token(t: TextShapes, attention: str, sequence: int) -> int:
    """One decoder layer, per token. Two RMSNorms save their fp32 input (4h), normalised bf16 (2h),
    weighted output (2h) and fp32 rsqrt (4); attention saves q (2h), k and v (2 x 2kv), its output
    (2h, also o_proj's input) and SDPA's fp32 logsumexp (4 per head); the MLP saves gate, SiLU(gate),
    up and their product (4 x 2i). Eager attention instead keeps the fp32 softmax and its bf16 copy
    (6 bytes per score, `sequence` scores per token and head) and k, v repeated to all heads."""
    h, kv, i = t.hidden, t.kv_dim, t.intermediate
    norms = 2 * (8 * h + 4)
    if attention == "eager":
        return norms + 8 * h + 8 * i + 6 * t.heads * sequence
    return norms + 4 * h + 4 * kv + 4 * t.heads + 8 * i


def vision_block_bytes_per_patch(v: VisionShapes, attention: str, span: float) -> float:
    """One vision block, per patch: RMSNorms as above (16h + 8), the fused qkv output (6h), q and k
    after rotary (4h), the attention output and o_proj's input (2 x 2h; windows are gathered, so two
    copies), logsumexp (4 per head), the MLP (8i). Eager attention: softmax and its copy (6 bytes
    per score, `span` scores per patch and head) instead of the logsumexp and the SDPA output."""
    h, i = v.hidden, v.intermediate
    base = 16 * h + 8 + 6 * h + 4 * h + 2 * h + 8 * i
    if attention == "eager":
        return base + 6 * v.heads * span
    return base + 2 * h + 4 * v.heads


def attention_span(v: VisionShapes, block: int, frame_grid: tuple[int, int]) -> float:
    """Patches one patch attends to in vision block `block`, on average: its temporal step's in the
    full-attention blocks, its window's in the others (window_size pixels square, cut at the edges)."""
    height, width = frame_grid
    if block in v.full_attention_blocks:
        return height * width
    side = v.window_size // (v.patch * v.merge) * v.merge  # patches, whole merge groups

    def squares(n: int) -> int:  # sum of squared window lengths along one axis
        return (n // side) * side * side + (n % side) ** 2

    return squares(height) * squares(width) / (height * width)


def text_other_bytes_per_token(t: TextShapes) -> int:
    """Per token outside the layers: the final RMSNorm (fp32 input, normalised bf16, rsqrt) and the
    mRoPE cos and sin tables (bf16, head_dim each)."""
    return 6 * t.hidden + 4 + 4 * t.head_dim


def vision_other_bytes_per_patch(v: VisionShapes) -> int:
    """Per patch outside the blocks: the patch embedding's bf16 input, the rotary cos/sin (fp32),
    the merger (RMSNorm 8h + 4, then per 4 patches a GELU input and output of 4h each)."""
    return 2 * v.patch_values + 8 * v.head_dim + 12 * v.hidden + 4


def logits_bytes_per_token(t: TextShapes) -> int:
    """Per completion token: the fp32 logits (the LM head runs at completion positions only) and
    their logsumexp."""
    return 4 * t.vocab + 4


@dataclass(frozen=True)
class Activations:
    saved: int
    """Bytes saved for backward at the end of the forward, the logits apart."""
    logits: int
    """The saved fp32 logits and logsumexp."""
    recompute: int
    """With checkpointing: the largest layer recomputed during backward; 0 without."""
    rotary: int
    """The rotary tables within `saved` (kept alive as layer arguments either way)."""

    @property
    def peak(self) -> int:
        """What the forward leaves for backward, plus the recomputed layer (logits apart)."""
        return self.saved + self.recompute


def activations(shapes: ModelShapes, work: Workload, attention: str, checkpointing: bool) -> Activations:
    t, v = shapes.text, shapes.vision
    tokens, patches = work.rows * work.sequence_tokens, work.rows * work.patches
    attention = "eager" if attention == "eager" else "sdpa"  # flash-attention saves what SDPA does
    text_layer = text_layer_bytes_per_token(t, attention, work.sequence_tokens) * tokens
    blocks = [round(vision_block_bytes_per_patch(v, attention, attention_span(v, b, work.frame_grid)) * patches)
              for b in range(v.depth)]
    completions = work.rows * work.completion_tokens
    around = (text_other_bytes_per_token(t) * tokens + vision_other_bytes_per_patch(v) * patches
              + 2 * t.hidden * completions)  # + the LM head's bf16 input
    logits = logits_bytes_per_token(t) * completions
    rotary = 4 * t.head_dim * tokens + 8 * v.head_dim * patches
    if not checkpointing:
        return Activations(around + t.layers * text_layer + sum(blocks), logits, 0, rotary)
    kept = t.layers * 2 * t.hidden * tokens + v.depth * 2 * v.hidden * patches  # each layer's input
    return Activations(around + kept, logits, max(text_layer, *blocks), rotary)


def logits_transient_bytes(t: TextShapes, work: Workload) -> int:
    """Beyond the saved fp32 logits: the entropy metric's softmax and product (no grad), then the
    logits' gradient in backward, two fp32 [tokens, vocab] tensors at a time."""
    return 8 * t.vocab * work.rows * work.completion_tokens
