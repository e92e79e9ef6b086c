"""Rollout strips and reward curves: sizes worked by hand, colours found where the boxes are."""

from __future__ import annotations

import numpy as np
import pytest

from infra.viz import draw_rollout_strip, plot_reward_curve

GREEN, RED = (255, 255, 255), (255, 140, 0)  # the GT (white) and prediction (orange) colours
PINK = (255, 170, 200)  # think boxes
H, W = 48, 64


def noise_frames(count: int, height: int = H, width: int = W) -> np.ndarray:
    # Dark noise (no channel reaches 200), so the box colours (a channel at 255) can only come from drawing.
    return np.random.default_rng(7).integers(0, 200, size=(count, height, width, 3), dtype=np.uint8)


def locate(strip: np.ndarray, frame: np.ndarray) -> tuple[int, int]:
    """Top-left (y, x) of the one place where the frame's 6x6 corner patch sits in the strip."""
    patch = frame[:6, :6]
    windows = np.lib.stride_tricks.sliding_window_view(strip, patch.shape)[:, :, 0]
    hits = np.argwhere(np.all(windows == patch, axis=(2, 3, 4)))
    assert len(hits) == 1, f"frame found {len(hits)} times"
    return int(hits[0][0]), int(hits[0][1])


def has_color(region: np.ndarray, color) -> bool:
    return bool(np.any(np.all(region == color, axis=-1)))


@pytest.fixture
def strip_and_frames():
    frames = noise_frames(5)
    times = [0.0, 1.0, 2.0, 3.0, 4.0]
    gt = {1.0: [10, 8, 40, 30], 2.0: [12, 10, 42, 32]}
    pred = [None, None, [20, 15, 50, 40], [22, 16, 52, 41], None]
    strip = draw_rollout_strip(frames, times, gt, pred, caption="the dog runs", gt_span=(1.0, 3.0),
                               pred_span=(2.0, 4.0), reward=1.5, num_frames=5)
    return np.asarray(strip), frames


def test_strip_width_is_frames_plus_gaps(strip_and_frames):
    strip, _ = strip_and_frames
    assert strip.shape[1] == 5 * 64 + 6 * 6  # 356: five 64-px frames, six 6-px gaps
    assert strip.shape[0] > H and strip.shape[2] == 3


def test_frames_appear_left_to_right_at_original_size(strip_and_frames):
    strip, frames = strip_and_frames
    xs = [locate(strip, frames[k])[1] for k in range(5)]
    assert xs == [6 + k * 70 for k in range(5)]  # 6-px margin, then every 64 + 6 px


def test_gt_box_is_white_and_prediction_orange_on_a_known_frame(strip_and_frames):
    strip, frames = strip_and_frames
    y0, x0 = locate(strip, frames[2])
    panel = strip[y0:y0 + H, x0:x0 + W]
    # GT box at t=2 is [12, 10, 42, 32]: left edge column 12, top edge row 10.
    assert tuple(panel[20, 12]) == GREEN and tuple(panel[10, 30]) == GREEN
    assert tuple(panel[32 - 1, 30]) == GREEN  # a 2-px outline drawn inside the box
    # Predicted box [20, 15, 50, 40]: right edge column 50, bottom edge row 40.
    assert tuple(panel[38, 50]) == RED and tuple(panel[40, 45]) == RED
    # Inside the boxes the frame is untouched.
    assert np.array_equal(panel[20, 25], frames[2][20, 25])
    assert np.array_equal(panel[25:30, 30:35], frames[2][25:30, 30:35])


def test_frames_without_a_box_get_no_box_colour(strip_and_frames):
    strip, frames = strip_and_frames
    for k, (green, red) in enumerate([(False, False), (True, False), (True, True), (False, True),
                                      (False, False)]):
        y0, x0 = locate(strip, frames[k])
        panel = strip[y0:y0 + H, x0:x0 + W]
        # t=3 is inside the GT span [1, 3) but 1 s from the nearest GT key (2 s): more than half
        # the 1-s spacing, so no box.
        assert (has_color(panel, GREEN), has_color(panel, RED)) == (green, red), f"frame {k}"


