"""Per-token log-probs (and entropy) of completions under a Qwen2.5-VL-style video model.

The model sees exactly what the rollout engine saw: prompt ids + completion ids (right-padded,
attention mask), the prompt's pixel_values_videos / video_grid_thw / second_per_grid_ts, and
mm_token_type_ids marking the video placeholders, from which the model computes its own
multimodal rotary positions (mRoPE, `get_rope_index`), padding-aware. Two economies:
- a prompt shared by several rows of the micro-batch (the G completions of a group) goes through
  the vision tower once; its features are handed to every row (transformers' `mm_encoder_outputs`);
- the LM head runs only at the positions that predict completion tokens, never over the prompt.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from trainer.learner.batch import MicroBatch


def completion_logprobs(policy: nn.Module, batch: MicroBatch, temperature: float = 1.0,
                        with_entropy: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Log-probs of the completion tokens, and optionally the entropy of each predicting distribution.

    Shapes: returns logp [B, T] float32 and entropy [B, T] float32 or None (0 past each row's
    completion). The entropy is computed without gradient (it is a metric, not a bonus).
    """
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    inner = policy.model
    videos = inner.get_video_features(pixel_values_videos=batch.pixel_values_videos,
                                      video_grid_thw=batch.video_grid_thw)
    features = videos.pooler_output  # one [tokens_u, hidden] tensor per distinct video
    index = batch.video_index.tolist()
    per_row = BaseModelOutputWithPooling(pooler_output=tuple(features[u] for u in index))
    out = inner(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        mm_token_type_ids=batch.mm_token_type_ids,
        video_grid_thw=batch.video_grid_thw[batch.video_index],
        second_per_grid_ts=batch.second_per_grid_ts[batch.video_index],
        mm_encoder_outputs={"video": per_row},
        use_cache=False,
    )
    hidden = out.last_hidden_state[batch.token_rows, batch.logit_positions]  # [N, H]
    logits = policy.lm_head(hidden).float()  # [N, V], only where a completion token is predicted
    if temperature != 1.0:
        logits = logits / temperature
    tokens = batch.completion_ids[batch.token_rows, batch.token_cols]
    log_norm = torch.logsumexp(logits, dim=-1)
    token_logp = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - log_norm
    logp = token_logp.new_zeros(batch.completion_ids.shape).index_put((batch.token_rows, batch.token_cols),
                                                                       token_logp)
    entropy = None
    if with_entropy:
        with torch.no_grad():
            probs = torch.softmax(logits, dim=-1)
            token_entropy = log_norm - (probs * logits).sum(dim=-1)
            entropy = token_entropy.new_zeros(batch.completion_ids.shape).index_put(
                (batch.token_rows, batch.token_cols), token_entropy)
    return logp, entropy


class CompletionScorer(nn.Module):
    """The policy plus the forward above, so a DeepSpeed engine wrapping this module runs its ZeRO-3
    parameter hooks around the whole computation. The HF model is `self.policy` (state-dict keys
    gain a "policy." prefix; export_weights strips it)."""

    def __init__(self, policy: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.policy = policy
        self.temperature = temperature

    def forward(self, batch: MicroBatch, with_entropy: bool = False) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return completion_logprobs(self.policy, batch, self.temperature, with_entropy)
