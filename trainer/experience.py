"""From a rollout batch to training items: targets, rewards, shaping, filtering, advantages.

Runs on learner rank 0 once per step. Everything that needs a whole group (advantages, the
zero-variance filter) happens here, before the items are split across ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from infra.data.sample import GroundingSample
from rewards.targets import build_target
from rollout.types import PromptInputs, RolloutBatch
from trainer.grpo import GRPOConfig, compute_advantages, overlong_penalty, zero_variance_mask
from trainer.grpo.credit import box_token_advantages
from trainer.learner.batch import TrainItem


@dataclass
class ScoredBatch:
    items: list[TrainItem]
    """Completions to learn from: stale ones dropped, then zero-variance groups (when the filter is
    on); advantages computed over the fresh completions of each group."""
    rewards: list[float]
    """Every completion's reward before filtering, in batch order (for logging and pictures)."""
    terms: list[dict[str, float]]
    metrics: dict[str, float]


def targets_for(batch: RolloutBatch, samples: Sequence[GroundingSample], task: str) -> list[dict]:
    """The reward target of every prompt, in the pixels of the frames the model saw."""
    by_id = {s.id: s for s in samples}
    return [build_target(task, by_id[p.sample_id], p.frame_size) for p in batch.prompts]


def make_experience(batch: RolloutBatch, samples: Sequence[GroundingSample], reward_client, task: str,
                    grpo: GRPOConfig, learner_version: int, max_staleness: int, tokenizer=None) -> ScoredBatch:
    """`tokenizer` (the policy's) is needed with grpo.credit=box, to find each box's tokens."""
    if grpo.credit == "box" and tokenizer is None:
        raise ValueError("grpo.credit=box needs the policy's tokenizer to find each box's tokens")
    completions = batch.completions
    if not completions:  # every prompt of the step was left out (data.on_bad_video=skip): nothing to learn
        return ScoredBatch([], [], [], {})
    targets = targets_for(batch, samples, task)
    results = reward_client.score(task, [c.text for c in completions],
                                  [targets[c.prompt_index] for c in completions])
    rewards = torch.tensor([r.total for r in results], dtype=torch.float32)
    lengths = torch.tensor([len(c.token_ids) for c in completions], dtype=torch.float32)
    shaped = rewards + overlong_penalty(lengths, grpo.max_completion_length, grpo.overlong_buffer_len,
                                        grpo.overlong_penalty_factor)
    # Staleness bound of one-step-off mode: experience from too old a policy is dropped first, so
    # it shapes neither its group's baseline nor the zero-variance test.
    fresh = [i for i, c in enumerate(completions) if learner_version - c.policy_version <= max_staleness]
    metrics: dict[str, float] = {"data/samples_stale": float(len(completions) - len(fresh))}
    group_ids = [completions[i].group_id for i in fresh]
    keep = torch.ones(len(fresh), dtype=torch.bool)
    if grpo.filter_zero_variance:
        keep, filter_metrics = zero_variance_mask(shaped[fresh], group_ids)
        metrics.update({f"data/{k}": v for k, v in filter_metrics.items()})
    advantages, adv_metrics = compute_advantages(shaped[fresh], group_ids, grpo.advantage_estimator, grpo.std_eps)
    per_token: list = [None] * len(fresh)
    if grpo.credit == "box":
        picked = [completions[i] for i in fresh]
        per_token, credit_metrics = box_token_advantages(
            [c.text for c in picked], [c.token_ids for c in picked], advantages.tolist(), group_ids,
            [targets[c.prompt_index] for c in picked], tokenizer, grpo.advantage_estimator, grpo.std_eps)
        adv_metrics.update(credit_metrics)
    items = [TrainItem(prompt=batch.prompts[completions[i].prompt_index], completion=completions[i],
                       advantage=float(advantages[k]), token_advantages=per_token[k], reward=float(shaped[i]))
             for k, i in enumerate(fresh) if keep[k]]

    metrics.update({f"adv/{k}": v for k, v in adv_metrics.items()})
    metrics.update(_reward_metrics(results, rewards, lengths, completions))
    metrics["perf/tokens_per_s"] = batch.tokens_per_second
    metrics.update({f"time/rollout_{name}": seconds for name, seconds in batch.timing.items()})
    metrics.update(prompt_metrics(batch.prompts))
    metrics["policy/staleness_mean"] = float(sum(learner_version - c.policy_version for c in completions)
                                             / max(len(completions), 1))
    return ScoredBatch(items, [r.total for r in results], [dict(r.terms) for r in results], metrics)


def prompt_metrics(prompts: Sequence[PromptInputs]) -> dict[str, float]:
    """Mean prompt length in tokens (`prompt_len/mean`) and its video placeholder tokens
    (`prompt_len/video_mean`): the rest is instruction and chat template (rollout.instruction)."""
    if not prompts:
        return {}
    lengths = [p.input_ids.numel() for p in prompts]
    out = {"prompt_len/mean": sum(lengths) / len(prompts)}
    ids = [p.extra.get("video_token_id") for p in prompts]  # set by every model family's build_prompt
    if all(i is not None for i in ids):
        out["prompt_len/video_mean"] = sum(int((p.input_ids == i).sum()) for p, i in zip(prompts, ids)) / len(prompts)
    return out


def _reward_metrics(results, rewards: torch.Tensor, lengths: torch.Tensor, completions) -> dict[str, float]:
    out = {"reward/mean": float(rewards.mean()), "reward/std": float(rewards.std()) if len(rewards) > 1 else 0.0,
           "reward/parsed_frac": sum(r.parsed for r in results) / len(results),
           "reward/runaway_frac": sum(r.runaway for r in results) / len(results),
           "response_len/mean": float(lengths.mean()),
           "response_len/clipped_frac": sum(c.finish_reason == "length" for c in completions) / len(completions)}
    for term in results[0].terms:
        out[f"reward/{term}"] = sum(r.terms[term] for r in results) / len(results)
    return out


def policy_tokenizer(model_dir: str):
    """The policy's tokenizer (grpo.credit=box reads each token's characters with it)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)
