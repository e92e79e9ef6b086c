"""The zero-shot strategies' bookkeeping with scripted answers (the pool and model run in
tests/e2e/test_seed_methods.py): which questions are asked, how an answer on an augmented view maps
back to forward time, and how the answers (spans, ids, boxes) combine into one `stvg score`
prediction, worked out by hand."""

from __future__ import annotations

import pytest

from infra.data.sample import GroundingSample
from rollout.zero_shot import SubQueries
from trainer.zero_shot_eval import Ask, Reading, asks_for, combine, read_answer

SUB = SubQueries(attribute="the red square", action="moves left")


def _sample(tracks=None) -> GroundingSample:
    return GroundingSample(id="v1", video="v1.mp4", fps=5.0, frame_count=100, width=160, height=120,
                           query="The red square moves left.", span_frames=(20, 45), span_seconds=(4.0, 9.0),
                           tracks=tracks, target_id=2)


def test_questions_asked_per_strategy():
    assert asks_for("stvg-r1", "q", None) == [Ask("query", "stvg-r1", "q")]
    assert asks_for("vtg", "q", SUB) == [Ask("action", "vtg", "moves left")]
    assert asks_for("stvg-r1", "q", SUB) == [Ask("action", "vtg", "moves left"),
                                             Ask("attribute", "stvg-r1", "the red square")]
    assert asks_for("stvg-o1", "q", SUB) == [Ask("action", "vtg", "moves left"),
                                             Ask("attribute", "stvg-o1", "the red square")]


def test_answers_on_the_reversed_view_are_mirrored_back():
    # a 20 s video: shown time 3..7 on the reversed view is 13..17 in the video
    assert read_answer("vtg", "<answer>3 to 7</answer>", "v1", "reversed", 20.0).span == (13.0, 17.0)
    assert read_answer("vtg", "<answer>3 to 7</answer>", "v1", "shifted", 20.0).span == (3.0, 7.0)
    r1 = read_answer("stvg-r1", "<answer>Target ID: 4, Time range: 1.5 to 2.5</answer>", "v1", "reversed", 20.0)
    assert r1 == Reading((17.5, 18.5), 4, [])
    assert read_answer("vtg", "no idea", "v1", "original", 20.0) == Reading(None)


def test_stvg_o1_boxes_on_the_reversed_view_are_mirrored_back():
    text = ("<time> 2 - 3 </time> <think_bbox> 2. [10, 10, 20, 20], 3. [12, 10, 22, 20] </think_bbox> "
            "<pred_bbox> 2. [10, 10, 20, 20], 3. [12, 10, 22, 20] </pred_bbox>")
    original = read_answer("stvg-o1", text, "v1", "original", 20.0, (2.0, 0.5))
    # indices 2..3 read as the seconds [1.5, 3.5); boxes scaled by (2, 0.5) to video pixels
    assert original.span == (1.5, 3.5)
    assert original.boxes == [[2.0, 20.0, 5.0, 40.0, 10.0], [3.0, 24.0, 5.0, 44.0, 10.0]]
    # on the reversed view of a 20 s video, seconds 2 and 3 are 18 and 17 s into the video
    reversed_ = read_answer("stvg-o1", text, "v1", "reversed", 20.0, (2.0, 0.5))
    assert reversed_.span == (16.5, 18.5)
    assert reversed_.boxes == [[17.0, 24.0, 5.0, 44.0, 10.0], [18.0, 20.0, 5.0, 40.0, 10.0]]


def test_stvg_o1_boxes_of_every_view_are_assembled_on_the_action_spans_frames():
    def x(t):  # the original view's box moves 10 px/s from x = 0 at 4 s
        return 10.0 * (t - 4.0)

    readings = {
        "action": [Reading((4.0, 6.0))] * 3,
        "attribute": [
            Reading((0.0, 20.0), None, [[4.0, 0.0, 0.0, 10.0, 10.0], [6.0, 20.0, 0.0, 30.0, 10.0],
                                        [9.0, 90.0, 0.0, 100.0, 10.0]]),  # 9 s is outside the span
            Reading((0.0, 20.0), None, [[4.0, 2.0, 0.0, 12.0, 10.0], [6.0, 22.0, 0.0, 32.0, 10.0]]),
            Reading((0.0, 20.0), None, [[5.0, 40.0, 0.0, 50.0, 10.0]]),  # an outlier, at 5 s only
        ]}
    prediction = combine("stvg-o1", _sample(), readings)
    assert (prediction["t_start"], prediction["t_end"]) == (4.0, 6.0)
    # frames round(4 * 5) = 20 .. round(6 * 5) - 1 = 29 (5 fps: every frame is an evaluation frame).
    # The original and reversed boxes are 2 px apart: IoU 80 / 120 = 2/3, they tie as anchor and
    # the original (first) wins; the reversed one joins with weight 2/3: x1 = x + (2/3 * 2) / (5/3)
    # = x + 0.8. The outlier (IoU 0 with both) is left out at 5 s, the only time it reaches.
    expected = [[f / 5, x(f / 5) + 0.8, 0.0, x(f / 5) + 10.8, 10.0] for f in range(20, 30)]
    assert len(prediction["boxes"]) == len(expected)
    for got, want in zip(prediction["boxes"], expected):
        assert got == pytest.approx(want)


