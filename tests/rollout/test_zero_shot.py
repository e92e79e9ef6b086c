"""Zero-shot strategies: query decomposition on a table of sentences, temporal augmentation and its
inverse, and assembling spans, on hand-made values and on a real synthetic video."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rollout.zero_shot import (DECOMPOSE_PROMPT, SubQueries, assemble_boxes, assemble_spans, augment_timestamps,
                               decompose_by_rules, decompose_query, parse_decomposition, sample_views,
                               unreverse_boxes, unreverse_span, vote_ids)

TABLE = [
    # the example
    ("the man in the grey coat picks up the phone", "the man in the grey coat", "picks up the phone"),
    # HC-STVG style
    ("The woman in red clothes turns in a circle.", "the woman in red clothes", "turns in a circle"),
    ("The man in white clothes who is sitting stands up and looks at the woman.",
     "the man in white clothes who is sitting", "stands up and looks at the woman"),
    ("The man wearing a hat walks to the door.", "the man wearing a hat", "walks to the door"),
    ("The man with his hands in his pockets turns around.", "the man with his hands in his pockets", "turns around"),
    ("The man in black is talking to the woman.", "the man in black", "is talking to the woman"),
    ("The man slowly walks away.", "the man", "slowly walks away"),
    ("The man in black first turns around, then leaves.", "the man in black", "first turns around, then leaves"),
    ("The man in the checked shirt takes the cup.", "the man in the checked shirt", "takes the cup"),
    ("The woman in the dark clothing nods.", "the woman in the dark clothing", "nods"),
    ("The bald man in glasses puts down the cup.", "the bald man in glasses", "puts down the cup"),
    ("The old man walked to the door and sat down.", "the old man", "walked to the door and sat down"),
    ("The man in the blue shirt turns left.", "the man in the blue shirt", "turns left"),
    ("the man left the room", "the man", "left the room"),
    # VidSTG declarative (its interrogatives: QUESTIONS below)
    ("there is a child in red watching a ball on the ground.", "a child in red", "watching a ball on the ground"),
    ("the child in blue is watching the ball.", "the child in blue", "is watching the ball"),
    # a relative clause with no main verb, and no verb at all
    ("the woman who is holding the phone", "the woman", "is holding the phone"),
    ("the man on the left", "the man on the left", "the man on the left"),
]


# VidSTG interrogative sentences: the answer is the target, so the attribute sub-query must say
# what the question says about it (the bare wh-word would leave the spatial question empty).
# VidSTG asks for the subject ("who is watching the ball?", its annotation format's example), for
# the object in the passive ("what is caught by the squatting boy on the floor?", the VidSTG paper's
# figure 1) or with do / a progressive, and about spatial relations ("who is in front of ...?").
QUESTIONS = [
    # the target is the subject: nothing but the verb phrase describes it
    ("who is watching the ball?", "the person who is watching the ball", "is watching the ball"),
    ("What is caught by the squatting boy on the floor?",
     "the object that is caught by the squatting boy on the floor", "is caught by the squatting boy on the floor"),
    ("who leans on the white car?", "the person who leans on the white car", "leans on the white car"),
    ("who is in front of the black car?", "the person who is in front of the black car",
     "is in front of the black car"),
    ("what is above the adult?", "the object that is above the adult", "is above the adult"),
    # the wh-phrase describes the target itself
    ("which adult in red is holding a cup?", "the adult in red", "is holding a cup"),
    ("who in red is riding a bicycle?", "the person in red", "is riding a bicycle"),
    ("which dog is chasing the cat?", "the dog", "is chasing the cat"),
    # the target is the object: the attribute keeps the other participant, the action is the event
    ("What does the adult in red hold?", "the object that the adult in red holds", "the adult in red holds something"),
    ("who does the child in pink hug?", "the person that the child in pink hugs", "the child in pink hugs someone"),
    ("whom does the woman with a bag follow?", "the person that the woman with a bag follows",
     "the woman with a bag follows someone"),
    ("what did the man put on the table?", "the object that the man put on the table",
     "the man put something on the table"),
    ("who did the dog bite?", "the person that the dog bit", "the dog bit someone"),
    # a verb outside the lexicon
    ("what does the adult tow?", "the object that the adult tows", "the adult tows something"),
    ("which ball does the boy kick?", "the ball that the boy kicks", "the boy kicks the ball"),
    ("what is the adult man in black holding?", "the object that the adult man in black is holding",
     "the adult man in black is holding something"),
    ("what is the dog chasing in the yard?", "the object that the dog is chasing in the yard",
     "the dog is chasing something in the yard"),
]


@pytest.mark.parametrize("query, attribute, action", TABLE + QUESTIONS)
def test_rule_based_decomposition(query, attribute, action):
    assert decompose_by_rules(query) == SubQueries(attribute, action, "rules")


def test_every_synthetic_query_splits_into_shape_and_motion():
    from infra.data.shapes import DIRECTIONS, PALETTE, SHAPES

    for colour in PALETTE:
        for shape in SHAPES:
            for direction in DIRECTIONS:
                sub = decompose_query(f"the {colour} {shape} moving {direction}")
                assert (sub.attribute, sub.action) == (f"the {colour} {shape}", f"moving {direction}")


def test_model_decomposition_is_used_when_it_parses():
    prompts = []

    def model(prompt):
        prompts.append(prompt)
        return 'Sure! {"attribute": "The man in the grey coat", "action": "picks up the phone."}'

    sub = decompose_query("The man in the grey coat picks up the phone.", model)
    assert sub == SubQueries("the man in the grey coat", "picks up the phone", "model")
    assert prompts == [DECOMPOSE_PROMPT.format(query="the man in the grey coat picks up the phone")]
    assert '"the man in the grey coat picks up the phone"' in prompts[0]


def test_model_decomposition_falls_back_to_rules_on_unparseable_answers():
    for answer in ["I cannot help with that.", '{"attribute": 3, "action": "x"}', '{"attribute": "", "action": "x"}',
                   "{broken json"]:
        assert decompose_query("the red square moving right", lambda p: answer) == \
            SubQueries("the red square", "moving right", "rules")


def test_model_answers_in_lines_or_without_an_action():
    assert parse_decomposition("Attribute: the girl in pink\nAction: waves her hand") == \
        SubQueries("the girl in pink", "waves her hand", "model")
    sub = decompose_query("The tall man.", lambda p: json.dumps({"attribute": "the tall man", "action": ""}))
    assert sub == SubQueries("the tall man", "the tall man", "model")  # no action: the whole query


# ---- temporal augmentation ---------------------------------------------------------------------

def test_augmented_timestamps_by_hand():
    times = [0.0, 0.5, 1.0, 1.5]
    assert augment_timestamps(times, "original", 2.0).tolist() == times
    assert augment_timestamps(times, "reversed", 2.0).tolist() == [0.5, 1.0, 1.5, 2.0]
    assert augment_timestamps(times, "shifted", 2.0).tolist() == [0.25, 0.75, 1.25, 1.75]
    assert augment_timestamps(times, "shifted", 1.7).tolist() == [0.25, 0.75, 1.25]  # 1.75 is past the end
    with pytest.raises(ValueError, match="reversed"):
        augment_timestamps(times, "mirrored", 2.0)


def test_unreverse_span_by_hand_and_round_trip():
    assert unreverse_span((0.5, 1.2), 2.0) == pytest.approx((0.8, 1.5))
    assert unreverse_span((0.0, 20.0), 20.0) == (0.0, 20.0)
    forward = (3.25, 7.5)
    assert unreverse_span(unreverse_span(forward, 20.0), 20.0) == pytest.approx(forward)


def test_unreverse_boxes_mirrors_their_times_and_sorts_them():
    # seconds 2 and 5 of the reversed view of a 20 s video are 18 and 15 s into the video
    assert unreverse_boxes([[2.0, 1, 2, 3, 4], [5.0, 5, 6, 7, 8]], 20.0) == [[15.0, 5, 6, 7, 8], [18.0, 1, 2, 3, 4]]
    assert unreverse_boxes([], 20.0) == []


def _colour_span(view, colour) -> tuple[float, float] | None:
    """A stand-in model that answers with the presented times of the first and last frame showing
    the target's colour (a test double for the MLLM, not our code)."""
    rgb = np.array(colour, dtype=np.int16)
    hits = [(np.abs(f.astype(np.int16) - rgb).max(axis=-1) < 40).sum() > 20 for f in view.frames]
    shown = view.timestamps[np.flatnonzero(hits)]
    return (float(shown.min()), float(shown.max())) if shown.size else None


