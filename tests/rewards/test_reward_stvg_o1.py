"""STVG-o1 reward terms on hand-worked examples (the rules of docs/conventions.md, "Reward terms")."""

import pytest

from infra.errors import ConfigError
from rewards import DEFAULT_WEIGHTS, TERMS, score_batch

SQUARE = [0, 0, 10, 10]


def o1(ts, te, think, pred):
    """Completion text; think/pred are [(index, [x1, y1, x2, y2]), ...]."""
    def listing(entries):
        return ", ".join(f"{i}. [{', '.join(str(v) for v in box)}]" for i, box in entries)
    return f"<time> {ts} - {te} </time> <think_bbox> {listing(think)} </think_bbox> <pred_bbox> {listing(pred)} </pred_bbox>"


def target(gs, ge, boxes, width=100, height=100):
    return {"t_start": gs, "t_end": ge, "boxes": [[t, *b] for t, b in boxes], "width": width, "height": height}


def score(text, tgt, weights=None):
    [result] = score_batch("stvg-o1", [text], [tgt], weights)
    return result


def test_terms_are_named_and_ordered_with_default_weights():
    assert TERMS["stvg-o1"] == ("format", "consistency", "temporal", "spatial", "think")
    assert dict(DEFAULT_WEIGHTS["stvg-o1"]) == {"format": 1, "consistency": 1, "temporal": 1, "spatial": 1,
                                                "think": 0.5}
    result = score(o1(2, 2, [(2, SQUARE)], [(2, SQUARE)]), target(2, 2, [(2, SQUARE)]))
    assert list(result.terms) == list(TERMS["stvg-o1"])


def test_perfect_answer_scores_five():
    boxes = [(i, SQUARE) for i in (2, 3, 4)]
    result = score(o1(2, 4, boxes, boxes), target(2, 4, boxes))
    # Rf 1 + Rc 1 + Rt 1 + Rs (1 + 1) + 0.5 * max(1 - 1, 0)
    assert result.terms == {"format": 1.0, "consistency": 1.0, "temporal": 1.0, "spatial": 2.0, "think": 0.0}
    assert result.total == pytest.approx(5.0)
    assert result.parsed


def test_partial_overlap_missing_index_and_an_improving_final_answer():
    gt = target(2, 5, [(i, SQUARE) for i in (2, 3, 4, 5)])
    think = [(3, SQUARE), (4, [5, 5, 15, 15]), (6, SQUARE)]          # index 5 missing
    pred = [(i, SQUARE) for i in (3, 4, 5, 6)]
    result = score(o1(3, 6, think, pred), gt)
    # Rt: {3..6} & {2..5} = {3,4,5}, union {2..6}: 3/5 = 0.6. Scored indices [max(3,2), min(6,5)] = 3, 4, 5.
    # think: idx3 -> 1 - 0; idx4 -> GIoU -5/63 - L1 (5+5+5+5)/4/100 = 0.05; idx5 missing -> -2
    #   R_spa(think) = (1 + (-5/63 - 0.05) - 2) / 3 = -0.37645502645502645
    # pred: 1 at each index -> R_spa(pred) = 1
    # Rs = 1 - 0.376455 = 0.6235449735; Rk = max(1 - (-0.376455), 0) = 1.3764550265; Rc = 0 (think lacks 5)
    # total = 1 + 0 + 0.6 + 0.6235449735 + 0.5 * 1.3764550265 = 2.9117724868
    assert result.terms["format"] == 1.0
    assert result.terms["consistency"] == 0.0
    assert result.terms["temporal"] == pytest.approx(0.6)
    assert result.terms["spatial"] == pytest.approx(0.6235449735449735)
    assert result.terms["think"] == pytest.approx(1.3764550264550265)
    assert result.total == pytest.approx(2.9117724867724867)


def test_weights_are_configurable_per_term():
    gt = target(2, 5, [(i, SQUARE) for i in (2, 3, 4, 5)])
    think = [(3, SQUARE), (4, [5, 5, 15, 15]), (6, SQUARE)]
    pred = [(i, SQUARE) for i in (3, 4, 5, 6)]
    result = score(o1(3, 6, think, pred), gt, weights={"format": 2.0, "think": 1.0})
    # 2*1 + 0 + 0.6 + (1 + s) + 1 * (1 - s) with s = R_spa(think) = 2 + 0.6 + 2 = 4.6
    assert result.total == pytest.approx(4.6)


def test_missing_predicted_index_scores_minus_two():
    gt = target(2, 3, [(2, SQUARE), (3, SQUARE)])
    # think perfect; pred lacks index 3: R_spa(pred) = (1 + -2)/2 = -0.5; R_spa(think) = 1
    result = score(o1(2, 3, [(2, SQUARE), (3, SQUARE)], [(2, SQUARE)]), gt)
    assert result.terms["spatial"] == pytest.approx(1 - 0.5)
    assert result.terms["think"] == 0.0  # max(-0.5 - 1, 0)
    assert result.terms["consistency"] == 0.0


