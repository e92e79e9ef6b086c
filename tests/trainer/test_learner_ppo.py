"""PPO mini-batches and epochs in Learner.step, against a PPO loop written out by hand here.

The reference below shares nothing with the learner: the stock HF forward over full logits, the
clipped surrogate and token-mean normalisation spelled out per mini-batch, torch's own AdamW and
gradient clipping, pi_old taken once before any update, and the clipped tokens counted directly.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from _learner_helpers import hf_reference_logprobs, learner_config, grpo_config
from rollout.types import Completion
from trainer.learner.batch import TrainItem
from trainer.learner.learner import Learner

CLIP = 0.05  # small, so that one AdamW step of lr 1e-2 moves some ratios past it


def reference_ppo(model_dir, items, mini_batches, epochs, *, lr=1e-2, eps=1e-3, weight_decay=1e-2, clip=CLIP):
    """Weights after the updates, and per (epoch, mini-batch) the clipped-token counts and tokens."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir), attn_implementation="sdpa").train()
    params = [p for p in model.parameters()]
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                                   {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.999), eps=eps)
    old = [hf_reference_logprobs(model, item).float() for item in items]  # pi_old: before any update
    passes = []
    for _ in range(epochs):
        for mini in mini_batches:
            tokens = sum(len(items[i].completion.token_ids) for i in mini)
            loss, high, low = 0.0, 0, 0
            for i in mini:
                advantage = items[i].advantage
                ratio = torch.exp(hf_reference_logprobs(model, items[i], grad=True) - old[i])
                surrogate = torch.maximum(-advantage * ratio, -advantage * ratio.clamp(1 - clip, 1 + clip))
                loss = loss + surrogate.sum() / tokens
                high += int(((ratio > 1 + clip) & (advantage > 0)).sum())
                low += int(((ratio < 1 - clip) & (advantage < 0)).sum())
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            passes.append({"high": high, "low": low, "tokens": tokens})
    return {name: p.detach().clone() for name, p in model.named_parameters()}, passes


def _learner_step(model_dir, items, **grpo_kw):
    learner = Learner(model_dir, learner_config(micro_batch_size=2),
                      grpo_config(clip_ratio_low=CLIP, clip_ratio_high=CLIP, group_size=4, **grpo_kw))
    metrics = learner.step(items)
    return dict(learner.policy.module.policy.named_parameters()), metrics


def _assert_same_weights(got, expected):
    assert set(got) == set(expected)
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name].detach(), tensor, atol=2e-5, rtol=0, msg=name)


def test_one_mini_batch_and_one_epoch_is_one_update_on_the_whole_batch(tiny_model, items):
    # 7 completions, mini-batches of 2 prompts x 4 = 8 completions: one mini-batch
    weights, metrics = _learner_step(tiny_model, items, ppo_mini_batch_size=2, ppo_epochs=1)
    expected, passes = reference_ppo(tiny_model, items, [range(7)], epochs=1)
    _assert_same_weights(weights, expected)
    assert metrics["optimizer_steps"] == 1 and metrics["micro_batches"] == 4
    # a single update starts at pi_old: the ratio is 1 and nothing is clipped
    assert passes == [{"high": 0, "low": 0, "tokens": 35}]
    assert metrics["clip_frac_high"] == metrics["clip_frac_low"] == 0.0 and metrics["ratio_mean"] == pytest.approx(1.0)


def test_the_second_mini_batch_is_clipped_against_pi_old_of_before_the_first(tiny_model, items):
    # mini-batches of 1 prompt x 4 completions: items 0-3 (prompt a) then 4-6 (prompt b)
    weights, metrics = _learner_step(tiny_model, items, ppo_mini_batch_size=1, ppo_epochs=1)
    expected, passes = reference_ppo(tiny_model, items, [range(4), range(4, 7)], epochs=1)
    _assert_same_weights(weights, expected)
    assert metrics["optimizer_steps"] == 2
    first, second = passes
    assert first["high"] == first["low"] == 0  # no update yet: ratio exactly 1
    assert second["high"] + second["low"] > 0  # the update on prompt a moved prompt b's ratios past the clip
    assert metrics["clip_frac_high"] == pytest.approx(second["high"] / 35)
    assert metrics["clip_frac_low"] == pytest.approx(second["low"] / 35)
    assert metrics["approx_kl_old"] > 0 and metrics["ratio_mean"] != pytest.approx(1.0, abs=1e-6)


