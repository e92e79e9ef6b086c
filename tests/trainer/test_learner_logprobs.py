"""Completion log-probs of a video prompt: batched == unbatched == a plain HF forward built here."""

from __future__ import annotations

import copy

import pytest
import torch

from trainer.learner.batch import collate
from trainer.learner.logprobs import completion_logprobs

from _learner_helpers import hf_reference_logprobs


@pytest.fixture(scope="module")
def model(tiny_model):
    from transformers import Qwen2_5_VLForConditionalGeneration

    return Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tiny_model), attn_implementation="sdpa").eval()


def _ids(model):
    return model.config.get_text_config().pad_token_id, model.config.video_token_id


def _logprobs(model, items, temperature=1.0, with_entropy=False):
    with torch.no_grad():
        return completion_logprobs(model, collate(items, *_ids(model)), temperature, with_entropy)


def test_logprobs_equal_a_plain_hf_forward(model, items):
    for item in (items[0], items[6]):
        logp, _ = _logprobs(model, [item])
        n = len(item.completion.token_ids)
        torch.testing.assert_close(logp[0, :n].double(), hf_reference_logprobs(model, item), atol=1e-5, rtol=0)


def test_temperature_scores_the_tempered_distribution(model, items):
    logp, _ = _logprobs(model, [items[3]], temperature=0.7)
    torch.testing.assert_close(logp[0, :5].double(), hf_reference_logprobs(model, items[3], 0.7), atol=1e-5, rtol=0)


def test_batched_logprobs_equal_unbatched(model, items):
    # rows mix two videos of different grids, prompt lengths and completion lengths (right padding)
    batched, entropy = _logprobs(model, items, with_entropy=True)
    for b, item in enumerate(items):
        alone, alone_entropy = _logprobs(model, [item], with_entropy=True)
        n = len(item.completion.token_ids)
        torch.testing.assert_close(batched[b, :n], alone[0, :n], atol=1e-5, rtol=0)
        torch.testing.assert_close(entropy[b, :n], alone_entropy[0, :n], atol=1e-5, rtol=0)
        assert batched[b, n:].abs().sum() == 0  # nothing past the completion


def test_shared_prompt_is_encoded_once_with_the_same_result(model, items):
    shared = items[:4]  # one PromptInputs object behind all four
    copies = [copy.copy(it) for it in shared]
    for it in copies:
        it.prompt = copy.deepcopy(it.prompt)
    batch_shared, batch_copies = collate(shared, *_ids(model)), collate(copies, *_ids(model))
    assert batch_shared.video_grid_thw.shape[0] == 1 and batch_copies.video_grid_thw.shape[0] == 4
    torch.testing.assert_close(_logprobs(model, shared)[0], _logprobs(model, copies)[0], atol=1e-6, rtol=0)


def test_entropy_is_that_of_the_predicting_distribution(model, items):
    item = items[1]
    _, entropy = _logprobs(model, [item], with_entropy=True)
    prompt = item.prompt
    ids = torch.cat([prompt.input_ids, torch.tensor(item.completion.token_ids)]).unsqueeze(0)
    types = torch.zeros_like(ids, dtype=torch.int32)
    types[0, : prompt.input_ids.numel()] = (prompt.input_ids == model.config.video_token_id).int() * 2
    with torch.no_grad():
        logits = model(input_ids=ids, mm_token_type_ids=types, pixel_values_videos=prompt.pixel_values_videos,
                       video_grid_thw=prompt.video_grid_thw,
                       second_per_grid_ts=torch.tensor([prompt.second_per_grid_ts])).logits[0].double()
    start = prompt.input_ids.numel() - 1
    p = torch.softmax(logits[start:start + 3], dim=-1)
    expected = -(p * torch.log(p)).sum(-1)  # H = -sum p log p
    torch.testing.assert_close(entropy[0, :3].double(), expected, atol=1e-4, rtol=0)


def test_a_video_token_inside_a_completion_is_refused(model, items):
    bad = copy.copy(items[0])
    bad.completion = copy.copy(bad.completion)
    bad.completion.token_ids = [25, model.config.video_token_id]
    bad.completion.logprobs = [-1.0, -1.0]
    with pytest.raises(ValueError, match="video placeholder"):
        collate([bad], *_ids(model))