def test_stvg_r1_tube_is_the_voted_ids_track_inside_the_assembled_action_span():
    track = {f: (float(f), 0.0, f + 10.0, 10.0) for f in range(10, 60)}
    sample = _sample({2: track, 3: {f: (0.0, 0.0, 1.0, 1.0) for f in range(100)}})
    readings = {
        # original and shifted agree on 4-9; the reversed view's answer is elsewhere and left out
        "action": [Reading((4.0, 9.0)), Reading((11.0, 16.0)), Reading((4.0, 9.0))],
        "attribute": [Reading((0.0, 20.0), 2), Reading(None), Reading((3.0, 5.0), 3)],
    }
    prediction = combine("stvg-r1", sample, readings)
    assert prediction["id"] == "v1" and prediction["instance_id"] == 2  # ids 2 and 3 tie: the original view's wins
    assert (prediction["t_start"], prediction["t_end"]) == pytest.approx((4.0, 9.0))
    # frames round(4 * 5) = 20 .. round(9 * 5) - 1 = 44 of track 2 (track 3 overlaps it nowhere there)
    assert prediction["boxes"] == [[f / 5, float(f), 0.0, f + 10.0, 10.0] for f in range(20, 45)]


def test_stvg_r1_tube_follows_the_majority_id_and_the_minority_fills_its_gaps():
    moving = {f: (float(f), 0.0, f + 10.0, 10.0) for f in range(10, 60)}
    still = {f: (20.0, 0.0, 30.0, 10.0) for f in range(20, 35)}  # ends at frame 34 (6.8 s)
    sample = _sample({2: moving, 3: still})
    readings = {"action": [Reading((4.0, 9.0))] * 3,
                "attribute": [Reading((4.0, 9.0), 2), Reading((4.0, 9.0), 3), Reading((4.0, 9.0), 3)]}
    prediction = combine("stvg-r1", sample, readings)
    assert prediction["instance_id"] == 3
    # frame f: track 3's box twice, track 2's once. IoU(track 2, track 3) = 10 (30 - f) / (200 - 10 (30 - f)):
    # 1 at 20, 9/11 at 21, 2/3 at 22, 7/13 at 23, under 0.5 from 24. Track 3 is the anchor (agreement
    # 2 + IoU against 1 + 2 IoU) and track 2 joins with weight IoU where IoU >= 0.5.
    share = {20: 1.0, 21: 9 / 11, 22: 2 / 3, 23: 7 / 13}
    expected = []
    for f in range(20, 35):
        w = share.get(f, 0.0)
        expected.append([f / 5, (2 * 20 + w * f) / (2 + w), 0.0, (2 * 30 + w * (f + 10)) / (2 + w), 10.0])
    # frames 35 .. 44: track 3 has ended, only track 2 reaches them
    expected += [[f / 5, float(f), 0.0, f + 10.0, 10.0] for f in range(35, 45)]
    assert len(prediction["boxes"]) == len(expected)
    for got, want in zip(prediction["boxes"], expected):
        assert got == pytest.approx(want)


def test_assembled_span_averages_the_views_that_agree_with_the_anchor():
    readings = {"query": [Reading((2.0, 6.0)), Reading((2.5, 6.5)), Reading((12.0, 14.0))]}
    # (2, 6) and (2.5, 6.5) agree (tIoU 3.5 / 4.5) and tie as anchor; (12, 14) agrees with neither
    prediction = combine("vtg", _sample(), readings)
    assert (prediction["t_start"], prediction["t_end"]) == pytest.approx((2.25, 6.25))
    assert prediction["boxes"] == []


def test_without_an_action_span_the_attribute_questions_span_and_boxes_are_used():
    readings = {"action": [Reading(None)], "attribute": [Reading((4.5, 6.5), None, [[5.0, 1.0, 2.0, 3.0, 4.0]])]}
    # the span's frames: round(4.5 * 5) = 23 (half up) .. round(6.5 * 5) - 1 = 32; the one box held on all
    assert combine("stvg-o1", _sample(), readings) == {
        "id": "v1", "t_start": 4.5, "t_end": 6.5, "boxes": [[f / 5, 1.0, 2.0, 3.0, 4.0] for f in range(23, 33)]}


def test_no_span_anywhere_gives_no_prediction_and_no_id_gives_a_span_only_tube():
    assert combine("vtg", _sample(), {"action": [Reading(None), Reading(None)]}) is None
    readings = {"action": [Reading((4.0, 9.0))], "attribute": [Reading(None)]}
    assert combine("stvg-r1", _sample({2: {20: (0, 0, 1, 1)}}), readings) == \
        {"id": "v1", "t_start": 4.0, "t_end": 9.0, "boxes": []}


def test_a_span_mapped_before_zero_starts_at_zero():
    # an answer of 18-22 s on the reversed view of a 20 s video maps to -2..2
    reading = read_answer("vtg", "<answer>18 to 22</answer>", "v1", "reversed", 20.0)
    assert reading.span == (-2.0, 2.0)
    prediction = combine("vtg", _sample(), {"query": [reading]})
    assert (prediction["t_start"], prediction["t_end"]) == (0.0, 2.0)
