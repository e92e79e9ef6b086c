"""Distinct, well-formed and malformed completions with their targets, for every task.

Item i of a task has its own span (so its reward differs from its neighbours'), which is what lets
the concurrency tests notice a result landing at the wrong index.
"""

from __future__ import annotations

from typing import Any


def o1_completion(ts: int, te: int, shift: float) -> str:
    boxes = ", ".join(f"{i}. [{10 + shift:.1f}, 20, {60 + shift:.1f}, 80]" for i in range(ts, te + 1))
    final = ", ".join(f"{i}. [{12 + shift:.1f}, 20, {58 + shift:.1f}, 78]" for i in range(ts, te + 1))
    return f"<time> {ts} - {te} </time> <think_bbox> {boxes} </think_bbox> <pred_bbox> {final} </pred_bbox>"


def o1_target(gs: int, ge: int) -> dict[str, Any]:
    return {"t_start": float(gs), "t_end": float(ge), "width": 160.0, "height": 120.0,
            "boxes": [[float(t), 14.0, 22.0, 60.0, 80.0] for t in range(gs, ge + 1)]}


def items(task: str, count: int, malformed_every: int = 5) -> tuple[list[str], list[dict[str, Any]]]:
    """`count` (completion, target) pairs of `task`; every `malformed_every`-th completion is junk."""
    completions, targets = [], []
    for i in range(count):
        if malformed_every and i % malformed_every == malformed_every - 1:
            completions.append(["", "<answer>", "no tags at all", "<time> 3 - </time>", "{{[[<<"][i % 5])
        elif task == "stvg-o1":
            completions.append(o1_completion(1 + i % 4, 4 + i % 5, shift=i * 0.7))
        elif task == "stvg-r1":
            completions.append(f"<think>candidate {i}</think><answer>Target ID: {i % 4}, "
                               f"Time range: {1 + (i % 7) * 0.25:.2f} to {5 + (i % 11) * 0.5:.2f}</answer>")
        else:
            completions.append(f"<think>moment {i}</think><answer>{1 + (i % 7) * 0.25:.2f} to "
                               f"{5 + (i % 11) * 0.5:.2f}</answer>")
        if task == "stvg-o1":
            targets.append(o1_target(2 + i % 3, 6 + i % 2))
        elif task == "stvg-r1":
            targets.append({"t_start": 2.0 + (i % 13) * 0.1, "t_end": 6.0 + (i % 3), "instance_id": i % 3})
        else:
            targets.append({"t_start": 2.0 + (i % 13) * 0.1, "t_end": 6.0 + (i % 3)})
    return completions, targets