def test_epochs_repeat_the_mini_batches_with_the_same_pi_old(tiny_model, items):
    weights, metrics = _learner_step(tiny_model, items, ppo_mini_batch_size=1, ppo_epochs=2)
    expected, passes = reference_ppo(tiny_model, items, [range(4), range(4, 7)], epochs=2)
    _assert_same_weights(weights, expected)
    assert metrics["optimizer_steps"] == 4 and metrics["micro_batches"] == 2 * (2 + 2)
    clipped_high = sum(p["high"] for p in passes)
    assert sum(p["tokens"] for p in passes) == 70 and clipped_high > 0
    assert metrics["clip_frac_high"] == pytest.approx(clipped_high / 70)
    assert metrics["clip_frac_low"] == pytest.approx(sum(p["low"] for p in passes) / 70)


def test_mini_batches_count_the_step_completions_left_after_filtering(tiny_model, items):
    # 5 completions with mini-batches of 1 prompt x 2: ceil(5 / 2) = 3 mini-batches of 2, 2 and 1 items
    learner = Learner(tiny_model, learner_config(micro_batch_size=8), grpo_config(group_size=2, ppo_mini_batch_size=1))
    metrics = learner.step(items[:5])
    assert metrics["optimizer_steps"] == 3 and metrics["micro_batches"] == 3


def test_rollout_logprobs_at_a_sampling_temperature_give_a_ratio_of_one(tiny_model, items):
    """The HF engine samples at temperature 0.7 and reports log-probs of that distribution; the
    learner scoring at the same temperature finds the ratio 1 (and at temperature 1 it does not)."""
    from rollout.engines import SamplingConfig
    from rollout.engines.hf import HFEngine
    from rollout.models import get_family

    family = get_family("qwen2_5_vl")
    engine = HFEngine(str(tiny_model), family=family, processor=family.load_processor(tiny_model), device="cpu")
    prompt = items[0].prompt
    sampled = engine.generate([prompt], 4, SamplingConfig(temperature=0.7, max_new_tokens=6, seed=0))[0]
    sampled_items = [TrainItem(prompt, Completion(prompt_index=0, group_id="a", token_ids=s.token_ids, text=s.text,
                                                  logprobs=s.logprobs, finish_reason=s.finish_reason, policy_version=0),
                               advantage=(-1.0) ** k) for k, s in enumerate(sampled)]

    def first_update(temperature):
        learner = Learner(tiny_model, learner_config(old_logprobs="rollout", micro_batch_size=4),
                          grpo_config(temperature=temperature, max_completion_length=6))
        return learner.step(sampled_items)

    same = first_update(0.7)
    assert same["ratio_mean"] == pytest.approx(1.0, abs=1e-5) and same["approx_kl_old"] < 1e-9
    assert same["clip_frac_high"] == same["clip_frac_low"] == 0.0
    assert abs(first_update(1.0)["ratio_mean"] - 1.0) > 1e-3  # the tempered log-probs are not the raw ones


def test_rollout_logprobs_of_the_wrong_length_are_refused(tiny_model, items):
    short = [dataclasses.replace(it, completion=dataclasses.replace(it.completion, logprobs=[-1.0]))
             for it in items]
    learner = Learner(tiny_model, learner_config(old_logprobs="rollout"), grpo_config())
    with pytest.raises(ValueError, match="2 tokens and 1 log-probs"):
        learner.step(short)
