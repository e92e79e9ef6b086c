"""Box credit for STVG-o1 (grpo.credit=box): the tokens of each box learn from that box's own score.

With answer credit (GRPO as the papers run it) every token of an answer shares one advantage, made
of the whole reward. An STVG-o1 answer holds a draft and a final box for each second of its span,
so the signal a box's digits get from their own quality is one part in ten or more, and the rest is
the other boxes' luck. With box credit:

- a box entry `i. [x1, y1, x2, y2]` is scored alone: GIoU - L1 against the GT box of second i (the
  per-box term of the spatial reward, rewards.boxes.spatial_score, box hygiene included);
- its advantage is that score relative to the same entry (same list, same second) in the other
  answers of the group, with the group's estimator (trainer.grpo.compute_advantages);
- the tokens of its coordinates (`[x1, y1, x2, y2]`) take that advantage; every other token (the
  span, the tags, each entry's second and separators, which decide the consistency term, boxes at
  seconds without a GT box, a repeated second's later boxes, a box no other answer of the group
  has) keeps the answer's advantage.

Tokens are matched to characters by decoding each token alone: when the pieces do not join up to
the completion's text (a multi-byte character split across tokens), that answer keeps answer
credit and `adv/box_credit_unmapped` counts it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Hashable, Optional, Sequence

import numpy as np
import torch

from rewards.boxes import spatial_score
from rewards.parsing import o1_box_entries
from trainer.grpo.advantages import compute_advantages


def box_scores(text: str, target: dict) -> list[tuple[tuple[str, int], int, int, float]]:
    """((part, second), start, end, score) for every box of `text` that the spatial reward scores
    (the first box of each part and second, at a second with a GT box); [] when it does not parse.
    start:end are the characters of the coordinates, `[x1, y1, x2, y2]`: the second's number before
    them decides, with the separators, whether the lists are consistent, so it keeps the answer's credit."""
    entries = o1_box_entries(text) or []
    truth = {int(row[0]): row[1:] for row in target["boxes"]}
    seen: set[tuple[str, int]] = set()
    picked = []
    for part, index, start, end, box in entries:
        key = (part, index)
        if key in seen:  # a repeated second: the reward scores its first box only
            continue
        seen.add(key)
        if index in truth and target["t_start"] <= index <= target["t_end"]:
            picked.append((key, text.index("[", start, end), end, box, truth[index]))
    if not picked:
        return []
    scores = spatial_score(np.array([p[3] for p in picked], np.float64), np.array([p[4] for p in picked], np.float64),
                           float(target["width"]), float(target["height"]))
    return [(key, start, end, float(score)) for (key, start, end, _, _), score in zip(picked, scores)]


def token_char_spans(token_ids: Sequence[int], text: str, tokenizer: Any) -> Optional[list[tuple[int, int]]]:
    """(start, end) characters of each token in `text`, or None when the tokens decoded one by one
    do not join up to `text`."""
    pieces = tokenizer.batch_decode([[t] for t in token_ids], skip_special_tokens=True)
    if "".join(pieces) != text:
        return None
    spans, at = [], 0
    for piece in pieces:
        spans.append((at, at + len(piece)))
        at += len(piece)
    return spans


def box_token_advantages(texts: Sequence[str], token_ids: Sequence[Sequence[int]], answer_advantages: Sequence[float],
                         group_ids: Sequence[Hashable], targets: Sequence[dict], tokenizer: Any, estimator: str,
                         std_eps: float) -> tuple[list[Optional[list[float]]], dict[str, float]]:
    """Per-token advantages of each answer under box credit (None: the answer keeps its answer
    advantage on every token) and metrics: `box_credit_frac` (share of all tokens that took a box's
    advantage) and `box_credit_unmapped` (answers whose tokens could not be matched to characters)."""
    scored = [box_scores(text, target) for text, target in zip(texts, targets)]
    flat = [(i, k) for i, boxes in enumerate(scored) for k in range(len(boxes))]
    keys = [(group_ids[i], scored[i][k][0]) for i, k in flat]
    members = Counter(keys)
    box_adv = compute_advantages(torch.tensor([scored[i][k][3] for i, k in flat], dtype=torch.float64), keys,
                                 estimator, std_eps)[0] if flat else torch.zeros(0)
    credited: dict[tuple[int, int], float] = {(i, k): float(box_adv[n]) for n, (i, k) in enumerate(flat)
                                              if members[keys[n]] > 1}

    out: list[Optional[list[float]]] = []
    unmapped = boxed_tokens = total_tokens = 0
    for i, (text, ids) in enumerate(zip(texts, token_ids)):
        total_tokens += len(ids)
        boxes = [(start, end, credited[(i, k)]) for k, (_, start, end, _) in enumerate(scored[i]) if (i, k) in credited]
        if not boxes:
            out.append(None)
            continue
        spans = token_char_spans(ids, text, tokenizer)
        if spans is None:
            unmapped += 1
            out.append(None)
            continue
        values = [float(answer_advantages[i])] * len(ids)
        for t, (lo, hi) in enumerate(spans):
            for start, end, adv in boxes:
                if lo < end and hi > start and hi > lo:  # the token overlaps the box's coordinates
                    values[t] = adv
                    boxed_tokens += 1
                    break
        out.append(values)
    return out, {"box_credit_frac": boxed_tokens / max(total_tokens, 1), "box_credit_unmapped": float(unmapped)}
