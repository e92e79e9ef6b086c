"""format_answer is the inverse of the parsers: its completion scores the task's maximum reward."""

from __future__ import annotations

import numpy as np
import pytest

from rewards import score_batch
from rewards.answers import format_answer
from rewards.parsing import parse_stvg_o1, parse_stvg_r1, parse_vtg

N_TARGETS = 300


def _o1_targets(rng: np.random.Generator, integer_boxes: bool) -> list[dict]:
    targets = []
    for _ in range(N_TARGETS):
        width, height = int(rng.integers(56, 400)), int(rng.integers(56, 400))
        start = int(rng.integers(0, 30))
        end = start + int(rng.integers(0, 12))
        boxes = []
        for index in range(max(start - 2, 0), end + 3):  # some GT boxes outside the span, some indices missing
            if rng.random() < 0.25:
                continue
            x1, y1 = rng.uniform(0, width - 20), rng.uniform(0, height - 20)
            box = [x1, y1, rng.uniform(x1 + 10, width), rng.uniform(y1 + 10, height)]  # at least 10 x 10 px
            if integer_boxes:
                box = [float(np.floor(v)) for v in box]
            boxes.append([index, *box])
        targets.append({"t_start": start, "t_end": end, "boxes": boxes, "width": width, "height": height})
    return targets


def _o1_max(target: dict) -> float:
    """format + consistency + temporal = 3, plus Rs = 2 when a GT box lies inside the span (Rk = 0)."""
    scored = any(target["t_start"] <= box[0] <= target["t_end"] for box in target["boxes"])
    return 5.0 if scored else 3.0


def test_stvg_o1_answer_scores_the_maximum_for_whole_pixel_boxes():
    targets = _o1_targets(np.random.default_rng(0), integer_boxes=True)
    answers = [format_answer("stvg-o1", t) for t in targets]
    results = score_batch("stvg-o1", answers, targets)
    assert any(_o1_max(t) == 3.0 for t in targets) and any(_o1_max(t) == 5.0 for t in targets)
    for target, result in zip(targets, results):
        assert result.total == pytest.approx(_o1_max(target), abs=1e-9), (target, result)
        assert result.terms["think"] == 0.0 and result.terms["consistency"] == 1.0


def test_stvg_o1_answer_with_enough_decimals_scores_the_maximum_for_any_boxes():
    targets = _o1_targets(np.random.default_rng(1), integer_boxes=False)
    results = score_batch("stvg-o1", [format_answer("stvg-o1", t, box_decimals=6) for t in targets], targets)
    for target, result in zip(targets, results):
        assert result.total == pytest.approx(_o1_max(target), abs=1e-5)


def test_stvg_o1_integer_answer_loses_at_most_the_rounding():
    # Rounding moves each coordinate by <= 0.5 px; on boxes of >= 10 x 10 px that keeps IoU >= 100 / 121 and
    # L1 <= 0.5 / 56, so each R_spa >= 0.8 and Rs >= 1.6: the total stays within 0.5 of the maximum.
    targets = _o1_targets(np.random.default_rng(2), integer_boxes=False)
    results = score_batch("stvg-o1", [format_answer("stvg-o1", t) for t in targets], targets)
    for target, result in zip(targets, results):
        assert _o1_max(target) - 0.5 <= result.total <= _o1_max(target) + 1e-9
        assert result.terms["format"] == result.terms["consistency"] == result.terms["temporal"] == 1.0


def test_stvg_o1_answer_lists_every_index_of_the_span_with_gt_boxes_where_known():
    target = {"t_start": 2, "t_end": 5, "width": 100, "height": 100,
              "boxes": [[1, 0, 0, 10, 10], [2, 10, 10, 20, 20], [5, 40, 10, 50, 20]]}
    parsed = parse_stvg_o1(format_answer("stvg-o1", target))
    assert (parsed.t_start, parsed.t_end) == (2, 5)
    # indices 3 and 4 interpolate between index 2 and index 5: x moves 10 px per second
    expected = ((2, (10, 10, 20, 20)), (3, (20, 10, 30, 20)), (4, (30, 10, 40, 20)), (5, (40, 10, 50, 20)))
    assert parsed.pred == expected and parsed.think == expected


def test_stvg_o1_answer_without_gt_boxes_boxes_the_whole_frame():
    parsed = parse_stvg_o1(format_answer("stvg-o1", {"t_start": 0, "t_end": 1, "boxes": [], "width": 64,
                                                     "height": 48}))
    assert parsed.pred == ((0, (0, 0, 64, 48)), (1, (0, 0, 64, 48)))


@pytest.mark.parametrize("task", ["stvg-r1", "vtg"])
def test_span_answer_scores_the_maximum_for_spans_in_hundredths(task):
    rng = np.random.default_rng(3)
    targets = []
    for _ in range(N_TARGETS):
        start = int(rng.integers(0, 6000))
        target = {"t_start": start / 100, "t_end": (start + int(rng.integers(0, 3000))) / 100}
        if task == "stvg-r1":
            target["instance_id"] = int(rng.integers(0, 50))
        targets.append(target)
    answers = [format_answer(task, t) for t in targets]
    results = score_batch(task, answers, targets)
    best = {"stvg-r1": 3.0, "vtg": 2.0}[task]
    parser = parse_stvg_r1 if task == "stvg-r1" else parse_vtg
    for target, answer, result in zip(targets, answers, results):
        parsed = parser(answer)
        assert (parsed.t_start, parsed.t_end) == (target["t_start"], target["t_end"])
        # a zero-length GT span has tIoU 0 whatever the answer (empty union), as the pinned rule says
        expected = best if target["t_end"] > target["t_start"] else best - 1.0
        assert result.total == pytest.approx(expected, abs=1e-12), (answer, target)


def test_span_answers_follow_the_documented_text():
    assert format_answer("vtg", {"t_start": 1, "t_end": 12.5}) == "<think></think><answer>1.00 to 12.50</answer>"
    assert (format_answer("stvg-r1", {"t_start": 0.25, "t_end": 3, "instance_id": 7}, think="object 7")
            == "<think>object 7</think><answer>Target ID: 7, Time range: 0.25 to 3.00</answer>")