def test_repeated_index_keeps_its_first_box():
    gt = target(2, 2, [(2, SQUARE)])
    result = score(o1(2, 2, [(2, SQUARE), (2, [50, 50, 60, 60])], [(2, [50, 50, 60, 60]), (2, SQUARE)]), gt)
    # think uses SQUARE (1); pred uses (50,50,60,60): IoU 0, C = 60*60 = 3600, union 200
    # GIoU = -(3600 - 200)/3600 = -0.9444444; L1 = (50+50+50+50)/4/100 = 0.5 -> -1.4444444
    assert result.terms["spatial"] == pytest.approx(1 - 0.9444444444444444 - 0.5)
    assert result.terms["consistency"] == 0.0  # index 2 twice


def test_reversed_and_out_of_frame_coordinates_are_cleaned_before_scoring():
    gt = target(0, 1, [(0, SQUARE), (1, [90, 90, 120, 130])])  # GT of index 1 clamps to (90,90,100,100)
    pred = [(0, [10, 10, -20, -20]), (1, [100, 100, 90, 90])]   # -> (0,0,10,10) and (90,90,100,100)
    result = score(o1(0, 1, pred, pred), gt)
    assert result.terms["spatial"] == pytest.approx(2.0)


def test_zero_area_box_scores_minus_its_l1():
    gt = target(0, 0, [(0, SQUARE)])
    result = score(o1(0, 0, [(0, SQUARE)], [(0, [5, 5, 5, 5])]), gt)
    # IoU 0 (union = 100), C = 100 -> GIoU = 0 - 0/100 = 0; L1 = (5+5+5+5)/4/100 = 0.05 -> -0.05
    assert result.terms["spatial"] == pytest.approx(1 - 0.05)
    assert result.terms["think"] == 0.0


def test_spans_that_do_not_intersect_score_no_temporal_or_spatial_reward():
    gt = target(2, 4, [(i, SQUARE) for i in (2, 3, 4)])
    boxes = [(6, SQUARE), (7, SQUARE)]
    result = score(o1(6, 7, boxes, boxes), gt)
    assert result.terms == {"format": 1.0, "consistency": 1.0, "temporal": 0.0, "spatial": 0.0, "think": 0.0}
    assert result.total == 2.0


def test_reversed_span_scores_only_the_format():
    gt = target(2, 4, [(i, SQUARE) for i in (2, 3, 4)])
    for think in ([], [(3, SQUARE), (4, SQUARE), (5, SQUARE)]):
        result = score(o1(5, 3, think, think), gt)
        assert result.terms == {"format": 1.0, "consistency": 0.0, "temporal": 0.0, "spatial": 0.0, "think": 0.0}


def test_format_zero_zeroes_every_term():
    gt = target(2, 2, [(2, SQUARE)])
    good = o1(2, 2, [(2, SQUARE)], [(2, SQUARE)])
    for text in (good.replace("<pred_bbox>", "<pred>"), good.replace("2. [0, 0, 10, 10] </pred", "2. [0, 0, 10] </pred"),
                 "", "no answer"):
        result = score(text, gt)
        assert result.total == 0.0 and set(result.terms.values()) == {0.0} and not result.parsed


def test_consistency_needs_each_index_exactly_once_in_both_lists():
    gt = target(1, 3, [(i, SQUARE) for i in (1, 2, 3)])
    full = [(i, SQUARE) for i in (1, 2, 3)]
    assert score(o1(1, 3, full, full), gt).terms["consistency"] == 1.0
    assert score(o1(1, 3, full[::-1], full), gt).terms["consistency"] == 1.0      # order is free
    assert score(o1(1, 3, full + [(4, SQUARE)], full), gt).terms["consistency"] == 0.0  # an extra index
    assert score(o1(1, 3, full, full + [(0, SQUARE)]), gt).terms["consistency"] == 0.0
    assert score(o1(1, 3, full, full[:2]), gt).terms["consistency"] == 0.0         # pred misses 3
    assert score(o1(1, 3, full, full + [(2, SQUARE)]), gt).terms["consistency"] == 0.0  # 2 twice


def test_gt_index_without_a_box_is_skipped():
    gt = target(2, 4, [(2, SQUARE), (4, SQUARE)])  # no GT box at 3
    pred = [(2, SQUARE), (3, [50, 50, 60, 60])]    # 4 missing
    result = score(o1(2, 4, pred, pred), gt)
    # scored indices 2 and 4 only: (1 + -2) / 2 = -0.5 for each list
    assert result.terms["spatial"] == pytest.approx(-1.0)


def test_no_gt_box_in_the_intersection_gives_zero_spatial():
    gt = target(2, 4, [(2, SQUARE)])
    result = score(o1(3, 4, [], []), gt)
    # intersection {3, 4} has no GT box: R_spa = 0 for both lists; Rt = 2/3
    assert result.terms["spatial"] == 0.0 and result.terms["temporal"] == pytest.approx(2 / 3)


