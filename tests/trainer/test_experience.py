"""From scored completions to training items: rewards, filters, staleness and advantages by hand."""

from __future__ import annotations

import math

import pytest
import torch

from infra.data.sample import GroundingSample
from rewards.client import RewardClientConfig, build_reward_client
from rollout.types import Completion, PromptInputs, RolloutBatch
from trainer.experience import make_experience
from trainer.grpo import GRPOConfig

PERFECT = "<think>x</think><answer>0 to 10</answer>"   # VTG: tIoU 1 + format 1 = 2
HALF = "<think>x</think><answer>5 to 10</answer>"      # tIoU 5/10 + format 1 = 1.5
GARBAGE = "no answer at all"                              # 0


def _sample(sample_id: str) -> GroundingSample:
    return GroundingSample(id=sample_id, video="v.mp4", fps=5.0, frame_count=100, width=160, height=120,
                           query="the red square", span_frames=(0, 50), span_seconds=(0.0, 10.0))


def _prompt(sample_id: str) -> PromptInputs:
    return PromptInputs(sample_id=sample_id, input_ids=torch.zeros(3, dtype=torch.long),
                        pixel_values_videos=torch.zeros(4, 2), video_grid_thw=torch.ones(1, 3, dtype=torch.long),
                        second_per_grid_ts=1.0, frame_timestamps=[0.0], frame_size=(112, 84),
                        scale_to_original=(160 / 112, 120 / 84), task="vtg")


def _batch(texts_by_group: list[list[str]], versions: list[list[int]]) -> RolloutBatch:
    completions = [Completion(prompt_index=g, group_id=f"step0/prompt{g}", token_ids=[1] * (3 + i), text=text,
                              logprobs=[0.0] * (3 + i), finish_reason="stop", policy_version=versions[g][i])
                   for g, texts in enumerate(texts_by_group) for i, text in enumerate(texts)]
    return RolloutBatch(prompts=[_prompt(f"s{g}") for g in range(len(texts_by_group))], completions=completions)


@pytest.fixture
def client():
    scorer = build_reward_client(RewardClientConfig(mode="local"))
    yield scorer
    scorer.close()


def test_advantages_rewards_and_the_zero_variance_filter_by_hand(client):
    batch = _batch([[PERFECT, HALF], [GARBAGE, GARBAGE]], versions=[[3, 3], [3, 3]])
    scored = make_experience(batch, [_sample("s0"), _sample("s1")], client, "vtg", GRPOConfig(group_size=2),
                             learner_version=3, max_staleness=1)
    assert scored.rewards == pytest.approx([2.0, 1.5, 0.0, 0.0])
    # Group s0: mean 1.75, sample std sqrt((0.25^2 + 0.25^2) / 1) = 0.353553 -> A = +-0.25 / 0.353553.
    # Group s1 has equal rewards: dropped by the filter.
    assert [it.completion.text for it in scored.items] == [PERFECT, HALF]
    assert [it.advantage for it in scored.items] == pytest.approx([0.25 / math.sqrt(0.125), -0.25 / math.sqrt(0.125)],
                                                                 rel=1e-5)
    assert [it.prompt.sample_id for it in scored.items] == ["s0", "s0"]
    assert scored.metrics["reward/mean"] == pytest.approx(3.5 / 4)
    assert scored.metrics["reward/tiou"] == pytest.approx(1.5 / 4)
    assert scored.metrics["reward/parsed_frac"] == pytest.approx(0.5)
    assert scored.metrics["reward/runaway_frac"] == 0.0
    assert scored.metrics["data/groups_zero_variance"] == 1


def test_a_runaway_completion_scores_zero_is_counted_and_trains_as_the_worst_of_its_group(client):
    runaway = PERFECT + " " * 100_000  # a perfect answer, but over rewards.parsing.MAX_COMPLETION_CHARS
    batch = _batch([[PERFECT, runaway, HALF, GARBAGE]], versions=[[3, 3, 3, 3]])
    scored = make_experience(batch, [_sample("s0")], client, "vtg", GRPOConfig(group_size=4),
                             learner_version=3, max_staleness=1)
    assert scored.rewards == pytest.approx([2.0, 0.0, 1.5, 0.0])
    assert scored.metrics["reward/runaway_frac"] == pytest.approx(0.25)
    assert scored.metrics["reward/parsed_frac"] == pytest.approx(0.5)
    assert len(scored.items) == 4 and scored.items[1].advantage < 0


