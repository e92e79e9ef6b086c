"""Box hygiene, IoU, GIoU and L1 on hand-worked boxes."""

import numpy as np
import pytest

from rewards.boxes import giou, iou, l1, sanitize, spatial_score


def rows(*boxes):
    return np.array(boxes, dtype=np.float64)


def test_sanitize_reorders_corners_then_clamps_to_the_frame():
    out = sanitize(rows([10, 20, 0, 5], [-10, -5, 120, 60], [150, 70, 130, 80]), 100, 50)
    # (10,20,0,5) -> (0,5,10,20); (-10,-5,120,60) -> (0,0,100,50); (150,70,130,80) -> x both 100, y both 50
    np.testing.assert_array_equal(out, [[0, 5, 10, 20], [0, 0, 100, 50], [100, 50, 100, 50]])


def test_iou_and_giou_of_overlapping_boxes():
    a, b = rows([0, 0, 10, 10]), rows([5, 5, 15, 15])
    # inter 5*5 = 25, union 100 + 100 - 25 = 175, IoU = 1/7; enclosing C = 15*15 = 225
    # GIoU = 1/7 - (225 - 175)/225 = 1/7 - 2/9 = -5/63
    assert iou(a, b)[0] == pytest.approx(1 / 7)
    assert giou(a, b)[0] == pytest.approx(-5 / 63)


def test_giou_of_disjoint_boxes_is_negative():
    # inter 0, union 200, C = 30*10 = 300 -> GIoU = 0 - 100/300
    assert giou(rows([0, 0, 10, 10]), rows([20, 0, 30, 10]))[0] == pytest.approx(-1 / 3)


def test_identical_zero_area_boxes_have_iou_and_giou_zero():
    # union 0 -> IoU 0; enclosing area 0 -> GIoU = IoU = 0
    a = rows([5, 5, 5, 5])
    assert iou(a, a)[0] == 0.0 and giou(a, a)[0] == 0.0


def test_two_separate_segments_have_giou_minus_one():
    # both areas 0, union 0 -> IoU 0; enclosing (0,0)-(10,10) = 100 -> GIoU = 0 - (100 - 0)/100
    assert giou(rows([0, 0, 0, 10]), rows([10, 0, 10, 10]))[0] == pytest.approx(-1.0)


def test_l1_normalises_x_by_width_and_y_by_height():
    # |0-5|/100, |0-5|/50, |10-15|/100, |10-15|/50 = 0.05, 0.1, 0.05, 0.1 -> mean 0.075
    assert l1(rows([0, 0, 10, 10]), rows([5, 5, 15, 15]), 100, 50)[0] == pytest.approx(0.075)


def test_spatial_score_applies_hygiene_to_both_boxes():
    # prediction reversed and partly outside the frame; after hygiene both are (0,0,10,10): 1 - 0
    score = spatial_score(rows([10, 10, -20, -30]), rows([0, 0, 10, 10]), np.array([100.0]), np.array([100.0]))
    assert score[0] == pytest.approx(1.0)


def test_spatial_score_is_bounded_below_by_minus_two():
    # opposite corners of the frame: GIoU -> -1 (C = whole frame, union ~ 0), L1 = (1 + 1 + 1 + 1)/4 = 1
    score = spatial_score(rows([0, 0, 0, 0]), rows([100, 100, 100, 100]), 100.0, 100.0)
    assert score[0] == pytest.approx(-2.0)
