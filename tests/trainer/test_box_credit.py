"""grpo.credit=box: per-box scores, their group-relative advantages and the tokens that take them,
checked against values worked out by hand; the answer-credit path stays one advantage per answer."""

from __future__ import annotations

import math

import pytest
import torch

from infra.data.sample import GroundingSample
from infra.errors import ConfigError
from rewards.client import RewardClientConfig, build_reward_client
from rewards.parsing import o1_box_entries
from rollout.types import Completion, PromptInputs, RolloutBatch
from trainer.config import load_run_config
from trainer.experience import make_experience, policy_tokenizer
from trainer.grpo import GRPOConfig
from trainer.grpo.credit import box_scores, box_token_advantages
from trainer.learner.batch import TrainItem, collate

TARGET = {"t_start": 3, "t_end": 4, "boxes": [[3, 10, 10, 50, 50], [4, 20, 20, 60, 60]], "width": 100, "height": 100}
GOOD = ("<time> 3 - 4 </time> <think_bbox> 3. [10, 10, 50, 50], 4. [20, 20, 60, 60] </think_bbox> "
        "<pred_bbox> 3. [10, 10, 50, 50], 4. [20, 20, 60, 60] </pred_bbox>")
# Only the draft box of second 3 differs: [0, 0, 40, 40] against the GT [10, 10, 50, 50].
# IoU = 900 / 2300; enclosing box 50 x 50 = 2500, so GIoU = 900/2300 - 200/2500 = 0.311304;
# L1 = mean(10, 10, 10, 10) / 100 = 0.1; GIoU - L1 = 0.211304.
SHIFTED = GOOD.replace("3. [10, 10, 50, 50], 4.", "3. [0, 0, 40, 40], 4.", 1)
SHIFTED_SCORE = 900 / 2300 - 200 / 2500 - 0.1


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return policy_tokenizer(str(tiny_model))


def test_box_entries_name_each_box_and_its_characters():
    entries = o1_box_entries("say <time> 3 - 4 </time> <think_bbox> 3. [1, 2, 3, 4.5], 4. [5,6,7,8] </think_bbox>"
                             "<pred_bbox>3. [9, 9, 9, 9]</pred_bbox> bye")
    text = "say <time> 3 - 4 </time> <think_bbox> 3. [1, 2, 3, 4.5], 4. [5,6,7,8] </think_bbox><pred_bbox>3. [9, 9, 9, 9]</pred_bbox> bye"
    assert [(part, index, text[start:end], box) for part, index, start, end, box in entries] == [
        ("think", 3, "3. [1, 2, 3, 4.5]", (1.0, 2.0, 3.0, 4.5)),
        ("think", 4, "4. [5,6,7,8]", (5.0, 6.0, 7.0, 8.0)),
        ("pred", 3, "3. [9, 9, 9, 9]", (9.0, 9.0, 9.0, 9.0)),
    ]
    assert o1_box_entries("<time> 3 - 4 </time> <think_bbox> 3. [1, 2] </think_bbox><pred_bbox></pred_bbox>") is None


def test_box_scores_by_hand_and_which_boxes_count():
    scores = {key: score for key, _, _, score in box_scores(SHIFTED, TARGET)}
    assert scores == pytest.approx({("think", 3): SHIFTED_SCORE, ("think", 4): 1.0, ("pred", 3): 1.0, ("pred", 4): 1.0})
    # second 5 has no GT box, a repeated second keeps its first box only, second 2 is outside the GT span
    text = ("<time> 2 - 5 </time> <think_bbox> 2. [10, 10, 50, 50], 3. [0, 0, 40, 40], 3. [10, 10, 50, 50], "
            "5. [1, 1, 2, 2] </think_bbox> <pred_bbox> </pred_bbox>")
    target = {**TARGET, "boxes": [[2, 10, 10, 50, 50], *TARGET["boxes"]]}
    assert [(key, score) for key, _, _, score in box_scores(text, target)] == [(("think", 3), pytest.approx(SHIFTED_SCORE))]
    assert box_scores("not an answer", TARGET) == []


def test_box_tokens_take_the_box_advantage_the_rest_the_answer_one(tokenizer):
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (GOOD, SHIFTED)]
    values, metrics = box_token_advantages([GOOD, SHIFTED], ids, [0.5, -0.5], ["g", "g"], [TARGET, TARGET], tokenizer,
                                           "grpo", 1e-6)
    # the group's draft boxes of second 3 score 1.0 and SHIFTED_SCORE, d apart: mean +-d/2, sample std d/sqrt(2)
    d = 1.0 - SHIFTED_SCORE
    z = (d / 2) / (d / math.sqrt(2) + 1e-6)
    for text, row, answer, box in ((GOOD, values[0], 0.5, z), (SHIFTED, values[1], -0.5, -z)):
        start = text.index("3. [") + 3  # the coordinates only: the second's number keeps answer credit
        end = text.index("]", start) + 1
        other_boxes = [(text.index(f"{i}. [", at) + 3, text.index("]", text.index(f"{i}. [", at)) + 1)
                       for i, at in ((4, 0), (3, text.index("<pred_bbox>")), (4, text.index("<pred_bbox>")))]
        at = 0
        for token, value in zip(ids[0] if text is GOOD else ids[1], row):
            piece = tokenizer.decode([token])
            lo, hi = at, at + len(piece)
            at = hi
            if lo < end and hi > start:
                assert value == pytest.approx(box), piece
            elif any(lo < e and hi > s for s, e in other_boxes):
                assert value == 0.0, piece  # the same box in both answers: nothing to learn from it
            else:
                assert value == answer, piece
    boxed = sum(1 for row in values for v in row if v != 0.5 and v != -0.5)
    assert metrics["box_credit_frac"] == pytest.approx(boxed / (len(ids[0]) + len(ids[1])))
    assert metrics["box_credit_unmapped"] == 0.0