def test_experience_older_than_the_staleness_bound_is_dropped_before_the_group_baseline(client):
    batch = _batch([[PERFECT, HALF, GARBAGE]], versions=[[5, 4, 3]])
    scored = make_experience(batch, [_sample("s0")], client, "vtg", GRPOConfig(group_size=3),
                             learner_version=5, max_staleness=1)
    assert [it.completion.policy_version for it in scored.items] == [5, 4]  # version 3 is 2 behind
    # The baseline is that of the two fresh rewards 2.0 and 1.5 (mean 1.75, sample std
    # sqrt(2 * 0.25^2 / 1) = sqrt(0.125)), not of all three (mean 7/6 would give +1.04 and +0.41 / 1.04).
    assert [it.advantage for it in scored.items] == pytest.approx([0.25 / math.sqrt(0.125), -0.25 / math.sqrt(0.125)],
                                                                 rel=1e-5)
    assert scored.metrics["data/samples_stale"] == 1
    assert scored.metrics["policy/staleness_mean"] == pytest.approx((0 + 1 + 2) / 3)


def test_a_step_whose_prompts_were_all_left_out_scores_to_nothing():
    """data.on_bad_video=skip may leave a step without prompts: no items, no reward metrics, no error."""
    scored = make_experience(RolloutBatch(prompts=[], completions=[]), [], build_reward_client(RewardClientConfig()),
                             "vtg", GRPOConfig(), learner_version=0, max_staleness=1)
    assert (scored.items, scored.rewards, scored.metrics) == ([], [], {})


def test_a_group_left_with_equal_rewards_after_the_stale_drop_is_filtered(client):
    # fresh rewards 2.0 and 2.0 (the stale 0.0 would have made the group look informative)
    batch = _batch([[PERFECT, PERFECT, GARBAGE], [PERFECT, HALF, HALF]], versions=[[5, 5, 3], [5, 5, 5]])
    scored = make_experience(batch, [_sample("s0"), _sample("s1")], client, "vtg", GRPOConfig(group_size=3),
                             learner_version=5, max_staleness=1)
    assert [it.prompt.sample_id for it in scored.items] == ["s1", "s1", "s1"]
    assert scored.metrics["data/groups_zero_variance"] == 1 and scored.metrics["data/samples_stale"] == 1
    # s1: rewards 2, 1.5, 1.5: mean 5/3, deviations 1/3, -1/6, -1/6, sample std sqrt((1/9 + 2/36) / 2) = sqrt(1/12)
    std = math.sqrt(1 / 12)
    assert [it.advantage for it in scored.items] == pytest.approx([(1 / 3) / std, (-1 / 6) / std, (-1 / 6) / std],
                                                                 rel=1e-5)


def test_prompt_lengths_and_their_video_tokens_are_logged(client):
    batch = _batch([[PERFECT, HALF], [HALF, HALF]], versions=[[0, 0], [0, 0]])
    batch.prompts[0].input_ids = torch.tensor([5, 9, 9, 9, 7])
    batch.prompts[1].input_ids = torch.tensor([5, 9, 7])
    for prompt in batch.prompts:
        prompt.extra["video_token_id"] = 9
    scored = make_experience(batch, [_sample("s0"), _sample("s1")], client, "vtg", GRPOConfig(group_size=2),
                             learner_version=0, max_staleness=1)
    assert scored.metrics["prompt_len/mean"] == 4.0  # (5 + 3) / 2
    assert scored.metrics["prompt_len/video_mean"] == 2.0  # (3 + 1) / 2


def test_answers_are_found_by_sample_id_when_a_skipped_sample_shifted_the_prompt_indices():
    """The pool renumbers prompt_index among the prompts it kept: with s1 skipped, s2's prompt is
    index 1. Callers holding [s0, s1, s2] must get s2's answers under s2, and nothing for s1."""
    from rollout.types import SkippedPrompt

    batch = _batch([["a0", "b0"], ["a2"]], [[0, 0], [0]])
    batch.prompts[1] = _prompt("s2")
    batch.skipped = [SkippedPrompt("s1", "v1.mp4", "is truncated")]
    answers = batch.answers_by_sample()
    assert {sid: (prompt.sample_id, texts) for sid, (prompt, texts) in answers.items()} == \
        {"s0": ("s0", ["a0", "b0"]), "s2": ("s2", ["a2"])}
