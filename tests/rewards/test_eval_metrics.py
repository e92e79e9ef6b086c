"""Evaluation metrics (TubeDETR protocol, VTG R1/mIoU) on tiny hand-worked videos (random queries
against a port of TubeDETR's evaluator: test_tubedetr_protocol.py)."""

import random

import numpy as np
import pytest

from infra.data.sample import GroundingSample
from infra.errors import DataError, UserError
from rewards.metrics import evaluate, evaluation_frames, interpolate_boxes

SQUARE = (0, 0, 10, 10)


def video(id="a", span=(10, 20), boxes=None, fps=10.0, frame_count=30, sentence_type=None, segment=None):
    """10 fps, 30 frames (3 s), 100x100, GT box SQUARE on every GT frame unless given."""
    boxes = {f: SQUARE for f in range(*span)} if boxes is None else boxes
    return GroundingSample(id=id, video=f"{id}.mp4", fps=fps, frame_count=frame_count, width=100, height=100,
                           query="q", span_frames=span, span_seconds=(span[0] / fps, span[1] / fps), boxes=boxes,
                           sentence_type=sentence_type, eval_segment=segment)


def pred(id, t_start, t_end, boxes=()):
    return {"id": id, "t_start": t_start, "t_end": t_end, "boxes": [list(b) for b in boxes]}


def only_row(report):
    [row] = report.rows
    return row