def test_views_of_a_real_video_map_back_to_forward_time(tmp_path):
    from infra.data.shapes import PALETTE
    from infra.data.synth import generate, load_synthetic

    generate(tmp_path, 1, seed=9)
    sample = load_synthetic(tmp_path)[0]
    original, reversed_, shifted = sample_views(sample.video, ("original", "reversed", "shifted"), fps=2.0,
                                                max_long_side=96, duration=sample.duration)
    assert sample.duration == 20.0 and len(original.frames) == 40
    assert np.array_equal(reversed_.frames, original.frames[::-1])
    assert reversed_.timestamps.tolist() == [20.0 - t for t in original.timestamps[::-1]]
    assert reversed_.frame_ids.tolist() == original.frame_ids[::-1].tolist()
    # shifted by half of 0.5 s: t = 0.25, 0.75, 1.25, 1.75 -> frame ids floor(t * 5) = 1, 3, 6, 8
    assert shifted.timestamps[:4].tolist() == [0.25, 0.75, 1.25, 1.75]
    assert shifted.frame_ids[:4].tolist() == [1, 3, 6, 8] and len(shifted.frames) == 40

    colour = PALETTE[sample.query.split()[1]]
    answers = [view.to_forward(_colour_span(view, colour)) for view in (original, reversed_, shifted)]
    assert answers[1] == pytest.approx(answers[0])  # the same frames, mirrored and mapped back
    assert abs(answers[2][0] - answers[0][0]) <= 0.5 and abs(answers[2][1] - answers[0][1]) <= 0.5
    start, end = assemble_spans(answers)
    gt_start, gt_end = sample.span_seconds
    # the stand-in answers with sampled instants, so each end is within one interval of the GT
    assert abs(start - gt_start) <= 0.5 and abs(end - gt_end) <= 0.5


