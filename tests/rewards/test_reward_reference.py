"""The vectorised scorer against straightforward scalar references on random inputs.

The STVG-o1 reference walks index by index in plain Python; the STVG-R1 reference is the released
code's logic (re.findall / re.search / re.fullmatch with its original patterns).
"""

import random
import re

import pytest

from rewards import score_batch
from rewards.parsing import parse_stvg_o1


# ---- STVG-o1 --------------------------------------------------------------------------------

def clean(box, w, h):
    x1, y1, x2, y2 = box
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    return (min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h))


def giou_minus_l1(p, g, w, h):
    p, g = clean(p, w, h), clean(g, w, h)
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])
    inter = max(0, min(p[2], g[2]) - max(p[0], g[0])) * max(0, min(p[3], g[3]) - max(p[1], g[1]))
    union = area(p) + area(g) - inter
    iou = inter / union if union > 0 else 0.0
    c = (max(p[2], g[2]) - min(p[0], g[0])) * (max(p[3], g[3]) - min(p[1], g[1]))
    giou = iou - (c - union) / c if c > 0 else iou
    l1 = (abs(p[0] - g[0]) / w + abs(p[1] - g[1]) / h + abs(p[2] - g[2]) / w + abs(p[3] - g[3]) / h) / 4
    return giou - l1


def reference_o1(text, target, spatial_span="intersection"):
    parsed = parse_stvg_o1(text)
    if parsed is None:
        return [0.0] * 5
    ts, te = parsed.t_start, parsed.t_end
    gs, ge, w, h = target["t_start"], target["t_end"], target["width"], target["height"]
    gt = {int(b[0]): b[1:] for b in target["boxes"]}
    ours, theirs = set(range(ts, te + 1)), set(range(gs, ge + 1))
    temporal = len(ours & theirs) / len(ours | theirs) if ours else 0.0
    wanted = list(range(ts, te + 1))
    consistent = bool(wanted) and sorted(i for i, _ in parsed.think) == wanted and sorted(i for i, _ in parsed.pred) == wanted

    def spa(entries):
        first = {}
        for index, box in entries:
            first.setdefault(index, box)
        values = []
        scored = range(max(ts, gs), min(te, ge) + 1) if spatial_span == "intersection" else range(gs, ge + 1)
        for index in scored:
            if index in gt:
                boxed = index in first and ts <= index <= te
                values.append(giou_minus_l1(first[index], gt[index], w, h) if boxed else -2.0)
        return sum(values) / len(values) if values else 0.0

    think, pred = spa(parsed.think), spa(parsed.pred)
    return [1.0, float(consistent), temporal, think + pred, max(pred - think, 0.0)]


def random_box(rng, w, h):
    if rng.random() < 0.1:
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        return [x, y, x, y]  # zero area
    return [round(rng.uniform(-0.2 * w, 1.2 * w), rng.choice([0, 1, 2])) for _ in range(2)] + \
           [round(rng.uniform(-0.2 * h, 1.2 * h), rng.choice([0, 1, 2])) for _ in range(2)]


def random_list(rng, ts, te, w, h):
    indices = list(range(ts, te + 1))
    roll = rng.random()
    if roll < 0.2:
        indices = [i for i in indices if rng.random() < 0.7]              # drop some
    elif roll < 0.35:
        indices = indices + rng.sample(indices, k=min(2, len(indices)))  # repeat some
    elif roll < 0.45:
        indices = indices + [te + 1, max(ts - 1, 0)]                      # extras
    rng.shuffle(indices) if rng.random() < 0.2 else None
    return ", ".join(f"{i}. [{', '.join(str(v) for v in random_box(rng, w, h))}]" for i in indices)


