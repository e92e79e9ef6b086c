"""The SFT cross-entropy step on the learner: its loss is the token-mean cross-entropy of a plain HF
forward, micro-batching and padding do not change it, and a step lowers it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from _learner_helpers import grpo_config, hf_reference_logprobs, learner_config
from trainer.learner.learner import Learner
from trainer.learner.sft import sft_step


def _learner(tiny_model, **overrides) -> Learner:
    return Learner(tiny_model, learner_config(**{"lr": 1e-3, **overrides}), grpo_config(temperature=1.0))


def _params(learner) -> dict[str, torch.Tensor]:
    return learner.exported_state()


def _hf_cross_entropy(model_dir, items) -> float:
    """-sum of answer-token log-probs over all items / their token count, from the stock HF forward
    with full logits (no shared vision pass, no LM-head gather), one unpadded row at a time."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model_dir), attn_implementation="sdpa").eval()
    per_item = [hf_reference_logprobs(model, item) for item in items]
    total = -float(sum(lp.sum() for lp in per_item))
    count = sum(len(lp) for lp in per_item)
    return total / count


def test_sft_loss_is_the_token_mean_cross_entropy_of_the_answers(tiny_model, items):
    metrics = sft_step(_learner(tiny_model, micro_batch_size=3), items)
    assert metrics["tokens"] == sum(2 + k for k in range(7)) == 35
    assert metrics["loss"] == pytest.approx(_hf_cross_entropy(tiny_model, items), abs=1e-5)


def test_an_sft_step_lowers_the_loss_on_the_same_batch(tiny_model, items):
    learner = _learner(tiny_model, micro_batch_size=4)
    first = sft_step(learner, items)["loss"]
    second = sft_step(learner, items)["loss"]
    assert second < first - 1e-3, (first, second)


def test_micro_batches_accumulate_to_the_one_batch_step(tiny_model, items):
    small, big = _learner(tiny_model, micro_batch_size=2), _learner(tiny_model, micro_batch_size=7)
    m_small, m_big = sft_step(small, items), sft_step(big, items)
    assert (m_small["micro_batches"], m_big["micro_batches"]) == (4, 1)
    assert m_small["loss"] == pytest.approx(m_big["loss"], abs=1e-6)
    after_small, after_big = _params(small), _params(big)
    for name, value in after_big.items():
        torch.testing.assert_close(after_small[name], value, atol=1e-6, rtol=0, msg=name)


def test_padding_copies_weigh_nothing_in_the_sft_step(tiny_model, items):
    padded = items + [dataclasses.replace(items[5], is_padding=True)]
    plain, with_pad = _learner(tiny_model, micro_batch_size=3), _learner(tiny_model, micro_batch_size=3)
    m_plain, m_pad = sft_step(plain, items), sft_step(with_pad, padded)
    assert (m_pad["tokens"], m_pad["sequences"]) == (35, 7)
    assert m_pad["loss"] == pytest.approx(m_plain["loss"], abs=1e-6)
    after_plain = _params(plain)
    for name, value in _params(with_pad).items():
        torch.testing.assert_close(value, after_plain[name], atol=1e-6, rtol=0, msg=name)


def test_sft_step_refuses_a_tempered_learner(tiny_model, items):
    learner = Learner(tiny_model, learner_config(), grpo_config(temperature=0.7))
    with pytest.raises(ValueError, match="temperature 1.0"):
        sft_step(learner, items)