# ---- assembling --------------------------------------------------------------------------------

def test_assembling_identical_predictions_returns_them():
    assert assemble_spans([(2.0, 6.0)] * 3) == (2.0, 6.0)


def test_assembling_averages_the_consistent_ones_and_drops_the_outlier():
    # tIoU((2,6),(3,7)) = 3/5; (20,25) overlaps neither. Agreement 1.6, 1.6, 1: the first is the anchor
    assert assemble_spans([(2.0, 6.0), (3.0, 7.0), (20.0, 25.0)]) == pytest.approx((2.5, 6.5))


def test_assembling_skips_missing_and_inverted_spans():
    assert assemble_spans([None, (5.0, 3.0), (1.0, 2.0)]) == (1.0, 2.0)
    assert assemble_spans([None, None]) is None
    assert assemble_spans([]) is None


def test_assembling_weights_the_mean_and_the_anchor():
    # tIoU((0,4),(2,6)) = 2/6; agreement 3 + 1/3 vs 1 + 1: anchor (0,4); both consistent
    assert assemble_spans([(0.0, 4.0), (2.0, 6.0)], [3.0, 1.0]) == pytest.approx((0.5, 4.5))
    # disjoint predictions: the heavier one wins outright, else the first
    assert assemble_spans([(0.0, 1.0), (5.0, 6.0)]) == (0.0, 1.0)
    assert assemble_spans([(0.0, 1.0), (5.0, 6.0)], [1.0, 2.0]) == (5.0, 6.0)
    # a stricter consistency bar keeps only the anchor
    assert assemble_spans([(0.0, 4.0), (2.0, 6.0)], min_tiou=0.5) == (0.0, 4.0)
    with pytest.raises(ValueError, match="> 0"):
        assemble_spans([(0.0, 1.0)], [0.0])
    with pytest.raises(ValueError, match="1 weights for 2"):
        assemble_spans([(0.0, 1.0), (1.0, 2.0)], [1.0])


