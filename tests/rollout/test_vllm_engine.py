"""The vLLM engine (rollout/engines/vllm.py) against fake_vllm, a stand-in that follows vLLM 0.33's
public API and runs the checkpoint's own HF processor and model: the requests it builds, the
expansion vLLM makes of them, the log-probs it reads, greedy decoding, weight loading through the
worker extension, and the errors a processor mismatch or a failed request give."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rollout.engines import SamplingConfig
from rollout.prompting import build_prompt_inputs

FAKE_VLLM = Path(__file__).parent / "fake_vllm"
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")


@pytest.fixture(scope="module")
def vllm():
    """`import vllm` finds the stand-in for this module's tests, and nothing else afterwards."""
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(FAKE_VLLM))
    patch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine sets it; restored afterwards
    sys.modules.pop("vllm", None)
    import vllm

    assert Path(vllm.__file__).is_relative_to(FAKE_VLLM)
    yield vllm
    sys.modules.pop("vllm", None)
    patch.undo()


def make_engine(model_dir, family, processor):
    from rollout.engines.vllm import VLLMEngine

    return VLLMEngine(str(model_dir), family=family, processor=processor)


@pytest.fixture(scope="module")
def engine(vllm, tiny_model, family, processor):
    return make_engine(tiny_model, family, processor)


@pytest.fixture(scope="module")
def prompts(samples, family, processor, settings):
    return [build_prompt_inputs(s, family=family, processor=processor, settings=settings, keep_frames=True)
            for s in samples[:2]]


def last_call(llm, kind):
    return [call for call in llm.calls if call[0] == kind][-1]