def random_item(rng):
    w, h = rng.choice([(336.0, 189.0), (100.0, 100.0), (640.0, 360.0)])
    gs = rng.randint(0, 12)
    ge = gs + rng.randint(0, 8)
    gt_indices = [i for i in range(gs - 1, ge + 2) if i >= 0 and rng.random() < 0.85]
    target = {"t_start": gs, "t_end": ge, "width": w, "height": h,
              "boxes": [[i, *clean(random_box(rng, w, h), w, h)] if rng.random() < 0.5 else [i, *random_box(rng, w, h)]
                        for i in gt_indices]}
    ts = rng.randint(0, 16)
    te = ts + rng.randint(-2, 8)
    te = max(te, 0)
    text = (f"{'reasoning ' if rng.random() < 0.3 else ''}<time> {ts} - {te} </time> "
            f"<think_bbox> {random_list(rng, ts, te, w, h)} </think_bbox>\n<pred_bbox> {random_list(rng, ts, te, w, h)} </pred_bbox>")
    if rng.random() < 0.1:
        text = text[:rng.randint(0, len(text))]  # truncated: usually unparseable
    return text, target


@pytest.mark.parametrize("spatial_span", ["intersection", "ground_truth"])
def test_vectorised_o1_matches_scalar_reference_on_random_batches(spatial_span):
    rng = random.Random(20240601)
    items = [random_item(rng) for _ in range(600)]
    results = score_batch("stvg-o1", [t for t, _ in items], [g for _, g in items], spatial_span=spatial_span)
    weights = (1.0, 1.0, 1.0, 1.0, 0.5)
    parsed = 0
    for (text, target), result in zip(items, results):
        expected = reference_o1(text, target, spatial_span)
        assert list(result.terms.values()) == pytest.approx(expected, abs=1e-9), text
        assert result.total == pytest.approx(sum(w * v for w, v in zip(weights, expected)), abs=1e-9)
        parsed += result.parsed
    assert 400 < parsed < 600  # the generator exercises both parsed and unparsed items


# ---- STVG-R1 / VTG: the released code's logic ------------------------------------------------

def released_r1(text, gt_start, gt_end, gt_id):
    blocks = re.findall(r"<answer>(.*?)</answer>", text, re.DOTALL)
    ident = span = None
    if blocks:
        last = blocks[-1].strip()
        id_match = re.search(r"Target ID:\s*(\d+)", last, re.IGNORECASE)
        span_match = re.search(r"Time range:\s*(\d+\.?\d*)\s*(?:to|and)\s*(\d+\.?\d*)", last, re.IGNORECASE)
        if id_match and span_match:
            ident, span = int(id_match.group(1)), (float(span_match.group(1)), float(span_match.group(2)))
    tiou = 0.0
    if span is not None and span[0] <= span[1]:
        inter = max(0, min(span[1], gt_end) - max(span[0], gt_start))
        union = max(span[1], gt_end) - min(span[0], gt_start)
        tiou = inter / union if union > 0 else 0.0
    fmt = bool(re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", text.strip(), re.DOTALL))
    return [tiou, float(ident is not None and ident == gt_id), float(fmt)]


R1_PIECES = ["<think>", "</think>", "<answer>", "</answer>", "Target ID: ", "target id:", "Time range: ", " to ",
             " and ", "3", "7", "1.5", "10.25", "12.", ", ", " ", "\n", "x"]


def test_r1_matches_the_released_logic_on_random_strings():
    rng = random.Random(7)
    texts = ["".join(rng.choice(R1_PIECES) for _ in range(rng.randint(0, 24))) for _ in range(3000)]
    texts += [f"<think>{rng.choice(R1_PIECES)}</think> <answer>Target ID: {rng.randint(0, 9)}, Time range: "
              f"{rng.uniform(0, 9):.2f} to {rng.uniform(0, 9):.2f}</answer>" for _ in range(500)]
    targets = [{"t_start": 1.5, "t_end": 7.0, "instance_id": 3}] * len(texts)
    results = score_batch("stvg-r1", texts, targets)
    for text, result in zip(texts, results):
        assert list(result.terms.values()) == pytest.approx(released_r1(text, 1.5, 7.0, 3)), text