def test_voting_ids_across_views():
    assert vote_ids([3, 5, 3]) == 3
    assert vote_ids([5, 3]) == 5                  # a tie: the first view's id
    assert vote_ids([5, 3, None], [1.0, 2.0, 9.0]) == 3
    assert vote_ids([None, None]) is None



# ---- assembling boxes ---------------------------------------------------------------------------

def test_one_tube_is_interpolated_at_the_asked_times():
    tube = [[2.0, 20.0, 0.0, 30.0, 10.0], [0.0, 0.0, 0.0, 10.0, 10.0]]  # unsorted on purpose
    assert assemble_boxes([tube], [0.0, 0.5, 2.0]) == [[0.0, 0.0, 0.0, 10.0, 10.0], [0.5, 5.0, 0.0, 15.0, 10.0],
                                                       [2.0, 20.0, 0.0, 30.0, 10.0]]


def test_boxes_that_agree_are_averaged_by_their_iou_with_the_anchor():
    a = [[1.0, 0.0, 0.0, 10.0, 10.0]]
    c = [[1.0, 5.0, 0.0, 15.0, 10.0]]  # IoU with a: 50 / 150 = 1/3
    # agreement: a and its copy 1 + 1 + 1/3, c 1/3 + 1/3 + 1: the anchor is the first copy of a.
    # At min_iou 0.5, c is left out; at 0.3 it counts with weight 1/3:
    # x1 = (0 + 0 + 5/3) / (7/3) = 5/7, x2 = (10 + 10 + 15/3) / (7/3) = 75/7
    assert assemble_boxes([a, a, c], [1.0]) == [[1.0, 0.0, 0.0, 10.0, 10.0]]
    ((t, *box),) = assemble_boxes([a, a, c], [1.0], min_iou=0.3)
    assert box == pytest.approx([5 / 7, 0.0, 75 / 7, 10.0])


def test_the_heavier_or_the_first_view_wins_between_disjoint_boxes():
    left, right = [[0.0, 0.0, 0.0, 10.0, 10.0]], [[0.0, 50.0, 0.0, 60.0, 10.0]]
    assert assemble_boxes([left, right], [0.0]) == [[0.0, 0.0, 0.0, 10.0, 10.0]]
    assert assemble_boxes([left, right], [0.0], [1.0, 2.0]) == [[0.0, 50.0, 0.0, 60.0, 10.0]]


def test_a_view_only_counts_where_its_boxes_reach_unless_none_reaches():
    early = [[0.0, 0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 0.0, 10.0, 10.0]]
    late = [[1.0, 50.0, 0.0, 60.0, 10.0], [3.0, 50.0, 0.0, 60.0, 10.0]]
    weights = [1.0, 3.0]  # the late view wins wherever both reach
    assert assemble_boxes([early, late], [0.5, 1.5, 2.5], weights) == [
        [0.5, 0.0, 0.0, 10.0, 10.0],    # only the early view reaches 0.5 s
        [1.5, 50.0, 0.0, 60.0, 10.0],   # both reach: the heavier one
        [2.5, 50.0, 0.0, 60.0, 10.0]]   # only the late view
    # at 5 s no view reaches: both hold their last box and the heavier one wins
    assert assemble_boxes([early, late], [5.0], weights) == [[5.0, 50.0, 0.0, 60.0, 10.0]]
    assert assemble_boxes([early, late], [5.0], [3.0, 1.0]) == [[5.0, 0.0, 0.0, 10.0, 10.0]]


def test_assembling_boxes_orders_corners_and_skips_views_without_boxes():
    flipped = [[0.0, 10.0, 10.0, 0.0, 0.0]]
    assert assemble_boxes([[], flipped], [0.0]) == [[0.0, 0.0, 0.0, 10.0, 10.0]]
    assert assemble_boxes([[], []], [0.0, 1.0]) == []
    assert assemble_boxes([flipped], []) == []
    with pytest.raises(ValueError, match="1 weights for 2"):
        assemble_boxes([flipped, flipped], [0.0], [1.0])
    with pytest.raises(ValueError, match="min_iou"):
        assemble_boxes([flipped], [0.0], min_iou=1.5)