def test_temporal_term_counts_inclusive_integer_indices():
    gt = target(0, 9, [])
    # {5..14} & {0..9} = 5 indices; union {0..14} = 15 -> 1/3
    assert score(o1(5, 14, [], []), gt).terms["temporal"] == pytest.approx(1 / 3)
    # a single shared index: {9..20} & {0..9} = {9}; union 21 -> 1/21
    assert score(o1(9, 20, [], []), gt).terms["temporal"] == pytest.approx(1 / 21)


def test_batch_scores_each_item_against_its_own_target():
    gts = [target(0, 0, [(0, SQUARE)]), target(5, 5, [(5, [0, 0, 20, 20])], width=40, height=40)]
    texts = [o1(0, 0, [(0, SQUARE)], [(0, SQUARE)]), o1(5, 5, [(5, SQUARE)], [(5, [0, 0, 20, 20])])]
    first, second = score_batch("stvg-o1", texts, gts)
    assert first.total == pytest.approx(5.0)
    # second think: IoU 100/400 = 0.25, C = 400 = union -> GIoU 0.25; L1 = (0+0+10/40+10/40)/4 = 0.125 -> 0.125
    # pred exact -> 1; Rs = 1.125; Rk = 1 - 0.125 = 0.875; total = 3 + 1.125 + 0.4375
    assert second.terms["spatial"] == pytest.approx(1.125)
    assert second.total == pytest.approx(4.5625)


def test_empty_batch_scores_nothing():
    assert score_batch("stvg-o1", [], []) == []


# ---- spatial_span="ground_truth": R_spa over the whole GT span -------------------------------

def score_over_truth(text, tgt):
    [result] = score_batch("stvg-o1", [text], [tgt], spatial_span="ground_truth")
    return result


def test_over_the_ground_truth_a_perfect_answer_still_scores_five():
    boxes = [(i, SQUARE) for i in (2, 3, 4)]
    assert score_over_truth(o1(2, 4, boxes, boxes), target(2, 4, boxes)).total == pytest.approx(5.0)


def test_over_the_ground_truth_a_span_that_misses_the_target_scores_minus_two_per_index():
    gt = target(2, 3, [(2, SQUARE), (3, SQUARE)])
    text = o1(6, 7, [(6, SQUARE), (7, SQUARE)], [(6, SQUARE), (7, SQUARE)])
    # The paper's rule: no intersection, so spatial 0 and total = format 1 + consistency 1 = 2.
    assert score(text, gt).total == pytest.approx(2.0)
    # Over the GT span: indices 2 and 3 have no box inside the answer's span: -2 each, in both lists.
    result = score_over_truth(text, gt)
    assert result.terms["spatial"] == pytest.approx(-4.0)
    assert result.terms["think"] == 0.0
    assert result.total == pytest.approx(1 + 1 + 0 - 4)


def test_over_the_ground_truth_boxes_outside_the_answers_own_span_do_not_count():
    gt = target(2, 4, [(i, SQUARE) for i in (2, 3, 4)])
    boxes = [(i, SQUARE) for i in (2, 3, 4)]                 # index 4 lies outside the answer's 2..3
    text = o1(2, 3, boxes, boxes)
    # Rt = |{2,3}| / |{2,3,4}| = 2/3; consistency 0 (an extra index).
    # Paper: R_spa over {2,3} = 1 per list -> spatial 2, total 1 + 0 + 2/3 + 2 = 3.667.
    assert score(text, gt).total == pytest.approx(1 + 2 / 3 + 2)
    # Over the GT span: (1 + 1 - 2) / 3 = 0 per list -> spatial 0, total 1 + 2/3.
    result = score_over_truth(text, gt)
    assert result.terms["spatial"] == pytest.approx(0.0)
    assert result.total == pytest.approx(1 + 2 / 3)


def test_over_the_ground_truth_a_reversed_span_no_longer_beats_a_poor_answer():
    gt = target(4, 5, [(4, SQUARE), (5, SQUARE)])
    reversed_span = o1(9, 4, [(4, SQUARE), (5, SQUARE)], [(4, SQUARE), (5, SQUARE)])
    far = [(4, [80, 80, 90, 90]), (5, [80, 80, 90, 90])]    # consistent, right span, poor boxes
    poor = o1(4, 5, far, far)
    # Poor box: IoU 0, enclosing box 90 x 90 = 8100, union 200: GIoU = -(8100 - 200) / 8100;
    # L1 = (80 + 80 + 80 + 80) / 4 / 100 = 0.8. Per list R_spa = GIoU - L1 for both indices.
    r_spa = -(8100 - 200) / 8100 - 0.8
    assert score(reversed_span, gt).total == pytest.approx(1.0)            # the paper's rule: format only
    assert score(poor, gt).total == pytest.approx(1 + 1 + 1 + 2 * r_spa)  # below it: -0.55
    assert score_over_truth(reversed_span, gt).total == pytest.approx(1 - 4)
    assert score_over_truth(poor, gt).total == pytest.approx(1 + 1 + 1 + 2 * r_spa)


def test_an_unknown_spatial_span_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match="spatial span 'union' is not one of intersection, ground_truth"):
        score_batch("stvg-o1", [""], [target(2, 2, [(2, SQUARE)])], spatial_span="union")
