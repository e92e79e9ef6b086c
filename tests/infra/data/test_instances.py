"""The ground-truth instance vote (STVG-R1's majority-vote target id), on hand-made boxes."""

from __future__ import annotations

import pytest

from infra.data.instances import assign_target_ids, box_iou, frame_votes, ground_truth_instance
from infra.data.sample import GroundingSample


def test_box_iou_matches_hand_computed_overlaps():
    # [0,10]x[0,10] and [5,15]x[0,10]: intersection 50, union 150
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges do not overlap
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0  # empty union


def test_majority_of_per_frame_best_overlaps_wins():
    gt = {0: (0, 0, 10, 10), 1: (0, 0, 10, 10), 2: (0, 0, 10, 10)}
    tracks = {
        # id 4 overlaps best on frames 0 and 1 (IoU 1), id 9 on frame 2 only
        4: {0: (0, 0, 10, 10), 1: (0, 0, 10, 10), 2: (20, 20, 30, 30)},
        9: {0: (5, 0, 15, 10), 1: (5, 0, 15, 10), 2: (0, 0, 10, 10)},
    }
    assert ground_truth_instance(gt, tracks) == 4
    assert frame_votes(gt, tracks) == {4: (2, pytest.approx(2.0)), 9: (1, pytest.approx(1.0))}


def test_tied_votes_go_to_the_higher_summed_iou():
    gt = {0: (0, 0, 10, 10), 1: (0, 0, 10, 10)}
    tracks = {
        2: {0: (0, 0, 10, 10)},   # one vote with IoU 1
        7: {1: (0, 0, 10, 5)},    # one vote with IoU 50/100 = 0.5
    }
    assert ground_truth_instance(gt, tracks) == 2
    # swap the quality: now id 7 has the better overlap and wins the tie
    tracks = {2: {0: (0, 0, 10, 5)}, 7: {1: (0, 0, 10, 10)}}
    assert ground_truth_instance(gt, tracks) == 7


def test_complete_tie_goes_to_the_lowest_id():
    gt = {0: (0, 0, 10, 10), 1: (0, 0, 10, 10)}
    tracks = {8: {0: (0, 0, 10, 10)}, 3: {1: (0, 0, 10, 10)}}  # one vote each, IoU 1 each
    assert ground_truth_instance(gt, tracks) == 3


def test_equal_overlap_on_one_frame_votes_for_the_lower_id():
    gt = {5: (0, 0, 10, 10)}
    tracks = {6: {5: (0, 0, 10, 5)}, 2: {5: (0, 5, 10, 10)}}  # both IoU 0.5
    assert frame_votes(gt, tracks) == {2: (1, pytest.approx(0.5))}


def test_no_overlap_anywhere_gives_none():
    gt = {0: (0, 0, 10, 10), 1: (0, 0, 10, 10)}
    assert ground_truth_instance(gt, {1: {0: (50, 50, 60, 60)}, 2: {1: (10, 0, 20, 10)}}) is None
    assert ground_truth_instance(gt, {1: {7: (0, 0, 10, 10)}}) is None  # boxes on other frames only
    assert ground_truth_instance(gt, {}) is None
    assert ground_truth_instance({}, {1: {0: (0, 0, 10, 10)}}) is None


def test_frames_without_overlap_do_not_vote():
    gt = {0: (0, 0, 10, 10), 1: (0, 0, 10, 10), 2: (0, 0, 10, 10)}
    # id 1 overlaps only on frame 0; on frames 1-2 nothing overlaps: one vote for id 1
    tracks = {1: {0: (0, 0, 10, 10), 1: (40, 40, 50, 50)}, 2: {2: (40, 40, 50, 50)}}
    assert frame_votes(gt, tracks) == {1: (1, pytest.approx(1.0))}
    assert ground_truth_instance(gt, tracks) == 1


def _sample(target_id=None, tracks=None) -> GroundingSample:
    return GroundingSample(id="s", video="v.mp4", fps=5.0, frame_count=10, width=100, height=100, query="q",
                           span_frames=(0, 2), span_seconds=(0.0, 0.4), boxes={0: (0, 0, 10, 10), 1: (0, 0, 10, 10)},
                           tracks=tracks, target_id=target_id)


def test_assign_target_ids_fills_missing_ids_and_keeps_given_ones():
    tracks = {1: {0: (50, 50, 60, 60)}, 5: {0: (0, 0, 10, 10), 1: (1, 0, 11, 10)}}
    filled, kept, untracked = assign_target_ids([_sample(None, tracks), _sample(1, tracks), _sample(None, None)])
    assert filled.target_id == 5
    assert kept.target_id == 1
    assert untracked.target_id is None
    assert assign_target_ids([_sample(1, tracks)], overwrite=True)[0].target_id == 5