def test_span_bars_under_each_frame_mark_gt_and_predicted_spans(strip_and_frames):
    strip, frames = strip_and_frames
    for k, (in_gt, in_pred) in enumerate([(False, False), (True, False), (True, True), (False, True),
                                          (False, False)]):
        y0, x0 = locate(strip, frames[k])
        band = strip[y0 + H:y0 + H + 16, x0:x0 + W]
        assert (has_color(band, GREEN), has_color(band, RED)) == (in_gt, in_pred), f"frame {k}"


def test_time_keyed_list_and_per_frame_list_draw_the_same_picture():
    frames = noise_frames(4)
    times = [0.0, 0.5, 1.0, 1.5]
    per_frame = [None, [5, 5, 30, 30], [6, 6, 31, 31], None]
    keyed = [[0.5, 5, 5, 30, 30], [1.0, 6, 6, 31, 31]]  # the [t, x1, y1, x2, y2] target format
    a = draw_rollout_strip(frames, times, per_frame, None, num_frames=4)
    b = draw_rollout_strip(frames, times, keyed, None, num_frames=4)
    assert np.array_equal(np.asarray(a), np.asarray(b))


def test_tall_frames_are_scaled_down_to_240_pixels():
    frames = np.zeros((3, 480, 640, 3), dtype=np.uint8)
    strip = draw_rollout_strip(frames, [0, 1, 2], None, None, num_frames=3)
    assert strip.size[0] == 3 * 320 + 4 * 6


def test_sparse_time_keyed_boxes_cover_the_frames_nearest_to_them():
    # Boxes every 1 s, frames every 0.5 s: a box reaches frames up to 0.5 s away (ties go earlier).
    frames = noise_frames(5)
    times = [0.0, 0.5, 1.0, 1.5, 2.0]
    strip = np.asarray(draw_rollout_strip(frames, times, {1.0: [8, 8, 30, 30], 2.0: [9, 9, 31, 31]},
                                          None, num_frames=5))
    greens = []
    for k in range(5):
        y0, x0 = locate(strip, frames[k])
        greens.append(has_color(strip[y0:y0 + H, x0:x0 + W], GREEN))
    assert greens == [False, True, True, True, True]
    y0, x0 = locate(strip, frames[3])  # t=1.5 ties between 1.0 and 2.0: the 1.0 box [8, 8, 30, 30]
    assert tuple(strip[y0 + 15, x0 + 8]) == GREEN and tuple(strip[y0 + 15, x0 + 10]) != GREEN


def test_a_few_frames_are_chosen_evenly():
    frames = noise_frames(11)
    strip = np.asarray(draw_rollout_strip(frames, np.arange(11.0), None, None, num_frames=3))
    assert strip.shape[1] == 3 * 64 + 4 * 6
    assert [locate(strip, frames[k])[1] for k in (0, 5, 10)] == [6, 76, 146]


def test_bad_frames_are_rejected_with_the_shape():
    with pytest.raises(ValueError, match="uint8"):
        draw_rollout_strip(np.zeros((2, 8, 8, 3), dtype=np.float32), [0, 1], None, None)
    with pytest.raises(ValueError, match="one timestamp per frame"):
        draw_rollout_strip(np.zeros((2, 8, 8, 3), dtype=np.uint8), [0], None, None)


def test_reward_curve_is_a_640x360_picture_with_the_curve_and_eval_points():
    steps = np.arange(100)
    plain = np.asarray(plot_reward_curve(steps, np.sqrt(steps)))
    with_eval = np.asarray(plot_reward_curve(steps, np.sqrt(steps), {"eval/m_tIoU": [(0, 0.1), (99, 0.6)]}))
    assert plain.shape == (360, 640, 3) and with_eval.shape == (360, 640, 3)
    blue, orange = (31, 119, 180), (255, 127, 14)  # matplotlib's tab:blue and tab:orange
    assert has_color(plain, blue) and not has_color(plain, orange)
    assert has_color(with_eval, orange)