def tubedetr_frames(begin, end, fps, eval_fps=5, max_len=200):
    """TubeDETR's loop, verbatim in behaviour."""
    rate = eval_fps / fps
    ids = [begin]
    for f in range(begin, end):
        if int(ids[-1] * rate) < int(f * rate):
            ids.append(f)
    if len(ids) > max_len:
        ids = [ids[(j * len(ids)) // max_len] for j in range(max_len)]
    return ids


def test_evaluation_frames_of_a_10fps_30_frame_video():
    # segment (0, 29): rate 0.5 -> int(f/2) grows at every even frame: 0, 2, ..., 28
    assert evaluation_frames(0, 29, 10.0).tolist() == list(range(0, 29, 2))


def test_evaluation_frames_of_a_used_segment():
    # fps 12.5, rate 0.4, segment [3, 13): int(3*.4)=1, 4->1, 5->2 keep, 6,7->2, 8->3 keep, 9->3, 10->4 keep, 11,12->4
    assert evaluation_frames(3, 13, 12.5).tolist() == [3, 5, 8, 10]
    assert evaluation_frames(7, 7, 12.5).tolist() == [7]  # an empty segment still yields its first frame


def test_evaluation_frames_are_capped_at_200():
    # 5 fps, segment (0, 1000): every frame is kept (1000 > 200) -> ids[(j * 1000) // 200] = 5 j
    frames = evaluation_frames(0, 1000, 5.0)
    assert frames.tolist() == list(range(0, 1000, 5)) and len(frames) == 200


def test_evaluation_frames_match_the_tubedetr_loop():
    rng = random.Random(3)
    for _ in range(300):
        begin = rng.randint(0, 300)
        end = begin + rng.randint(0, 2500)
        fps = rng.choice([5.0, 6.0, 23.976, 24.0, 25.0, 29.97002997002997, 30.0, 12.5, rng.uniform(5, 60)])
        assert evaluation_frames(begin, end, fps).tolist() == tubedetr_frames(begin, end, fps)


def test_partial_overlap_tiou_and_viou():
    # GT [10, 20); prediction 1.5 s .. 2.5 s -> frames [15, 25)
    # tIoU = 5 / (10 + 10 - 5) = 1/3
    # evaluation frames 0, 2, ..., 28; union [10, 25): 10..24 even = 8 frames;
    # intersection [15, 20): 16, 18, each IoU 1 -> vIoU = 2/8
    report = evaluate([video()], [pred("a", 1.5, 2.5, [(1.5, *SQUARE), (2.5, *SQUARE)])], "hcstvg-v1")
    row = only_row(report)
    assert row.tiou == pytest.approx(1 / 3) and row.viou == pytest.approx(0.25)
    assert report.aggregates["all"] == pytest.approx({"m_tIoU": 100 / 3, "m_vIoU": 25.0, "vIoU@0.3": 0.0,
                                                      "vIoU@0.5": 0.0})


def test_boxes_are_interpolated_linearly_between_predicted_times():
    # prediction = GT span [1.0, 2.0) -> frames [10, 20); tIoU 1; union and intersection: 10, 12, 14, 16, 18
    # box at t: (0, 0, 10, 10 + 10 (t - 1)); IoU with SQUARE = 100 / (10 * y2)
    # f=10: 1; f=12: 10/12; f=14: 10/14; f=16: 10/16; f=18: 10/18 -> sum 3.728174603, / 5
    report = evaluate([video()], [pred("a", 1.0, 2.0, [(2.0, 0, 0, 10, 20), (1.0, *SQUARE)])], "hcstvg-v1")
    row = only_row(report)
    assert row.tiou == 1.0
    assert row.viou == pytest.approx((1 + 10 / 12 + 10 / 14 + 10 / 16 + 10 / 18) / 5)


def test_boxes_are_held_outside_the_predicted_time_range():
    # boxes only at 1.4 s (0,0,10,20) and 1.6 s (SQUARE): frames 10, 12, 14 take the 1.4 s box (IoU 0.5),
    # frames 16, 18 the 1.6 s box (IoU 1) -> (3 * 0.5 + 2) / 5 = 0.7
    report = evaluate([video()], [pred("a", 1.0, 2.0, [(1.4, 0, 0, 10, 20), (1.6, *SQUARE)])], "hcstvg-v1")
    assert only_row(report).viou == pytest.approx(0.7)


def test_interpolate_boxes_keeps_the_first_of_repeated_times():
    boxes = np.array([[1.0, 0, 0, 10, 10], [1.0, 5, 5, 5, 5], [3.0, 0, 0, 30, 30]])
    out = interpolate_boxes(boxes, np.array([0.0, 2.0, 9.0]))
    np.testing.assert_allclose(out, [[0, 0, 10, 10], [0, 0, 20, 20], [0, 0, 30, 30]])


def test_predicted_boxes_are_not_clamped_to_the_frame():
    # (-10, 0, 10, 10) pokes out of the frame: IoU with SQUARE = 100 / 200 on each of the 5 frames
    # (clamped to (0, 0, 10, 10) it would be 1)
    report = evaluate([video()], [pred("a", 1.0, 2.0, [(1.0, -10, 0, 10, 10)])], "hcstvg-v1")
    assert only_row(report).viou == pytest.approx(0.5)


def test_predicted_boxes_with_reversed_corners_overlap_nothing():
    # (10, 10, 0, 0) is SQUARE written backwards: not reordered, so no overlap and vIoU 0; tIoU counts
    report = evaluate([video()], [pred("a", 1.0, 2.0, [(1.0, 10, 10, 0, 0)])], "hcstvg-v1")
    assert (only_row(report).tiou, only_row(report).viou) == (1.0, 0.0)


def test_viou_at_r_is_strict_at_exactly_one_half():
    # prediction 1.2 s .. 2.6 s -> frames [12, 26): tIoU = 8 / (10 + 14 - 8) = 0.5
    # union [10, 26): 10..24 even = 8 frames; intersection [12, 20): 12, 14, 16, 18 -> vIoU = 4/8 = 0.5
    report = evaluate([video()], [pred("a", 1.2, 2.6, [(1.2, *SQUARE)])], "hcstvg-v1")
    row = only_row(report)
    assert (row.tiou, row.viou) == (0.5, 0.5)
    assert report.aggregates["all"]["vIoU@0.3"] == 100.0 and report.aggregates["all"]["vIoU@0.5"] == 0.0


def test_predicted_span_rounds_half_up_to_frames_with_an_exclusive_end():
    # 1.05 s * 10 = 10.5 -> frame 11; 1.95 s -> 19.5 -> frame 20 (exclusive): P = [11, 20), G = [10, 20)
    # tIoU = 9 / 10; union [10, 20) has 5 evaluation frames; intersection [11, 20): 12, 14, 16, 18 -> vIoU 4/5
    row = only_row(evaluate([video()], [pred("a", 1.05, 1.95, [(0, *SQUARE)])], "hcstvg-v1"))
    assert row.tiou == pytest.approx(0.9) and row.viou == pytest.approx(0.8)


def test_frames_without_a_gt_box_add_nothing_but_count_in_the_union():
    boxes = {f: SQUARE for f in (10, 11, 12, 13)}  # GT span [10, 20) annotated on its first frames only
    row = only_row(evaluate([video(boxes=boxes)], [pred("a", 1.0, 2.0, [(1.0, *SQUARE)])], "hcstvg-v1"))
    # evaluation frames in span: 10, 12, 14, 16, 18; GT boxes on 10 and 12 -> 2/5
    assert row.viou == pytest.approx(0.4)


def test_disjoint_or_reversed_or_missing_predictions_score_zero():
    samples = [video("a"), video("b"), video("c")]
    preds = [pred("a", 2.5, 2.9, [(2.5, *SQUARE)]), pred("b", 1.8, 1.2, [(1.5, *SQUARE)])]
    report = evaluate(samples, preds, "hcstvg-v2")
    assert [(r.id, r.predicted, r.tiou, r.viou) for r in report.rows] == \
        [("a", True, 0.0, 0.0), ("b", True, 0.0, 0.0), ("c", False, 0.0, 0.0)]
    assert report.counts["all"] == {"queries": 3, "predicted": 2}


def test_prediction_without_boxes_has_viou_zero_but_keeps_tiou():
    row = only_row(evaluate([video()], [pred("a", 1.0, 2.0)], "hcstvg-v1"))
    assert (row.tiou, row.viou) == (1.0, 0.0)


def test_vidstg_is_reported_per_sentence_type():
    samples = [video("d", sentence_type="declarative", segment=(0, 30)),
               video("i", sentence_type="interrogative", segment=(0, 30))]
    report = evaluate(samples, [pred("d", 1.0, 2.0, [(1.0, *SQUARE)])], "vidstg")
    assert list(report.aggregates) == ["declarative", "interrogative", "all"]
    assert report.aggregates["declarative"] == {"m_tIoU": 100.0, "m_vIoU": 100.0, "vIoU@0.3": 100.0, "vIoU@0.5": 100.0}
    assert report.aggregates["interrogative"] == {"m_tIoU": 0.0, "m_vIoU": 0.0, "vIoU@0.3": 0.0, "vIoU@0.5": 0.0}
    assert report.aggregates["all"]["m_vIoU"] == 50.0
    assert "declarative" in report.table() and "interrogative" in report.table()


def charades(id, start, end):
    return GroundingSample(id=id, video=f"{id}.mp4", fps=0.0, frame_count=0, width=0, height=0, query="q",
                           span_frames=(0, 0), span_seconds=(start, end))


def test_vtg_r1_thresholds_are_inclusive_and_miou_is_the_mean():
    samples = [charades(str(i), 0.0, 10.0) for i in range(4)]
    preds = [pred("0", 0.0, 3.0), pred("1", 0.0, 5.0), pred("2", 0.0, 7.0)]  # tIoU 0.3, 0.5, 0.7; "3" missing
    report = evaluate(samples, preds, "charades")
    assert [r.tiou for r in report.rows] == [0.3, 0.5, 0.7, 0.0]
    assert report.aggregates["all"] == pytest.approx({"R1@0.3": 75.0, "R1@0.5": 50.0, "R1@0.7": 25.0, "mIoU": 37.5})
    assert report.rows[0].viou is None


def test_report_json_holds_aggregates_and_rows():
    out = evaluate([video()], [pred("a", 1.0, 2.0, [(1.0, *SQUARE)])], "hcstvg-v1").to_dict()
    assert out["dataset"] == "hcstvg-v1" and out["protocol"]["max_frames"] == 200
    assert out["queries"] == [{"id": "a", "sentence_type": None, "predicted": True, "tiou": 1.0, "viou": 1.0}]


@pytest.mark.parametrize("bad,message", [
    ({"id": "zzz", "t_start": 1, "t_end": 2}, "prediction 1: id 'zzz' matches no annotated query"),
    ({"id": "a", "t_start": "1", "t_end": 2}, "prediction 1: field 't_start' must be a finite number"),
    ({"id": "a", "t_start": 1}, "prediction 1: missing field 't_end'"),
    ({"id": 5, "t_start": 1, "t_end": 2}, "prediction 1: field 'id' must be a string"),
    ({"id": "a", "t_start": 1, "t_end": 2, "boxes": [[1, 2, 3, 4]]}, r"field 'boxes\[0\]' must be \[t, x1"),
    ({"id": "a", "t_start": 1, "t_end": 2, "boxes": [[1, 2, 3, 4, None]]}, r"field 'boxes\[0\]\[4\]' must be a finite"),
    ([1, 2], "prediction 1: a prediction must be a JSON object"),
])
def test_malformed_predictions_are_data_errors_naming_the_field(bad, message):
    with pytest.raises(DataError, match=message):
        evaluate([video()], [bad], "hcstvg-v1")


def test_duplicate_predictions_and_unknown_kinds_are_rejected():
    with pytest.raises(DataError, match=r"prediction 2: id 'a' was already predicted \(prediction 1\)"):
        evaluate([video()], [pred("a", 1, 2), pred("a", 1, 2)], "hcstvg-v1")
    with pytest.raises(DataError, match="labelled line 9: id 'q'"):
        evaluate([video()], [pred("q", 1, 2)], "hcstvg-v1", labels=["labelled line 9"])
    with pytest.raises(UserError, match="unknown dataset kind 'hcstvg'"):
        evaluate([video()], [], "hcstvg")