def test_answers_without_a_comparable_box_keep_answer_credit(tokenizer):
    no_answer = "I cannot tell"
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (GOOD, no_answer)]
    values, metrics = box_token_advantages([GOOD, no_answer], ids, [1.0, -1.0], ["g", "g"], [TARGET, TARGET],
                                           tokenizer, "grpo", 1e-6)
    assert values == [None, None]  # GOOD's boxes have nothing to be compared with in its group
    # tokens that do not decode to the text: that answer keeps answer credit and is counted
    values, metrics = box_token_advantages([GOOD, SHIFTED], [ids[0], ids[0]], [0.5, -0.5], ["g", "g"],
                                           [TARGET, TARGET], tokenizer, "grpo", 1e-6)
    assert values[1] is None and values[0] is not None
    assert metrics["box_credit_unmapped"] == 1.0


def _o1_sample() -> GroundingSample:
    return GroundingSample(id="s0", video="v.mp4", fps=1.0, frame_count=10, width=100, height=100, query="the box",
                           span_frames=(3, 5), span_seconds=(3.0, 5.0),
                           boxes={3: (10.0, 10.0, 50.0, 50.0), 4: (20.0, 20.0, 60.0, 60.0)}, dataset="synthetic")


def test_make_experience_hands_box_credit_to_the_learner_batch(tokenizer):
    prompt = PromptInputs(sample_id="s0", input_ids=torch.zeros(3, dtype=torch.long),
                          pixel_values_videos=torch.zeros(4, 2), video_grid_thw=torch.ones(1, 3, dtype=torch.long),
                          second_per_grid_ts=1.0, frame_timestamps=[0.0], frame_size=(100, 100),
                          scale_to_original=(1.0, 1.0), task="stvg-o1")
    completions = [Completion(prompt_index=0, group_id="step0/prompt0", token_ids=ids, text=text,
                              logprobs=[0.0] * len(ids), finish_reason="stop", policy_version=0)
                   for text in (GOOD, SHIFTED) for ids in [tokenizer(text, add_special_tokens=False)["input_ids"]]]
    client = build_reward_client(RewardClientConfig(mode="local"))
    try:
        batch = RolloutBatch(prompts=[prompt], completions=completions)
        scored = make_experience(batch, [_o1_sample()], client, "stvg-o1", GRPOConfig(group_size=2, credit="box"),
                                 learner_version=0, max_staleness=0, tokenizer=tokenizer)
        answer = make_experience(batch, [_o1_sample()], client, "stvg-o1", GRPOConfig(group_size=2),
                                 learner_version=0, max_staleness=0)
        with pytest.raises(ValueError, match="tokenizer"):
            make_experience(batch, [_o1_sample()], client, "stvg-o1", GRPOConfig(group_size=2, credit="box"),
                            learner_version=0, max_staleness=0)
    finally:
        client.close()
    assert [it.token_advantages is not None for it in scored.items] == [True, True]
    assert [it.token_advantages for it in answer.items] == [None, None]
    # the answers' own advantages are the same under both credits (the reward decides them)
    assert [it.advantage for it in scored.items] == pytest.approx([it.advantage for it in answer.items])
    batch = collate(scored.items, pad_token_id=0, video_token_id=99_999)
    assert batch.advantages.shape == batch.completion_ids.shape
    assert batch.advantages[0, :len(scored.items[0].token_advantages)].tolist() == pytest.approx(
        scored.items[0].token_advantages)


def test_collate_repeats_the_answer_advantage_beside_token_advantages():
    prompt = PromptInputs(sample_id="s0", input_ids=torch.zeros(2, dtype=torch.long),
                          pixel_values_videos=torch.zeros(4, 2), video_grid_thw=torch.ones(1, 3, dtype=torch.long),
                          second_per_grid_ts=1.0, frame_timestamps=[0.0], frame_size=(8, 8),
                          scale_to_original=(1.0, 1.0), task="stvg-o1")

    def item(n, advantage, per_token=None):
        completion = Completion(prompt_index=0, group_id="g", token_ids=[5] * n, text="", logprobs=[0.0] * n,
                                finish_reason="stop", policy_version=0)
        return TrainItem(prompt=prompt, completion=completion, advantage=advantage, token_advantages=per_token)

    batch = collate([item(3, 0.5, [1.0, 2.0, 3.0]), item(2, -0.25)], pad_token_id=0, video_token_id=99)
    assert batch.advantages.tolist() == [[1.0, 2.0, 3.0], [-0.25, -0.25, 0.0]]
    assert collate([item(2, 0.5), item(1, 1.5)], 0, 99).advantages.tolist() == [0.5, 1.5]
    with pytest.raises(ValueError, match="2 token advantages for 3"):
        collate([item(3, 0.5, [1.0, 2.0])], 0, 99)


def test_box_credit_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="grpo.credit") as err:
        GRPOConfig(credit="tokens")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="kl_mode=loss"):
        GRPOConfig(credit="box", kl_coef=0.04, kl_mode="reward")
    GRPOConfig(credit="box", kl_coef=0.0, kl_mode="reward")  # no reference model: nothing to shape
    with pytest.raises(ConfigError, match="task='vtg' has none"):
        load_run_config(None, ["task=vtg", "grpo.credit=box"])
    assert load_run_config(None, ["task=stvg-o1", "grpo.credit=box"]).grpo.credit == "box"
