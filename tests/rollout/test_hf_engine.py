"""The HF engine: G samples per prompt, log-probs a forward pass agrees with, stops, blocked tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rollout.engines import SamplingConfig
from rollout.engines.hf import HFEngine
from rollout.prompting import build_prompt_inputs


@pytest.fixture(scope="module")
def engine(tiny_model, family, processor):
    return HFEngine(tiny_model, family=family, processor=processor)


@pytest.fixture(scope="module")
def prompt(samples, family, processor, settings):
    return build_prompt_inputs(samples[0], family=family, processor=processor, settings=settings)


def test_g_completions_per_prompt_with_logprobs_of_a_separate_forward_pass(engine, prompt, tiny_model, reference):
    out = engine.generate([prompt, prompt], 4, SamplingConfig(temperature=1.0, max_new_tokens=20, seed=0))
    assert [len(group) for group in out] == [4, 4]
    model = reference.load_model(tiny_model)  # a second copy, eager attention: nothing shared with the engine
    for seq in out[0] + out[1]:
        assert len(seq.logprobs) == len(seq.token_ids) > 0
        np.testing.assert_allclose(seq.logprobs, reference.logprobs(model, prompt, seq.token_ids), atol=1e-4)
    # the 4 samples of a group differ (a random model at temperature 1 over ~2000 tokens)
    assert len({tuple(s.token_ids) for s in out[0]}) == 4


def test_logprobs_are_of_the_tempered_distribution_over_the_whole_vocabulary(engine, prompt, tiny_model, reference):
    """At temperature 0.3 the log-probs are log softmax(logits / 0.3), what the learner computes at
    grpo.temperature 0.3; top_p's renormalisation over the nucleus is not in them."""
    out = engine.generate([prompt], 2, SamplingConfig(temperature=0.3, top_p=0.5, max_new_tokens=8, seed=1))
    model = reference.load_model(tiny_model)
    for seq in out[0]:
        np.testing.assert_allclose(seq.logprobs, reference.logprobs(model, prompt, seq.token_ids, 0.3), atol=1e-4)
        assert np.abs(np.array(seq.logprobs) - reference.logprobs(model, prompt, seq.token_ids)).max() > 1e-2
    greedy = engine.generate([prompt], 1, SamplingConfig(temperature=0.0, max_new_tokens=8))[0][0]
    np.testing.assert_allclose(greedy.logprobs, reference.logprobs(model, prompt, greedy.token_ids), atol=1e-4)


def test_same_seed_gives_same_completions_and_another_seed_differs(engine, prompt):
    sampling = SamplingConfig(max_new_tokens=12, seed=7)
    a = engine.generate([prompt], 3, sampling)[0]
    b = engine.generate([prompt], 3, sampling)[0]
    c = engine.generate([prompt], 3, SamplingConfig(max_new_tokens=12, seed=8))[0]
    assert [s.token_ids for s in a] == [s.token_ids for s in b]
    assert [s.token_ids for s in a] != [s.token_ids for s in c]


def test_length_finish_when_max_new_tokens_is_reached(engine, prompt):
    out = engine.generate([prompt], 3, SamplingConfig(max_new_tokens=3, seed=2))[0]
    stop = set(engine.stop)
    for seq in out:
        if seq.finish_reason == "length":
            assert len(seq.token_ids) == 3 and not stop & set(seq.token_ids)
        else:
            assert seq.token_ids[-1] in stop


def _bias_lm_head_towards(model, token_ids, processor, scale=50.0):
    """Make `token_ids` dominate every next-token distribution (a direction every hidden state shares)."""
    with torch.no_grad():
        weight = model.lm_head.weight
        weight.zero_()
        norm_weight = model.model.language_model.norm.weight
        weight[token_ids] = scale * torch.sign(norm_weight)[None, :] / norm_weight.numel() ** 0.5


def test_stop_token_ends_the_completion_and_is_kept(tiny_model, family, processor, prompt):
    engine = HFEngine(tiny_model, family=family, processor=processor)
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    _bias_lm_head_towards(engine.model, [im_end], processor)
    out = engine.generate([prompt], 2, SamplingConfig(max_new_tokens=10, seed=0))[0]
    for seq in out:
        assert seq.finish_reason == "stop"
        assert seq.token_ids == [im_end] and seq.text == ""


def test_vision_tokens_are_never_generated_even_when_most_likely(tiny_model, family, processor, prompt, reference):
    engine = HFEngine(tiny_model, family=family, processor=processor)
    vision = [processor.tokenizer.convert_tokens_to_ids(t) for t in
              ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")]
    assert sorted(vision) == engine.blocked
    _bias_lm_head_towards(engine.model, vision, processor)
    # sanity: without blocking, the model would put nearly all its mass on vision tokens
    probe = reference.logprobs(engine.model, prompt, [vision[0]])
    assert probe[0] > np.log(0.1)
    out = engine.generate([prompt], 4, SamplingConfig(max_new_tokens=16, seed=0))[0]
    for seq in out:
        assert not set(seq.token_ids) & set(vision)
        assert len(seq.token_ids) > 0


def test_load_weights_rejects_unknown_names_and_wrong_shapes(tiny_model, family, processor):
    engine = HFEngine(tiny_model, family=family, processor=processor)
    with pytest.raises(KeyError, match="not_a_weight"):
        engine.load_weights([("not_a_weight", torch.zeros(1))], 1)
    with pytest.raises(ValueError, match="lm_head.weight"):
        engine.load_weights([("lm_head.weight", torch.zeros(3, 3))], 1)
    assert engine.policy_version == 0


def test_auto_engine_is_hf_without_cuda_and_vllm_is_refused_here():
    from infra.errors import ConfigError
    from rollout.config import RolloutConfig
    from rollout.engines import select_engine

    if torch.cuda.is_available():
        pytest.skip("a GPU machine may legitimately pick vllm")
    assert select_engine(RolloutConfig(engine="auto")) == "hf"
    assert select_engine("hf") == "hf"
    with pytest.raises(ConfigError, match="rollout.engine=vllm"):
        select_engine("vllm")


def test_prompts_of_one_call_are_left_padded_together_and_answer_as_alone(engine, samples, family, processor, settings,
                                                                          tiny_model, reference):
    from rollout.prompting import PromptOptions

    queries = ["a dog", "the red square moving right across the whole frame and then far away", "a cup on a table"]
    prompts = [build_prompt_inputs(samples[i], family=family, processor=processor, settings=settings,
                                   options=PromptOptions(query=q)) for i, q in enumerate(queries)]
    assert len({p.input_ids.numel() for p in prompts}) == 3  # so the batch needs padding
    greedy = SamplingConfig(temperature=0.0, max_new_tokens=12, seed=0)
    together = engine.generate(prompts, 1, greedy)
    alone = [engine.generate([p], 1, greedy)[0] for p in prompts]
    assert [g[0].token_ids for g in together] == [g[0].token_ids for g in alone]
    sampled = engine.generate(prompts, 2, SamplingConfig(temperature=1.0, max_new_tokens=12, seed=3))
    model = reference.load_model(tiny_model)
    for prompt, group in zip(prompts, sampled):
        assert len(group) == 2
        for seq in group:  # the padded batch's log-probs are those of an unpadded forward pass
            np.testing.assert_allclose(seq.logprobs, reference.logprobs(model, prompt, seq.token_ids), atol=1e-4)
