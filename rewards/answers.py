"""The ideal completion for a reward target: the inverse of the parsers, used as the SFT answer.

`format_answer(task, target)` writes the ground truth in the task's output format so that
`rewards.score_batch(task, [answer], [target])` gives the task's maximum reward whenever the
target's numbers are representable at the written precision (always for the time spans the
synthetic data and HC-STVG produce at 2 decimals; for boxes when they are whole pixels, or with
enough `box_decimals`):

- stvg-o1: `<time> ts - te </time> <think_bbox> i. [x1, y1, x2, y2], ... </think_bbox>
  <pred_bbox> i. [...], ... </pred_bbox>`, one box per index ts..te in both lists (so Rc = 1).
  The think (draft) boxes EQUAL the final boxes: that is the only way to reach the maximum
  (Rs = 2 needs perfect drafts, and then Rk = max(R_spa(pred) - R_spa(think), 0) = 0). A
  deliberately perturbed draft would teach the model a noise process, not refinement; refining is
  left to GRPO, where Rk rewards it. An index inside the span without a GT box (the reward skips
  it, but Rc still needs it listed) gets the box linearly interpolated between its nearest GT
  neighbours (the nearest one outside their range); with no GT box at all, the whole frame.
  Coordinates are rounded to `box_decimals` (0 = integer pixels, as the instruction asks).
- stvg-r1: `<think></think><answer>Target ID: N, Time range: s to e</answer>`.
- vtg: `<think></think><answer>s to e</answer>`.
  Seconds are written with `time_decimals` (2, as the instructions ask). The think block is empty
  by default: ground truth carries no reasoning trace, and an invented template would only teach
  the model to copy it (and cost tokens on every rollout); pass `think=` to write one.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from rewards.schema import check_target, check_task


def format_answer(task: str, target: Mapping[str, Any], *, think: str = "", box_decimals: int = 0,
                  time_decimals: int = 2) -> str:
    """The completion that answers `target` (schema in rewards.schema) perfectly for `task`.

    >>> format_answer("vtg", {"t_start": 2.4, "t_end": 7.8})
    '<think></think><answer>2.40 to 7.80</answer>'
    >>> format_answer("stvg-o1", {"t_start": 3, "t_end": 4, "width": 112, "height": 84,
    ...                           "boxes": [[3, 10, 20, 30, 40], [4, 12, 20, 32, 40]]})
    '<time> 3 - 4 </time> <think_bbox> 3. [10, 20, 30, 40], 4. [12, 20, 32, 40] </think_bbox> \
<pred_bbox> 3. [10, 20, 30, 40], 4. [12, 20, 32, 40] </pred_bbox>'
    """
    checked = check_target(check_task(task), target, where=f"{task} target")
    if task == "stvg-o1":
        boxes = _boxes_for_span(checked.t_start, checked.t_end, checked.boxes.tolist(), checked.width,
                                checked.height)
        entries = ", ".join(f"{i}. [{', '.join(_number(v, box_decimals) for v in box)}]"
                            for i, box in zip(range(checked.t_start, checked.t_end + 1), boxes))
        return (f"<time> {checked.t_start} - {checked.t_end} </time> <think_bbox> {entries} </think_bbox> "
                f"<pred_bbox> {entries} </pred_bbox>")
    span = f"{checked.t_start:.{time_decimals}f} to {checked.t_end:.{time_decimals}f}"
    if task == "stvg-r1":
        return f"<think>{think}</think><answer>Target ID: {checked.instance_id}, Time range: {span}</answer>"
    return f"<think>{think}</think><answer>{span}</answer>"


def _number(value: float, decimals: int) -> str:
    """Fixed-point text the parser accepts (no exponent, no '-0')."""
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _boxes_for_span(first: int, last: int, rows: Sequence[Sequence[float]], width: float,
                    height: float) -> list[Optional[list[float]]]:
    """One box per index first..last: the GT box where there is one, else interpolated."""
    known = sorted((int(r[0]), [float(v) for v in r[1:]]) for r in rows)
    if not known:
        return [[0.0, 0.0, float(width), float(height)] for _ in range(first, last + 1)]
    times = [t for t, _ in known]
    out = []
    for index in range(first, last + 1):
        after = next((k for k, t in enumerate(times) if t >= index), None)
        if after is None:
            out.append(known[-1][1])
        elif times[after] == index or after == 0:
            out.append(known[after][1])
        else:
            (t0, b0), (t1, b1) = known[after - 1], known[after]
            w = (index - t0) / (t1 - t0)
            out.append([a + w * (b - a) for a, b in zip(b0, b1)])
    return out
