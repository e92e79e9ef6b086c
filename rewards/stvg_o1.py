"""STVG-o1 reward terms over a whole batch with array operations.

Parsing is per string (rewards.parsing.o1_fields); everything after it is numpy over the batch:
the numbers of all completions are converted in one call, every (completion, index) pair gets an
integer key item * KEY_STRIDE + index, one stable argsort per box list gives the first occurrence
of each key, and the GT rows find their predicted box with np.searchsorted. Per-item sums and
counts are np.bincount.

Terms (docs/conventions.md, "Reward terms"), all 0 when the format term is 0:
- format: 1 when the completion parses (rewards.parsing).
- consistency: 1 when both lists hold each index ts..te exactly once and nothing else (0 if ts > te).
- temporal: |{ts..te} ∩ {gs..ge}| / |{ts..te} ∪ {gs..ge}| (0 if ts > te).
- spatial: R_spa(think) + R_spa(pred), where R_spa(B) is the mean over the GT indices (those with a
  GT box) in [max(ts, gs), min(te, ge)] of GIoU - L1 (-2 for an index B lacks; the first box of a
  repeated index counts), and 0 when that set is empty.
- think: max(R_spa(pred) - R_spa(think), 0).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from rewards.boxes import spatial_score
from rewards.parsing import o1_fields
from rewards.schema import MAX_INDEX, O1Batch

KEY_STRIDE = MAX_INDEX + 1
MISSING_BOX_SCORE = -2.0


def score_stvg_o1(completions: Sequence[str], targets: O1Batch,
                  spatial_span: str = "intersection") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Terms (name -> float array [n]) and the parsed mask, for targets validated by check_o1_batch.

    `spatial_span` chooses the GT indices R_spa averages over: "intersection" (the paper's, 0 when
    the spans do not meet) or "ground_truth" (every GT index with a box; one outside the answer's
    own span scores like a missing box, so a span that dodges the target cannot beat poor boxes)."""
    n = len(completions)
    ok = np.zeros(n, bool)
    ts = np.zeros(n, np.int64)
    te = np.full(n, -1, np.int64)
    counts = np.zeros((n, 2), np.int64)  # entries in (think, pred) per item
    chunks: list[str] = []
    for i, text in enumerate(completions):
        fields = o1_fields(text)
        if fields is None:
            continue
        ok[i] = True
        ts[i], te[i], think, counts[i, 0], pred, counts[i, 1] = fields
        chunks += (think, pred)
    values = _to_floats(chunks, 5 * int(counts.sum())).reshape(-1, 5)
    entry_item = np.repeat(np.repeat(np.arange(n), 2), counts.ravel())
    entry_is_pred = np.repeat(np.tile(np.array([False, True]), n), counts.ravel())

    gs, ge, width, height = targets.t_start, targets.t_end, targets.width, targets.height
    gt_rows, gt_item = targets.boxes, targets.item
    gt_index = gt_rows[:, 0].astype(np.int64)

    valid_span = ok & (ts <= te)
    length = np.where(valid_span, te - ts + 1, 0)
    inter = np.clip(np.minimum(te, ge) - np.maximum(ts, gs) + 1, 0, None)
    union = length + (ge - gs + 1) - inter
    temporal = np.where(valid_span, inter / np.maximum(union, 1), 0.0)

    low, high = np.maximum(ts, gs), np.minimum(te, ge)
    in_intersection = ok[gt_item] & (gt_index >= low[gt_item]) & (gt_index <= high[gt_item])
    in_truth = ok[gt_item] & (gt_index >= gs[gt_item]) & (gt_index <= ge[gt_item])
    scored = in_intersection if spatial_span == "intersection" else in_truth
    g_item, g_index, g_box = gt_item[scored], gt_index[scored], gt_rows[scored, 1:]
    g_boxed = in_intersection[scored]  # GT indices whose predicted box counts; the rest score -2
    g_count = np.bincount(g_item, minlength=n)

    consistent = valid_span.copy()
    spa = []
    for is_pred in (False, True):
        pick = entry_is_pred == is_pred
        item, index, box = entry_item[pick], values[pick, 0].astype(np.int64), values[pick, 1:]
        keys, first = _first_occurrences(item, index)
        consistent &= _covers_span_exactly(item, keys, ts, te, length, n)
        spa.append(_spatial(keys, first, box, g_item, g_index, g_box, g_boxed, g_count, width, height, n))
    spa_think, spa_pred = spa

    zero = np.zeros(n)
    terms = {
        "format": ok.astype(np.float64),
        "consistency": consistent.astype(np.float64),
        "temporal": temporal,
        "spatial": np.where(ok, spa_think + spa_pred, zero),
        "think": np.where(ok, np.maximum(spa_pred - spa_think, 0.0), zero),
    }
    return terms, ok


def _to_floats(chunks: list[str], expected: int) -> np.ndarray:
    """All numbers of the validated box lists as one float array, converted in C in one call."""
    if expected == 0:
        return np.zeros(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # emitted only if the text had junk
        values = np.fromstring(" ".join(chunks), dtype=np.float64, sep=" ")
    if values.size != expected:  # cannot happen for text the parser validated; stay correct anyway
        values = np.array(" ".join(chunks).split(), dtype=np.float64)
    return values


def _first_occurrences(item: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys item * KEY_STRIDE + index, and the row of each key's first entry."""
    keys = item * KEY_STRIDE + index
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.ones(len(ordered), bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first], order[first]


def _covers_span_exactly(item: np.ndarray, keys: np.ndarray, ts: np.ndarray, te: np.ndarray,
                         length: np.ndarray, n: int) -> np.ndarray:
    """Per item: the list has `length` entries and `length` distinct indices inside ts..te."""
    total = np.bincount(item, minlength=n)
    key_item, key_index = keys // KEY_STRIDE, keys % KEY_STRIDE
    inside = (key_index >= ts[key_item]) & (key_index <= te[key_item])
    return (total == length) & (np.bincount(key_item[inside], minlength=n) == length)


def _spatial(keys: np.ndarray, first: np.ndarray, box: np.ndarray, g_item: np.ndarray, g_index: np.ndarray,
             g_box: np.ndarray, g_boxed: np.ndarray, g_count: np.ndarray, width: np.ndarray,
             height: np.ndarray, n: int) -> np.ndarray:
    """R_spa per item for one box list (distinct keys with the row of their first box); GT rows
    outside `g_boxed` score as missing whatever the list holds for them."""
    g_keys = g_item * KEY_STRIDE + g_index
    score = np.full(len(g_keys), MISSING_BOX_SCORE)
    if len(keys) and len(g_keys):
        pos = np.minimum(np.searchsorted(keys, g_keys), len(keys) - 1)
        found = (keys[pos] == g_keys) & g_boxed
        rows = first[pos[found]]
        owner = g_item[found]
        score[found] = spatial_score(box[rows], g_box[found], width[owner], height[owner])
    sums = np.bincount(g_item, weights=score, minlength=n)
    return np.divide(sums, g_count, out=np.zeros(n), where=g_count > 0)
