"""score_batch: one RewardResult per completion, for any task. Weights are applied here only.

A runaway completion (longer than rewards.parsing.MAX_COMPLETION_CHARS characters, as a model may
write early in RL) is never parsed: every term and the total are 0, `parsed` is False and
`runaway` is True, so the 0 is explained in the metrics. It never raises and never fails the batch,
in-process or through the reward server, which calls this same function.

STVG-R1 (as its released code): tiou = continuous tIoU in seconds of the parsed span;
id = 1 when the parsed Target ID equals the target's instance_id; format = answer_format_ok.
A completion whose last <answer> block lacks the ID or the time range scores tiou = id = 0 while
its format term still counts. VTG: tiou and format the same way.
Continuous tIoU = max(0, min(e, ge) - max(s, gs)) / (max(e, ge) - min(s, gs)); 0 when s > e or
the union is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np

from infra.errors import UserError
from rewards.parsing import MAX_COMPLETION_CHARS, answer_format_ok, parse_stvg_r1, parse_vtg
from rewards.schema import (TERMS, SpanTarget, check_o1_batch, check_spatial_span, check_target, check_task,
                            resolve_weights)
from rewards.stvg_o1 import score_stvg_o1


@dataclass(frozen=True)
class RewardResult:
    total: float
    terms: dict[str, float]
    """Term name -> value, in the task's term order (rewards.TERMS)."""
    parsed: bool
    """False when the completion failed to parse (a parse failure for the server's metrics)."""
    runaway: bool = False
    """True when the completion is longer than MAX_COMPLETION_CHARS: scored 0 without being parsed."""

    def as_dict(self) -> dict[str, float]:
        """{"total": ..., <term>: ...} in term order (the `stvg reward` output line)."""
        return {"total": self.total, **self.terms}


def score_batch(task: str, completions: Sequence[str], targets: Sequence[Mapping],
                weights: Optional[Mapping[str, float]] = None,
                spatial_span: str = "intersection") -> list[RewardResult]:
    """Score each completion against its target. Raises TargetError for an unknown task or a bad
    target (naming its position and field), ConfigError for an unknown weight term or spatial span;
    a malformed completion never raises, it scores. `spatial_span` is STVG-o1's (rewards.stvg_o1)."""
    check_task(task)
    resolved = resolve_weights(task, weights)
    check_spatial_span(spatial_span)
    if len(completions) != len(targets):
        raise UserError(f"got {len(completions)} completions but {len(targets)} targets; give one target each")
    if task == "stvg-o1":
        terms, parsed = score_stvg_o1(completions, check_o1_batch(targets), spatial_span)
    else:
        checked = [check_target(task, target, where=f"target {i}") for i, target in enumerate(targets)]
        terms, parsed = _score_answer_task(task, completions, checked)
    names = TERMS[task]
    total = np.zeros(len(completions))
    for name in names:
        total += resolved[name] * terms[name]
    columns = [terms[name].tolist() for name in names]
    runaway = [is_runaway(text) for text in completions]
    return [RewardResult(total=t, terms=dict(zip(names, row)), parsed=p, runaway=r)
            for t, p, r, *row in zip(total.tolist(), parsed.tolist(), runaway, *columns)]


def is_runaway(text: object) -> bool:
    """A completion too long to parse (every parser returns None for it, so every term is 0)."""
    return isinstance(text, str) and len(text) > MAX_COMPLETION_CHARS


def span_tiou(start: np.ndarray, end: np.ndarray, gt_start: np.ndarray, gt_end: np.ndarray) -> np.ndarray:
    """Continuous tIoU row-wise; 0 where start > end or the union is empty."""
    inter = np.clip(np.minimum(end, gt_end) - np.maximum(start, gt_start), 0.0, None)
    union = np.maximum(end, gt_end) - np.minimum(start, gt_start)
    value = np.divide(inter, union, out=np.zeros(np.shape(inter)), where=union > 0)
    return np.where(start <= end, value, 0.0)


def _score_answer_task(task: str, completions: Sequence[str],
                       targets: Sequence[SpanTarget]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    n = len(completions)
    parser = parse_stvg_r1 if task == "stvg-r1" else parse_vtg
    fmt = np.array([answer_format_ok(text) for text in completions], dtype=np.float64).reshape(n)
    parsed = [parser(text) for text in completions]
    ok = np.array([p is not None for p in parsed], dtype=bool).reshape(n)
    start = np.array([p.t_start if p else 0.0 for p in parsed], np.float64).reshape(n)
    end = np.array([p.t_end if p else 0.0 for p in parsed], np.float64).reshape(n)
    gt_start = np.array([t.t_start for t in targets], np.float64).reshape(n)
    gt_end = np.array([t.t_end for t in targets], np.float64).reshape(n)
    tiou = np.where(ok, span_tiou(start, end, gt_start, gt_end), 0.0)
    if task == "vtg":
        return {"tiou": tiou, "format": fmt}, ok
    same_id = np.array([p is not None and p.instance_id == t.instance_id for p, t in zip(parsed, targets)],
                       dtype=np.float64).reshape(n)
    return {"tiou": tiou, "id": same_id, "format": fmt}, ok
