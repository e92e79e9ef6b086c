"""Pictures for humans: a rollout as a strip of frames with its tubes, and the reward curve.

`draw_rollout_strip` uses Pillow only; `plot_reward_curve` uses matplotlib's Agg canvas (no
display, no pyplot global state). Both return a PIL image, which `Tracker.log_image` accepts.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Tube colours far from every colour a synthetic object has (infra.data.shapes.PALETTE: saturated
# red, green, blue, yellow, magenta, cyan) and from its grey background, so a box is never mistaken
# for an object; tests/infra/test_viz.py checks the distances.
GT_COLOR = (255, 255, 255)  # ground-truth tube: white
PRED_COLOR = (255, 140, 0)  # predicted tube (final boxes): orange
DRAFT_COLOR = (255, 170, 200)  # draft / think boxes, dashed: pink
OFF_COLOR = (70, 70, 70)  # span bar of a frame outside the span
LEGEND = (("ground truth", GT_COLOR, False), ("prediction", PRED_COLOR, False), ("think boxes", DRAFT_COLOR, True))
LEGEND_SWATCH = 16  # width of a legend's sample box, in pixels
BACKGROUND = (20, 20, 20)
TEXT_COLOR = (235, 235, 235)

PAD = 6  # gap between panels and around the strip, in pixels
LINE_H = 16  # height of one caption line
LABEL_H = 26  # band under each frame: GT / predicted span bars and the timestamp
TIMELINE_H = 30  # band at the bottom: both spans over the whole clip
BOX_WIDTH = 2
MAX_PANEL_H = 240  # frames taller than this are scaled down by default

BoxesArg = Mapping[float, Sequence[float]] | Sequence[Sequence[float] | None] | None


def draw_rollout_strip(frames: np.ndarray, timestamps: Sequence[float], gt_boxes: BoxesArg,
                       pred_boxes: BoxesArg, draft_boxes: BoxesArg = None, caption: str = "",
                       gt_span: tuple[float, float] | None = None,
                       pred_span: tuple[float, float] | None = None, *, reward: float | None = None,
                       num_frames: int = 6, scale: float | None = None) -> Image.Image:
    """Draw at most `num_frames` evenly spaced frames side by side with the boxes of each tube.

    frames: [T, H, W, 3] uint8; timestamps: T times in seconds. Boxes are [x1, y1, x2, y2] in
    pixels of `frames`, given either per frame (a list of T boxes or None) or keyed by time
    ({t: box}, or a list of [t, x1, y1, x2, y2] as in the reward targets); a time-keyed box is
    drawn on the frame nearest to it if it lies within half the spacing of the frames or of the
    boxes, whichever is larger. Spans are [start, end) in seconds; a tube's boxes are drawn only on
    frames inside its span (when the span is given). Ground truth is white, prediction orange
    (drawn last), draft / think boxes dashed pink: colours no synthetic object has. Under each
    frame a white bar marks it inside `gt_span`, an orange bar inside `pred_span` (grey when
    outside), with its timestamp; the bottom band shows both spans over the whole clip; the
    caption (query, spans, `reward`) and a legend of the colours are on top.

    Layout (for tests and for readers): frames are scaled by `scale` (default min(1, 240 / H)),
    panels are PAD=6 px apart with PAD around them, so the width is n*W' + (n+1)*6 for n frames
    of scaled width W'.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be a uint8 array [T, H, W, 3], got {frames.dtype} {frames.shape}")
    times = np.asarray(timestamps, dtype=np.float64)
    count, height, width = frames.shape[:3]
    if times.shape != (count,):
        raise ValueError(f"need one timestamp per frame: {count} frames, {times.size} timestamps")
    chosen = _even_indices(count, num_frames)
    s = float(scale) if scale else min(1.0, MAX_PANEL_H / height)
    pw, ph = max(1, round(width * s)), max(1, round(height * s))
    frame_gap = _spacing(times)
    per_frame = {name: _boxes_per_frame(arg, times, frame_gap)
                 for name, arg in (("gt", gt_boxes), ("pred", pred_boxes), ("draft", draft_boxes))}
    for name, span in (("gt", gt_span), ("pred", pred_span)):
        if span is not None:
            per_frame[name] = [box if _inside(t, span) else None for box, t in zip(per_frame[name], times)]

    font = _font(13)
    strip_w = len(chosen) * pw + (len(chosen) + 1) * PAD
    lines = _caption_lines(caption, gt_span, pred_span, reward, font, strip_w - 2 * PAD)
    legend = _legend_layout(font, strip_w - 2 * PAD)
    top = PAD + (len(lines) + 1 + max(row for _, row, _ in legend)) * LINE_H  # caption, then legend
    strip_h = top + PAD + ph + LABEL_H + TIMELINE_H + PAD
    strip = Image.new("RGB", (strip_w, strip_h), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    for i, line in enumerate(lines):
        draw.text((PAD, PAD + i * LINE_H), line, fill=TEXT_COLOR, font=font)
    for x, row, (name, color, dashed) in legend:
        y = PAD + (len(lines) + row) * LINE_H
        _draw_box(draw, (0, 2, LEGEND_SWATCH, 12), PAD + x, y, 1.0, LEGEND_SWATCH + 1, 13, color, dashed=dashed)
        draw.text((PAD + x + LEGEND_SWATCH + 5, y), name, fill=TEXT_COLOR, font=font)

    for k, index in enumerate(chosen):
        x0, y0 = PAD + k * (pw + PAD), top + PAD
        panel = Image.fromarray(frames[index])
        if (pw, ph) != (width, height):
            panel = panel.resize((pw, ph), Image.Resampling.BILINEAR)
        strip.paste(panel, (x0, y0))
        for name, color in (("draft", DRAFT_COLOR), ("gt", GT_COLOR), ("pred", PRED_COLOR)):
            box = per_frame[name][index]
            if box is not None:
                _draw_box(draw, box, x0, y0, s, pw, ph, color, dashed=name == "draft")
        t = float(times[index])
        bar_y = y0 + ph + 3
        draw.rectangle([x0, bar_y, x0 + pw - 1, bar_y + 3], fill=GT_COLOR if _inside(t, gt_span) else OFF_COLOR)
        draw.rectangle([x0, bar_y + 6, x0 + pw - 1, bar_y + 9], fill=PRED_COLOR if _inside(t, pred_span) else OFF_COLOR)
        draw.text((x0, bar_y + 11), f"t={t:.1f}s", fill=TEXT_COLOR, font=_font(11))

    _draw_timeline(draw, times, chosen, gt_span, pred_span, y=top + PAD + ph + LABEL_H, width=strip_w)
    return strip


Points = Sequence[tuple[float, float]]


def plot_reward_curve(steps: Sequence[float], rewards: Sequence[float],
                      eval_points: Mapping[str, Points] | Points | None = None,
                      *, title: str = "reward/mean", same_axis: bool = False) -> Image.Image:
    """Reward by step (raw, faint; moving average, bold) with evaluation points on a right axis.

    eval_points: {"eval/m_tIoU": [(step, value), ...], ...} or one list of (step, value).
    same_axis: draw the evaluation points on the reward's axis (when they are rewards too, e.g. the
    held-out reward, so that the two read on one scale).
    Returns a 640x360 RGB image.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = np.asarray(steps, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    if steps.shape != rewards.shape or steps.ndim != 1:
        raise ValueError(f"steps and rewards must be 1-D and of equal length, got {steps.shape} and {rewards.shape}")
    figure = Figure(figsize=(6.4, 3.6), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    if steps.size:
        axes.plot(steps, rewards, color="tab:blue", alpha=0.3, linewidth=1, label="reward")
        window = max(1, steps.size // 20)
        if window > 1:
            smooth = np.convolve(rewards, np.ones(window) / window, mode="valid")
            axes.plot(steps[window - 1:], smooth, color="tab:blue", linewidth=2, label=f"mean of {window}")
    axes.set_xlabel("step")
    axes.set_ylabel(title)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if eval_points:
        series = {"eval": eval_points} if not isinstance(eval_points, Mapping) else eval_points
        right = axes if same_axis else axes.twinx()
        colors = ("tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive")
        for (name, points), marker, color in zip(series.items(), "osD^v<>", colors):
            points = list(points)
            if points:
                xs, ys = zip(*points)
                right.plot(xs, ys, marker=marker, linestyle="--", color=color, label=name)
        if not same_axis:
            right.set_ylabel("eval")
            right.legend(loc="lower right", fontsize=8)
    if steps.size:
        axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    canvas.draw()
    return Image.fromarray(np.asarray(canvas.buffer_rgba())[:, :, :3].copy())


# --- helpers ---------------------------------------------------------------------------------

def _even_indices(count: int, wanted: int) -> list[int]:
    """At most `wanted` of `count` frames, one every k (the smallest stride that fits them), centred
    on the clip: evenly spaced, so equal gaps on the strip are equal gaps in time (rounding
    linspace's positions would mix gaps of k and k + 1 frames)."""
    if count == 0:
        raise ValueError("no frames to draw")
    wanted = max(1, min(wanted, count))
    if wanted == 1:
        return [0]
    stride = math.ceil((count - 1) / (wanted - 1))
    shown = (count - 1) // stride + 1
    offset = (count - 1 - stride * (shown - 1)) // 2
    return [offset + stride * i for i in range(shown)]


def _spacing(values: np.ndarray) -> float:
    diffs = np.diff(np.sort(values))
    diffs = diffs[diffs > 0]
    return float(np.median(diffs)) if diffs.size else 1.0


def _boxes_per_frame(arg: BoxesArg, times: np.ndarray, frame_gap: float) -> list[tuple[float, ...] | None]:
    """One box (or None) per frame, from per-frame boxes or time-keyed boxes."""
    count = times.size
    if arg is None:
        return [None] * count
    if isinstance(arg, Mapping):
        keyed = {float(t): box for t, box in arg.items()}
    else:
        items = list(arg)
        if items and all(b is not None and len(b) == 5 for b in items):  # [t, x1, y1, x2, y2]
            keyed = {float(b[0]): b[1:] for b in items}
        else:
            if len(items) != count:
                raise ValueError(f"per-frame boxes need one entry per frame ({count}), got {len(items)}")
            return [_clean_box(b) for b in items]
    if not keyed:
        return [None] * count
    keys = np.array(sorted(keyed))
    tolerance = max(frame_gap, _spacing(keys) if keys.size > 1 else 0.0) / 2 + 1e-9
    out: list[tuple[float, ...] | None] = []
    for t in times:
        nearest = keys[int(np.argmin(np.abs(keys - t)))]  # argmin keeps the earlier key on a tie
        out.append(_clean_box(keyed[float(nearest)]) if abs(nearest - t) <= tolerance else None)
    return out


def _clean_box(box: Sequence[float] | None) -> tuple[float, ...] | None:
    if box is None or len(box) != 4:
        return None
    values = [float(v) for v in box]
    if not all(math.isfinite(v) for v in values):
        return None
    x1, y1, x2, y2 = values
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def _draw_box(draw: ImageDraw.ImageDraw, box: tuple[float, ...], x0: int, y0: int, s: float,
              pw: int, ph: int, color: tuple[int, int, int], dashed: bool) -> None:
    x1, y1, x2, y2 = (round(v * s) for v in box)
    x1, x2 = (min(max(v, 0), pw - 1) for v in (x1, x2))
    y1, y2 = (min(max(v, 0), ph - 1) for v in (y1, y2))
    rect = [x0 + x1, y0 + y1, x0 + x2, y0 + y2]
    if not dashed:
        draw.rectangle(rect, outline=color, width=BOX_WIDTH)
        return
    left, top, right, bottom = rect
    for a, b in (((left, top), (right, top)), ((right, top), (right, bottom)),
                 ((right, bottom), (left, bottom)), ((left, bottom), (left, top))):
        _dashed_line(draw, a, b, color)


def _dashed_line(draw: ImageDraw.ImageDraw, a: tuple[int, int], b: tuple[int, int],
                 color: tuple[int, int, int], dash: int = 5, gap: int = 4) -> None:
    length = math.hypot(b[0] - a[0], b[1] - a[1])
    if length == 0:
        return
    ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
    pos = 0.0
    while pos < length:
        end = min(pos + dash, length)
        draw.line([(a[0] + ux * pos, a[1] + uy * pos), (a[0] + ux * end, a[1] + uy * end)],
                  fill=color, width=BOX_WIDTH)
        pos += dash + gap


def _inside(t: float, span: tuple[float, float] | None) -> bool:
    """t in the span [start, end) (end exclusive, as the datasets' spans are)."""
    return span is not None and min(span) <= t < max(span)


def _legend_layout(font, max_width: int) -> list[tuple[int, int, tuple[str, tuple[int, int, int], bool]]]:
    """(x, row, entry) of each LEGEND entry: a small box in the tube's colour (dashed for the think
    boxes) and its name, placed left to right and wrapped onto further rows in a narrow strip."""
    placed, x, row = [], 0, 0
    for entry in LEGEND:
        width = LEGEND_SWATCH + 5 + round(font.getlength(entry[0]))
        if x and x + width > max_width:
            x, row = 0, row + 1
        placed.append((x, row, entry))
        x += width + 14
    return placed


def _caption_lines(caption: str, gt_span, pred_span, reward, font, max_width: int) -> list[str]:
    char_w = max(1.0, font.getlength("abcdefghijklmnopqrstuvwxyz") / 26)
    chars = max(10, int(max_width / char_w))
    lines = textwrap.wrap(caption.strip(), chars)[:4] if caption and caption.strip() else []
    facts = []
    if reward is not None:
        facts.append(f"reward {reward:.3f}")
    facts.append(f"GT {_span_text(gt_span)}")
    facts.append(f"pred {_span_text(pred_span)}")
    current = ""
    for fact in facts:  # pack facts into lines; a separator only between facts on one line
        joined = f"{current}   |   {fact}" if current else fact
        if current and len(joined) > chars:
            lines.append(current)
            joined = fact
        current = joined
    lines.append(current)
    return lines


def _span_text(span: tuple[float, float] | None) -> str:
    return "none" if span is None else f"{span[0]:.1f}-{span[1]:.1f}s"


def _draw_timeline(draw: ImageDraw.ImageDraw, times: np.ndarray, chosen: list[int], gt_span, pred_span,
                   y: int, width: int) -> None:
    """Both spans as bars over the clip's time axis, with a tick at each drawn frame."""
    start, end = float(times.min()), float(times.max())
    spans = [s for s in (gt_span, pred_span) if s is not None]
    if spans:
        start = min(start, *(min(s) for s in spans))
        end = max(end, *(max(s) for s in spans))
    left, right = PAD, width - PAD - 1
    scale = (right - left) / (end - start) if end > start else 0.0

    def x_of(t: float) -> int:
        return round(left + (t - start) * scale)

    draw.line([(left, y + 14), (right, y + 14)], fill=OFF_COLOR, width=1)
    if gt_span is not None:
        draw.rectangle([x_of(min(gt_span)), y + 4, x_of(max(gt_span)), y + 9], fill=GT_COLOR)
    if pred_span is not None:
        draw.rectangle([x_of(min(pred_span)), y + 11, x_of(max(pred_span)), y + 16], fill=PRED_COLOR)
    for index in chosen:
        x = x_of(float(times[index]))
        draw.line([(x, y + 18), (x, y + 22)], fill=TEXT_COLOR, width=1)
    font = _font(10)
    draw.text((left, y + 20), f"{start:.1f}s", fill=TEXT_COLOR, font=font)
    label = f"{end:.1f}s"
    draw.text((right - font.getlength(label), y + 20), label, fill=TEXT_COLOR, font=font)


def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()