def test_requests_hold_one_video_placeholder_and_the_frames_with_their_timing(engine, prompts, processor):
    engine.generate(prompts, 2, SamplingConfig(temperature=1.0, top_p=0.9, max_new_tokens=3, seed=5))
    _, requests, params = last_call(engine.llm, "generate")
    video = processor.video_token_id
    for request, prompt, p, i in zip(requests, prompts, params, range(2)):
        ids = prompt.input_ids.tolist()
        first, last = ids.index(video), len(ids) - 1 - ids[::-1].index(video)
        assert last - first + 1 == int(prompt.video_grid_thw.prod()) // 4 > 1  # one run of expanded placeholders
        assert request["prompt_token_ids"] == ids[:first + 1] + ids[last + 1:]
        frames, metadata = request["multi_modal_data"]["video"]
        assert frames is prompt.extra["frames"]
        times = prompt.frame_timestamps
        assert metadata["fps"] == pytest.approx((len(times) - 1) / (times[-1] - times[0]))
        assert metadata["total_num_frames"] == len(frames) == len(metadata["frames_indices"]) == len(times)
        assert (metadata["width"], metadata["height"]) == prompt.frame_size
        assert metadata["do_sample_frames"] is False
        assert request["mm_processor_kwargs"]["do_resize"] is False
        assert (p.n, p.temperature, p.top_p, p.max_tokens, p.logprobs, p.seed) == (2, 1.0, 0.9, 3, 0, 5 + i)
        tokenizer = processor.tokenizer
        assert set(p.stop_token_ids) == {tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        vision_ids = {tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}
        assert set(range(len(tokenizer))) - set(p.allowed_token_ids) == vision_ids


def test_vllms_processor_expands_the_request_to_the_learners_ids_and_time_grid(engine, prompts):
    for prompt in prompts:
        ids, video = engine.llm._process(engine._request(prompt))
        assert ids == prompt.input_ids.tolist()
        times = prompt.frame_timestamps
        # second_per_grid_ts = 2 frames per temporal step x the spacing of the sampled frames
        expected = 2 * (times[-1] - times[0]) / (len(times) - 1)
        assert float(video["second_per_grid_ts"][0]) == pytest.approx(expected, rel=1e-6)
        assert prompt.second_per_grid_ts == pytest.approx(expected, rel=1e-6)
        assert torch.equal(video["pixel_values_videos"], prompt.pixel_values_videos)


def test_logprobs_are_those_of_the_sampled_tokens_under_the_sampled_distribution(engine, prompts, tiny_model,
                                                                               reference, processor):
    # what the learner scores with learner.old_logprobs=rollout: softmax(logits / T) over the tokens
    # the sampler allows (vLLM's processed log-probs; top_p is 1, as the run config requires there)
    out = engine.generate(prompts[:1], 3, SamplingConfig(temperature=0.7, max_new_tokens=6, seed=1))
    model = reference.load_model(tiny_model)
    vision_ids = {processor.tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    assert len(out) == 1 and len(out[0]) == 3
    for seq in out[0]:
        assert len(seq.logprobs) == len(seq.token_ids) > 0
        assert not vision_ids & set(seq.token_ids)
        expected = reference.logprobs(model, prompts[0], seq.token_ids, temperature=0.7, excluded=vision_ids)
        np.testing.assert_allclose(seq.logprobs, expected, atol=1e-4)
        raw = reference.logprobs(model, prompts[0], seq.token_ids)
        assert np.abs(np.array(seq.logprobs) - raw).max() > 1e-3  # not the raw (temperature 1) ones


def test_greedy_asks_vllm_for_one_sequence_and_repeats_it(engine, prompts):
    out = engine.generate(prompts[:1], 3, SamplingConfig(temperature=0, max_new_tokens=5))
    _, _, params = last_call(engine.llm, "generate")
    assert params[0].n == 1  # vLLM refuses n > 1 at temperature 0
    assert len(out[0]) == 3
    assert out[0][0].token_ids == out[0][1].token_ids == out[0][2].token_ids
    assert out[0][0] is not out[0][1]


def test_the_sampled_tokens_entry_is_read_among_vllms_top_logprobs(engine, prompts, vllm):
    # logprobs=2 style entries: the sampled token first, then the top ones; vLLM may also put it
    # after them when it is among the top ones (a dict keyed by token id)
    step1 = {7: vllm.Logprob(-3.0, 5, "a"), 2: vllm.Logprob(-0.1, 1, "b"), 4: vllm.Logprob(-2.5, 2, "c")}
    step2 = {2: vllm.Logprob(-0.2, 1, "b"), 9: vllm.Logprob(-1.75, 2, "d")}
    output = vllm.CompletionOutput(index=0, text="ad", token_ids=[7, 9], cumulative_logprob=-4.75,
                                   logprobs=[step1, step2], finish_reason="length")
    seq = engine._sequence(prompts[0], output)
    assert seq.token_ids == [7, 9] and seq.logprobs == [-3.0, -1.75] and seq.finish_reason == "length"


@pytest.mark.parametrize("reason", ["abort", "error", None])
def test_a_completion_vllm_did_not_finish_is_an_error(engine, prompts, vllm, reason):
    output = vllm.CompletionOutput(index=0, text="", token_ids=[3], cumulative_logprob=-1.0,
                                   logprobs=[{3: vllm.Logprob(-1.0, 1)}], finish_reason=reason)
    with pytest.raises(RuntimeError, match=f"sample {prompts[0].sample_id!r} with finish_reason={reason!r}"):
        engine._sequence(prompts[0], output)


def test_missing_logprobs_are_an_error_not_a_shorter_list(engine, prompts, vllm):
    output = vllm.CompletionOutput(index=0, text="", token_ids=[3, 4], cumulative_logprob=None, logprobs=None,
                                   finish_reason="length")
    with pytest.raises(RuntimeError, match="0 log-prob entries for the 2 tokens"):
        engine._sequence(prompts[0], output)


def test_a_prompt_vllm_expands_differently_is_refused(engine, prompts):
    prompt = prompts[0]
    frames = prompt.extra["frames"]
    assert frames.shape[2] > 28
    # vLLM gets frames one patch column narrower than the ones the prompt was built from: its
    # processor then makes fewer video tokens than the learner will score
    narrower = dataclasses.replace(prompt, extra=dict(prompt.extra, frames=np.ascontiguousarray(frames[:, :, :-28])))
    with pytest.raises(RuntimeError, match=f"sample {prompt.sample_id!r} to different token ids"):
        engine.generate([narrower], 1, SamplingConfig(max_new_tokens=2, seed=0))


def test_weights_go_through_the_worker_extension_in_buckets_then_the_prefix_cache_resets(
        vllm, tiny_model, family, processor, prompts, reference, monkeypatch):
    import rollout.engines.vllm as vllm_engine

    engine = make_engine(tiny_model, family, processor)
    other = reference.load_model(tiny_model)  # the same model with other values
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for param in other.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    limit = 256 * 1024
    monkeypatch.setattr(vllm_engine, "LOAD_BUCKET_BYTES", limit)
    named = list(other.named_parameters())
    engine.load_weights(named, version=3)

    rpcs = [call for call in engine.llm.calls if call[0] == "collective_rpc"]
    assert {method for _, method, _ in rpcs} == {"stvg_load_weights"}
    buckets = [args[0] for _, _, args in rpcs]
    assert [name for bucket in buckets for name, _ in bucket] == [name for name, _ in named]
    nbytes = [[t.numel() * t.element_size() for _, t in bucket] for bucket in buckets]
    assert len(buckets) > 2
    for sizes in nbytes:  # a bucket is sent when its last tensor takes it to the limit, not before
        assert sum(sizes[:-1]) < limit
    assert all(sum(sizes) >= limit for sizes in nbytes[:-1])  # only the remainder may be smaller
    assert engine.llm.calls[-1] == ("reset_prefix_cache",)
    assert engine.policy_version == 3

    out = engine.generate(prompts[:1], 2, SamplingConfig(max_new_tokens=5, seed=3))
    vision_ids = {processor.tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS}
    for seq in out[0]:  # the model now samples with the new weights
        expected = reference.logprobs(other, prompts[0], seq.token_ids, excluded=vision_ids)
        np.testing.assert_allclose(seq.logprobs, expected, atol=1e-4)
