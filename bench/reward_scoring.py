"""Benchmark: vectorised STVG-o1 scoring (rewards.score_batch) vs a plain per-box Python loop.

Builds N random STVG-o1 completions (default 10,000) with B indices each (default 20: 20 think
boxes + 20 final boxes per completion) and matching targets, then times, side by side in this run:
- score_batch: validation, parsing, and the box math as array operations over the whole batch;
- the baseline below: the same public parser (parse_stvg_o1), then every term computed box by box
  in Python.
Both must give the same rewards (checked). Target: score_batch under 1 s for the default batch
on one core.

    .venv/bin/python bench/reward_scoring.py [--completions 10000] [--boxes 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewards import score_batch  # noqa: E402
from rewards.parsing import parse_stvg_o1  # noqa: E402

TARGET_SECONDS = 1.0
WEIGHTS = (1.0, 1.0, 1.0, 1.0, 0.5)


def make_batch(n: int, boxes: int, seed: int = 0) -> tuple[list[str], list[dict]]:
    rng = random.Random(seed)

    def box() -> list[float]:
        return [round(rng.uniform(0, 300), 1), round(rng.uniform(0, 180), 1),
                round(rng.uniform(100, 336), 1), round(rng.uniform(60, 189), 1)]

    def listing(start: int) -> str:
        return ", ".join(f"{i}. [{', '.join(map(str, box()))}]" for i in range(start, start + boxes))

    completions, targets = [], []
    for _ in range(n):
        ts, gs = rng.randint(0, 10), rng.randint(0, 10)
        completions.append(f"<time> {ts} - {ts + boxes - 1} </time> <think_bbox> {listing(ts)} </think_bbox> "
                           f"<pred_bbox> {listing(ts)} </pred_bbox>")
        targets.append({"t_start": gs, "t_end": gs + boxes - 1, "width": 336.0, "height": 189.0,
                        "boxes": [[i, *box()] for i in range(gs, gs + boxes)]})
    return completions, targets


# ---- the baseline: one box at a time ---------------------------------------------------------

def _clean(b, w, h):
    x1, x2 = sorted((b[0], b[2]))
    y1, y2 = sorted((b[1], b[3]))
    return (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))


def _giou_minus_l1(p, g, w, h):
    p, g = _clean(p, w, h), _clean(g, w, h)
    inter = max(0.0, min(p[2], g[2]) - max(p[0], g[0])) * max(0.0, min(p[3], g[3]) - max(p[1], g[1]))
    union = (p[2] - p[0]) * (p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter
    iou = inter / union if union > 0 else 0.0
    c = (max(p[2], g[2]) - min(p[0], g[0])) * (max(p[3], g[3]) - min(p[1], g[1]))
    giou = iou - (c - union) / c if c > 0 else iou
    return giou - (abs(p[0] - g[0]) / w + abs(p[1] - g[1]) / h + abs(p[2] - g[2]) / w + abs(p[3] - g[3]) / h) / 4


def loop_score(completion: str, target: dict) -> float:
    parsed = parse_stvg_o1(completion)
    if parsed is None:
        return 0.0
    ts, te, gs, ge = parsed.t_start, parsed.t_end, target["t_start"], target["t_end"]
    w, h = target["width"], target["height"]
    gt = {int(b[0]): b[1:] for b in target["boxes"]}
    inter = max(0, min(te, ge) - max(ts, gs) + 1)
    temporal = inter / ((te - ts + 1) + (ge - gs + 1) - inter) if ts <= te else 0.0

    def spa(entries):
        first = {}
        for index, b in entries:
            first.setdefault(index, b)
        values = [(_giou_minus_l1(first[i], gt[i], w, h) if i in first else -2.0)
                  for i in range(max(ts, gs), min(te, ge) + 1) if i in gt]
        return sum(values) / len(values) if values else 0.0

    think, pred = spa(parsed.think), spa(parsed.pred)
    terms = (1.0, float(parsed.consistent), temporal, think + pred, max(pred - think, 0.0))
    return sum(w_ * t for w_, t in zip(WEIGHTS, terms))


def best_of(repeats: int, fn) -> tuple[float, float, object]:
    """(best wall seconds, best CPU seconds of this process, the last result)."""
    wall = cpu = float("inf")
    out = None
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - started)
        cpu = min(cpu, time.process_time() - started_cpu)
    return wall, cpu, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--completions", type=int, default=10_000)
    parser.add_argument("--boxes", type=int, default=20, help="indices per completion (boxes per list)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each method; the best counts")
    args = parser.parse_args()

    completions, targets = make_batch(args.completions, args.boxes)
    vector_s, vector_cpu, results = best_of(args.repeats, lambda: score_batch("stvg-o1", completions, targets))
    loop_s, loop_cpu, totals = best_of(args.repeats, lambda: [loop_score(c, t) for c, t in zip(completions, targets)])
    worst = max(abs(r.total - t) for r, t in zip(results, totals))
    print(f"stvg-o1 scoring, {args.completions} completions x {args.boxes} indices "
          f"({2 * args.boxes} predicted boxes each), best of {args.repeats}, wall / CPU of this process:")
    print(f"  score_batch (vectorised): {vector_s:.3f} s / {vector_cpu:.3f} s "
          f"({1e6 * vector_s / args.completions:.1f} us/completion)")
    print(f"  per-box Python loop:      {loop_s:.3f} s / {loop_cpu:.3f} s "
          f"({1e6 * loop_s / args.completions:.1f} us/completion)")
    print(f"  speed-up: {loop_s / vector_s:.2f}x   max |total difference|: {worst:.2e}")
    print(f"  target: score_batch < {TARGET_SECONDS:.1f} s on one core -> "
          f"{'met' if vector_s < TARGET_SECONDS else 'NOT met (a busy machine inflates wall time; see CPU)'}")
    print("RESULT " + json.dumps({"bench": "reward_scoring", "value": round(vector_s, 4), "unit": "s",
                                  "figure": f"{vector_s:.3f} s for {args.completions} completions "
                                            f"({loop_s / vector_s:.1f}x the Python loop)",
                                  "target": f"< {TARGET_SECONDS:g} s", "met": vector_s < TARGET_SECONDS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
