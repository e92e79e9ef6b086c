"""SFT items: the prompt is the one the rollout worker builds, the answer scores the maximum reward
and ends on the token that stops generation."""

from __future__ import annotations

import pytest
import torch

from rewards import score_batch
from rewards.targets import build_target
from rollout.config import RolloutConfig
from rollout.engines import SamplingConfig
from rollout.worker import PromptRequest, RolloutWorker
from trainer.sft import AnswerItems

MAX_REWARD = {"vtg": 2.0, "stvg-r1": 3.0}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from infra.data.synth import generate, load_synthetic

    out = tmp_path_factory.mktemp("synthetic")
    generate(out, num_videos=3, seed=5, width=112, height=84, fps=5.0)
    return load_synthetic(out)


@pytest.mark.parametrize("task", ["vtg", "stvg-r1", "stvg-o1"])
def test_sft_prompt_is_the_rollout_workers_prompt(tiny_model, synthetic, task):
    config = RolloutConfig(engine="hf", task=task, fps=0.5, max_frames=6, max_long_side=112)
    worker = RolloutWorker(str(tiny_model), config)
    answers = AnswerItems(str(tiny_model), config, task)
    sample = synthetic[0]
    built = worker.generate([PromptRequest(sample, "g", 0)], 1, SamplingConfig(max_new_tokens=1, seed=0))[0].prompt
    item = answers.item(sample)
    assert torch.equal(item.prompt.input_ids, built.input_ids)
    assert torch.equal(item.prompt.pixel_values_videos, built.pixel_values_videos)
    assert torch.equal(item.prompt.video_grid_thw, built.video_grid_thw)
    assert item.prompt.second_per_grid_ts == built.second_per_grid_ts
    assert answers.item(sample).prompt is item.prompt  # built once, then cached


def test_a_sample_given_another_video_gets_that_videos_prompt_not_the_cached_one(tiny_model, synthetic):
    """The learning bench's video-swap control evaluates samples with another sample's video: the
    prompt cache must not hand back the frames of the sample's own video."""
    import dataclasses

    config = RolloutConfig(engine="hf", task="vtg", fps=0.5, max_frames=6, max_long_side=112)
    answers = AnswerItems(str(tiny_model), config, "vtg")
    own, other = synthetic[0], synthetic[1]
    swapped = dataclasses.replace(own, video=other.video)
    assert not torch.equal(answers.prompt(own).pixel_values_videos, answers.prompt(swapped).pixel_values_videos)
    assert torch.equal(answers.prompt(swapped).pixel_values_videos, answers.prompt(other).pixel_values_videos)


@pytest.mark.parametrize("task", ["vtg", "stvg-r1"])
def test_sft_answer_tokens_score_the_maximum_and_end_the_turn(tiny_model, synthetic, task):
    answers = AnswerItems(str(tiny_model), RolloutConfig(engine="hf", task=task, fps=0.5, max_frames=6), task)
    tokenizer = answers.processor.tokenizer
    for sample in synthetic:
        completion = answers.item(sample).completion
        assert completion.token_ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
        text = tokenizer.decode(completion.token_ids, skip_special_tokens=True)
        assert text == completion.text
        target = build_target(task, sample, answers.item(sample).prompt.frame_size)
        # synthetic spans are whole frames at 5 fps: multiples of 0.2 s, exact at 2 decimals
        assert score_batch(task, [text], [target])[0].total == pytest.approx(MAX_REWARD[task], abs=1e-12)


def test_sft_and_rollout_prompts_share_the_compact_instruction(tiny_model, synthetic):
    config = RolloutConfig(engine="hf", task="stvg-o1", fps=0.5, max_frames=6, max_long_side=112, instruction="compact")
    sample = synthetic[0]
    built = RolloutWorker(str(tiny_model), config).generate([PromptRequest(sample, "g", 0)], 1,
                                                            SamplingConfig(max_new_tokens=1, seed=0))[0].prompt
    item = AnswerItems(str(tiny_model), config, "stvg-o1").item(sample)
    assert torch.equal(item.prompt.input_ids, built.input_ids)
    paper = AnswerItems(str(tiny_model), RolloutConfig(engine="hf", task="stvg-o1", fps=0.5, max_frames=6,
                                                       max_long_side=112), "stvg-o1").item(sample)
    assert item.prompt.input_ids.numel() < paper.prompt.input_ids.numel()
    text = AnswerItems(str(tiny_model), config, "stvg-o1").processor.tokenizer.decode(item.prompt.input_ids)
    assert f'Where and when is "{sample.query}"? Answer <time> ts - te </time>' in text
