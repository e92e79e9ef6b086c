"""Supervised fine-tuning step on the GRPO learner: token-mean cross-entropy on the completion tokens.

The items are TrainItems whose completion is the ideal answer (rewards.answers.format_answer plus
the end-of-turn token); their advantage is ignored. Everything else is the GRPO learner's: the
same DeepSpeed ZeRO-3 (or plain torch) engine, the same video log-prob forward (the LM head runs
only where answer tokens are predicted), the same micro-batching and lockstep padding.

Normalisation is exact, as in `Learner.step`: the answer-token count of the whole step (every
micro-batch, every rank) is all-reduced first, and every micro-batch contributes
-sum(log p) / that count, so the gradient equals that of one big batch on one rank.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from trainer.learner.batch import TrainItem
from trainer.learner.distribute import all_reduce_max, all_reduce_sum


def sft_step(learner, items: Sequence[TrainItem]) -> dict[str, float]:
    """One optimizer step of cross-entropy on this rank's share; metrics are global (all ranks).

    Every rank must call it in the same step (ZeRO-3 forwards are collective), each with its share
    from `trainer.learner.scatter_items`. The learner must score at temperature 1 (build it with
    `GRPOConfig(temperature=1.0)`): cross-entropy is taken against the model's raw distribution.
    """
    if learner.policy.module.temperature != 1.0:
        raise ValueError(f"sft_step needs a learner built with temperature 1.0, got "
                         f"{learner.policy.module.temperature}: the loss is the raw model's cross-entropy")
    device = learner.runtime.device
    real = [it for it in items if not it.is_padding]
    tokens, seqs = all_reduce_sum([sum(len(it.completion.token_ids) for it in real), len(real)], device)
    mbs = learner.cfg.micro_batch_size
    chunks = [list(items[i:i + mbs]) for i in range(0, len(items), mbs)]
    n_micro = all_reduce_max(len(chunks), device)
    if tokens == 0:
        return {"skipped": 1.0, "tokens": 0.0, "sequences": seqs}
    if len(chunks) < n_micro:  # ranks stay in lockstep with weightless copies
        if not items:
            raise RuntimeError(f"rank {learner.rank} got no items while other ranks did; "
                               f"distribute the step with trainer.learner.scatter_items")
        chunks += [[dataclasses.replace(items[0], is_padding=True)]] * (n_micro - len(chunks))

    loss_sum = 0.0
    for chunk in chunks:
        batch = learner._collate(chunk)
        logp, _ = learner.policy.forward(batch)
        loss = -(logp * batch.completion_mask).sum() / tokens
        learner.policy.backward(loss)
        loss_sum += float(loss.detach())
    grad_norm = learner.policy.step()

    (loss,) = all_reduce_sum([loss_sum], device)
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "grad_norm": grad_norm, "tokens": tokens,
            "sequences": seqs, "micro_batches": float(n_micro), "lr": learner.cfg.lr}
