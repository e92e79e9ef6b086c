"""Target validation, task names and weights: errors name the item and the field."""

import math

import numpy as np
import pytest

from infra.errors import ConfigError, UserError
from rewards import TASKS, TargetError, score_batch, validate_target

O1 = {"t_start": 1, "t_end": 2, "boxes": [[1, 0, 0, 5, 5], [2, 0, 0, 5, 5]], "width": 10, "height": 10}


def test_tasks_and_error_type():
    assert TASKS == ("stvg-o1", "stvg-r1", "vtg")
    assert issubclass(TargetError, UserError)


def test_valid_targets_pass():
    validate_target("stvg-o1", O1)
    validate_target("stvg-o1", {**O1, "t_start": 1.0, "boxes": np.array(O1["boxes"]), "extra": "ignored"})
    validate_target("stvg-o1", {**O1, "boxes": []})
    validate_target("stvg-r1", {"t_start": 0, "t_end": 2.5, "instance_id": 0})
    validate_target("vtg", {"t_start": 0.5, "t_end": 0.5})


def test_unknown_task_lists_the_tasks():
    with pytest.raises(TargetError, match="stvg-o1, stvg-r1, vtg"):
        validate_target("stvg", {})
    with pytest.raises(TargetError, match="unknown task 'x'"):
        score_batch("x", [], [])


@pytest.mark.parametrize("task,target,message", [
    ("vtg", [1, 2], "must be an object"),
    ("vtg", {"t_start": 1}, "missing field 't_end'"),
    ("vtg", {"t_start": "1", "t_end": 2}, "'t_start' must be a finite number"),
    ("vtg", {"t_start": True, "t_end": 2}, "'t_start' must be a finite number"),
    ("vtg", {"t_start": 1, "t_end": math.nan}, "'t_end' must be a finite number"),
    ("vtg", {"t_start": 1, "t_end": math.inf}, "'t_end' must be a finite number"),
    ("vtg", {"t_start": 1, "t_end": 10 ** 400}, "'t_end' must be a finite number"),
    ("vtg", {"t_start": -1, "t_end": 2}, "'t_start' must be >= 0"),
    ("vtg", {"t_start": 3, "t_end": 2}, "must be <= 't_end'"),
    ("stvg-r1", {"t_start": 1, "t_end": 2}, "missing field 'instance_id'"),
    ("stvg-r1", {"t_start": 1, "t_end": 2, "instance_id": 1.5}, "'instance_id' must be an integer"),
    ("stvg-r1", {"t_start": 1, "t_end": 2, "instance_id": -1}, "'instance_id' must be an integer"),
    ("stvg-o1", {**O1, "t_end": 2.5}, "'t_end' must be an integer second"),
    ("stvg-o1", {**O1, "width": 0}, "'width' must be > 0"),
    ("stvg-o1", {**O1, "height": -3}, "'height' must be > 0"),
    ("stvg-o1", {**O1, "boxes": "none"}, "'boxes' must be a list"),
    ("stvg-o1", {**O1, "boxes": [[1, 0, 0, 5]]}, r"'boxes\[0\]' must be \[t, x1, y1, x2, y2\]"),
    ("stvg-o1", {**O1, "boxes": [[1, 0, 0, 5, 5], [2, 0, "0", 5, 5]]}, r"'boxes\[1\]\[2\]' must be a finite"),
    ("stvg-o1", {**O1, "boxes": [[1, 0, 0, 5, math.nan]]}, r"'boxes\[0\]\[4\]' must be a finite"),
    ("stvg-o1", {**O1, "boxes": [[1.5, 0, 0, 5, 5]]}, r"'boxes\[0\]' has t=1.5"),
    ("stvg-o1", {**O1, "boxes": [[-1, 0, 0, 5, 5]]}, r"'boxes\[0\]' has t=-1"),
    ("stvg-o1", {**O1, "boxes": [[1, 0, 0, 5, 5], [1, 1, 1, 5, 5]]}, r"'boxes\[1\]' repeats t=1"),
])
def test_bad_targets_name_the_field(task, target, message):
    with pytest.raises(TargetError, match=message):
        validate_target(task, target)


def test_score_batch_names_the_bad_item():
    good = {"t_start": 1, "t_end": 2}
    with pytest.raises(TargetError, match="target 1: missing field 't_end'"):
        score_batch("vtg", ["a", "b"], [good, {"t_start": 1}])
    with pytest.raises(TargetError, match=r"target 2: field 'boxes\[0\]\[1\]'"):
        score_batch("stvg-o1", ["a"] * 3, [O1, O1, {**O1, "boxes": [[1, None, 0, 5, 5]]}])
    with pytest.raises(TargetError, match=r"target 1: field 'boxes\[1\]' repeats"):
        score_batch("stvg-o1", ["a"] * 2, [O1, {**O1, "boxes": [[1, 0, 0, 5, 5], [1, 0, 0, 5, 5]]}])


def test_mismatched_lengths_are_a_user_error():
    with pytest.raises(UserError, match="2 completions but 1 targets"):
        score_batch("vtg", ["a", "b"], [{"t_start": 1, "t_end": 2}])


def test_unknown_or_bad_weights_are_config_errors():
    with pytest.raises(ConfigError, match="unknown reward term 'spatial' for task vtg; terms: tiou, format"):
        score_batch("vtg", [], [], weights={"spatial": 1.0})
    with pytest.raises(ConfigError, match="'think' must be a finite number"):
        score_batch("stvg-o1", [], [], weights={"think": math.nan})
