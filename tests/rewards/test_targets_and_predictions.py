"""Target builders (sample -> reward target) and completion -> prediction conversion."""

import pytest

from infra.data.sample import GroundingSample
from rewards import TargetError, validate_target
from rewards.predictions import completion_to_prediction
from rewards.targets import build_target, o1_indices

BOX = {12: (0, 0, 20, 20), 19: (10, 10, 30, 30), 21: (20, 20, 40, 40), 30: (40, 40, 60, 80), 34: (0, 0, 2, 2)}


def sample(**overrides):
    fields = dict(id="v1", video="v1.mp4", fps=10.0, frame_count=60, width=200, height=100, query="q",
                  span_frames=(12, 35), span_seconds=(1.2, 3.5), boxes=BOX, target_id=7)
    fields.update(overrides)
    return GroundingSample(**fields)


def test_o1_target_takes_integer_seconds_inside_the_span_and_nearest_annotated_frames():
    target = build_target("stvg-o1", sample(), (100, 50))
    # indices: ceil(1.2) = 2 .. last integer < 3.5 = 3. Index 2 -> frame 20: frames 19 and 21 tie -> 19.
    # Index 3 -> frame 30. Scale 100/200 = 0.5 in x, 50/100 = 0.5 in y.
    assert target == {"t_start": 2, "t_end": 3, "width": 100.0, "height": 50.0,
                      "boxes": [[2, 5.0, 5.0, 15.0, 15.0], [3, 20.0, 20.0, 30.0, 40.0]]}
    validate_target("stvg-o1", target)


def test_o1_indices_exclude_an_integer_end_and_absorb_float_noise():
    assert o1_indices(1.0, 3.0) == (1, 2)                       # end exclusive
    assert o1_indices(0.1 * 3 * 10, 5.0) == (3, 4)              # 3.0000000000000004 counts as 3
    assert o1_indices(0.0, 0.5) == (0, 0)
    assert o1_indices(3.2, 3.9) == (4, 4)                       # no integer inside: nearest to midpoint 3.55
    assert o1_indices(3.6, 3.6) == (4, 4)                       # empty span: round(3.6)


def test_o1_target_skips_indices_without_an_annotated_frame_in_the_span():
    only_late = {33: (0, 0, 10, 10)}
    target = build_target("stvg-o1", sample(boxes=only_late, span_frames=(12, 35)), (200, 100))
    # both indices take frame 33 (the only one inside the span)
    assert target["boxes"] == [[2, 0.0, 0.0, 10.0, 10.0], [3, 0.0, 0.0, 10.0, 10.0]]
    outside = build_target("stvg-o1", sample(boxes={50: (0, 0, 10, 10)}), (200, 100))
    assert outside["boxes"] == [] and (outside["t_start"], outside["t_end"]) == (2, 3)


def test_r1_and_vtg_targets():
    assert build_target("stvg-r1", sample(), (100, 50)) == {"t_start": 1.2, "t_end": 3.5, "instance_id": 7}
    assert build_target("vtg", sample(), (100, 50)) == {"t_start": 1.2, "t_end": 3.5}


def test_target_builders_refuse_samples_they_cannot_serve():
    with pytest.raises(TargetError, match="has no target_id"):
        build_target("stvg-r1", sample(target_id=None), (100, 50))
    with pytest.raises(TargetError, match="has no ground-truth boxes"):
        build_target("stvg-o1", sample(boxes={}), (100, 50))
    with pytest.raises(TargetError, match="unknown task"):
        build_target("stvg", sample(), (100, 50))


O1_TEXT = ("<time> 2 - 4 </time> <think_bbox> </think_bbox> <pred_bbox> 3. [10, 20, 30, 40], "
           "2. [0, 0, 10, 10], 3. [1, 1, 1, 1] </pred_bbox>")


def test_o1_prediction_pads_the_inclusive_indices_by_half_a_second_and_scales_boxes():
    pred = completion_to_prediction("stvg-o1", O1_TEXT, "q1", scale_to_original=(2.0, 3.0))
    # span 2..4 -> [1.5, 4.5); boxes sorted by index, first box of index 3, x*2 and y*3
    assert pred == {"id": "q1", "t_start": 1.5, "t_end": 4.5,
                    "boxes": [[2.0, 0.0, 0.0, 20.0, 30.0], [3.0, 20.0, 60.0, 60.0, 120.0]]}


def test_o1_prediction_start_is_clamped_at_zero():
    text = "<time>0 - 0</time><think_bbox></think_bbox><pred_bbox>0. [1, 1, 2, 2]</pred_bbox>"
    assert completion_to_prediction("stvg-o1", text, "q")["t_start"] == 0.0


def test_r1_prediction_takes_the_predicted_track_inside_the_span():
    tracks = {3: {10: (0, 0, 5, 5), 15: (1, 1, 6, 6), 25: (2, 2, 7, 7), 9: (9, 9, 9, 9)}, 4: {12: (5, 5, 5, 5)}}
    text = "<think>x</think><answer>Target ID: 3, Time range: 1.0 to 2.5</answer>"
    pred = completion_to_prediction("stvg-r1", text, "q", tracks=tracks, fps=10.0)
    # frames [round(10), round(25)) = [10, 25): 10 and 15 (25 excluded, 9 before)
    assert pred == {"id": "q", "t_start": 1.0, "t_end": 2.5,
                    "boxes": [[1.0, 0.0, 0.0, 5.0, 5.0], [1.5, 1.0, 1.0, 6.0, 6.0]]}
    string_keys = {"3": {"10": [0, 0, 5, 5]}}
    assert completion_to_prediction("stvg-r1", text, "q", tracks=string_keys, fps=10.0)["boxes"] == [[1.0, 0, 0, 5, 5]]
    assert completion_to_prediction("stvg-r1", text, "q")["boxes"] == []


def test_vtg_prediction_and_unparseable_completions():
    assert completion_to_prediction("vtg", "<answer>1 to 2.5</answer>", "q") == \
        {"id": "q", "t_start": 1.0, "t_end": 2.5, "boxes": []}
    for task in ("stvg-o1", "stvg-r1", "vtg"):
        assert completion_to_prediction(task, "I cannot tell.", "q") is None