def test_reward_curve_can_draw_eval_rewards_on_the_rewards_scale():
    """The held-out reward 1.0 -> 1.2 against a training reward 1.0 -> 2.0: on one axis the eval line
    ends far below the curve's top; on its own right axis it would stretch to the top as well."""
    steps = np.arange(100)
    rewards = 1.0 + steps / 99
    points = {"held-out": [(0, 1.0), (99, 1.2)]}
    blue, orange = (31, 119, 180), (255, 127, 14)

    def top_row(image: np.ndarray, color) -> int:
        right_half = image[:, 320:600]  # away from the legend (upper left)
        return int(np.argwhere(np.all(right_half == color, axis=-1))[:, 0].min())

    shared = np.asarray(plot_reward_curve(steps, rewards, points, same_axis=True))
    twin = np.asarray(plot_reward_curve(steps, rewards, points))
    assert top_row(shared, orange) - top_row(shared, blue) > 150  # 1.2 sits 80 % of the way down from 2.0 in a ~280-pixel plot
    assert abs(top_row(twin, orange) - top_row(twin, blue)) < 30


def test_gt_boxes_are_drawn_only_on_frames_inside_the_gt_span():
    """The issue's case: frames every 2 s, a GT span of 5.0-13.0 s with a box at every integer
    second of it (the STVG-o1 targets). The 4 s frame is within a second of the 5 s box and the
    14 s frame is outside as well: neither may show a GT box; 6, 8, 10 and 12 s must."""
    frames = noise_frames(10)
    times = np.arange(10) * 2.0  # 0, 2, ..., 18 s
    gt = [[t, 10, 8, 40, 30] for t in range(5, 13)]
    strip = np.asarray(draw_rollout_strip(frames, times, gt, None, gt_span=(5.0, 13.0), num_frames=10))
    boxed = [has_color(strip[y:y + H, x:x + W], GREEN) for y, x in (locate(strip, f) for f in frames)]
    assert [t for t, b in zip(times, boxed) if b] == [6.0, 8.0, 10.0, 12.0]


def test_predicted_boxes_are_drawn_only_inside_the_predicted_span():
    frames = noise_frames(4)
    pred = [[10, 10, 30, 30]] * 4
    strip = np.asarray(draw_rollout_strip(frames, [0.0, 1.0, 2.0, 3.0], None, pred, pred_span=(1.0, 3.0),
                                          num_frames=4))
    boxed = [has_color(strip[y:y + H, x:x + W], RED) for y, x in (locate(strip, f) for f in frames)]
    assert boxed == [False, True, True, False]


def test_ten_frames_shown_six_at_most_are_evenly_spaced():
    """The issue's case: 10 frames 2 s apart; rounding evenly spread positions gave 0, 4, 8, 10, 14,
    18 s. The smallest stride fitting six is 2 frames (9 gaps / 5 -> 2): frames 0, 2, 4, 6, 8."""
    frames = noise_frames(10)
    strip = np.asarray(draw_rollout_strip(frames, np.arange(10) * 2.0, None, None, num_frames=6))
    assert strip.shape[1] == 5 * W + 6 * 6
    assert [locate(strip, frames[k])[1] for k in (0, 2, 4, 6, 8)] == [6 + k * (W + 6) for k in range(5)]


def test_a_legend_above_the_frames_shows_each_tube_colour():
    frames = noise_frames(2)
    strip = np.asarray(draw_rollout_strip(frames, [0.0, 1.0], None, None, caption="q", num_frames=2))
    top = locate(strip, frames[0])[0]
    header = strip[:top]
    assert all(has_color(header, color) for color in (GREEN, RED, PINK))


def test_tube_colours_are_far_from_every_synthetic_object_colour_and_from_the_grey_background():
    """Boxes must never look like a synthetic object: compare each tube colour with every colour of
    infra.data.shapes.PALETTE and with the background's greys (levels 55-165: 80-140, a gradient of
    +-20 and a checker of +-5, infra.data.shapes.background)."""
    from infra.data.shapes import PALETTE
    from infra.viz import DRAFT_COLOR, GT_COLOR, PRED_COLOR

    def distance(a, b) -> float:
        return float(np.linalg.norm(np.subtract(a, b, dtype=float)))

    greys = [(g, g, g) for g in range(55, 166)]
    for color in (GT_COLOR, PRED_COLOR, DRAFT_COLOR):
        assert min(distance(color, c) for c in PALETTE.values()) > 80, color
        assert min(distance(color, g) for g in greys) > 80, color
    assert distance(GT_COLOR, PRED_COLOR) > 150
