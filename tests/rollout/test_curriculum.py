"""VideoTG-R1's curriculum: the masked share per step for each schedule (hand-computed), and which
frames get masked (never the ones inside the GT span)."""

from __future__ import annotations

import numpy as np
import pytest

from infra.errors import ConfigError
from rollout.curriculum import (CurriculumConfig, curriculum_frames, curriculum_rng, frames_to_mask, mask_frames,
                                masked_share)


@pytest.mark.parametrize("step, expected", [(-5, 0.6), (0, 0.6), (25, 0.45), (50, 0.3), (100, 0.0), (150, 0.0)])
def test_linear_share(step, expected):
    assert masked_share(step, 100, "linear", 0.6, 0.0) == pytest.approx(expected)


@pytest.mark.parametrize("step, expected", [
    (0, 0.6),
    (25, 0.6 * (1 + 0.7071067811865476) / 2),   # cos(pi/4)
    (50, 0.3),
    (75, 0.6 * (1 - 0.7071067811865476) / 2),
    (100, 0.0),
])
def test_cosine_share(step, expected):
    assert masked_share(step, 100, "cosine", 0.6, 0.0) == pytest.approx(expected)


@pytest.mark.parametrize("step, stages, expected", [
    (0, 2, 0.6), (49, 2, 0.6), (50, 2, 0.0), (100, 2, 0.0),
    (33, 3, 0.6), (34, 3, 0.3), (66, 3, 0.3), (67, 3, 0.0), (100, 3, 0.0),
])
def test_step_share(step, stages, expected):
    assert masked_share(step, 100, "step", 0.6, 0.0, stages=stages) == pytest.approx(expected)


def test_share_can_grow_too_and_bad_schedules_are_rejected():
    assert masked_share(50, 100, "linear", 0.2, 0.4) == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="linear, cosine, step"):
        masked_share(0, 100, "exponential", 0.5, 0.0)
    with pytest.raises(ConfigError, match="curriculum.schedule"):
        CurriculumConfig(schedule="exp")
    with pytest.raises(ConfigError, match="curriculum.start_share"):
        CurriculumConfig(start_share=1.5)


TIMES = [float(t) for t in range(10)]  # one frame per second, 0..9
SPAN = (3.0, 5.5)                      # frames 3, 4, 5 inside; outside distances:
# frame: 0->3.0, 1->2.0, 2->1.0, 6->0.5, 7->1.5, 8->2.5, 9->3.5


@pytest.mark.parametrize("share, expected", [
    (0.0, []),
    (0.3, [0, 9]),             # round(0.3 * 7 = 2.1) = 2: distances 3.5 and 3.0
    (0.5, [0, 1, 8, 9]),       # 3.5 rounds half up to 4
    (0.6, [0, 1, 8, 9]),       # 4.2 -> 4
    (0.65, [0, 1, 7, 8, 9]),   # 4.55 -> 5: the next farthest is frame 7 (1.5 s)
    (1.0, [0, 1, 2, 6, 7, 8, 9]),
])
def test_farthest_frames_are_masked_first(share, expected):
    assert frames_to_mask(TIMES, SPAN, share, rng=0).tolist() == expected


def test_equal_distances_are_broken_at_random_but_reproducibly():
    times = [float(t) for t in range(11)]  # span (4, 6): frames 0 and 10 are both 4 s away
    picks = {int(frames_to_mask(times, (4.0, 6.0), 1 / 8, rng=seed)[0]) for seed in range(20)}
    assert picks == {0, 10}
    assert all(frames_to_mask(times, (4.0, 6.0), 1 / 8, rng=s).tolist() ==
               frames_to_mask(times, (4.0, 6.0), 1 / 8, rng=s).tolist() for s in range(5))


def test_random_order_masks_only_outside_frames_and_is_deterministic():
    chosen = frames_to_mask(TIMES, SPAN, 0.5, rng=np.random.default_rng(3), order="random")
    again = frames_to_mask(TIMES, SPAN, 0.5, rng=np.random.default_rng(3), order="random")
    assert chosen.tolist() == again.tolist()
    assert len(chosen) == 4 and set(chosen.tolist()) <= {0, 1, 2, 6, 7, 8, 9}


def test_mask_frames_blacks_out_only_chosen_frames_of_a_real_video(tmp_path):
    from infra.data.synth import generate, load_synthetic
    from infra.data.video import sample_frames

    generate(tmp_path, 1, seed=4)
    sample = load_synthetic(tmp_path)[0]
    sampled = sample_frames(sample.video, fps=2.0, max_long_side=96)
    t0, t1 = sample.span_seconds
    inside = (sampled.timestamps >= t0) & (sampled.timestamps <= t1)
    outside = np.flatnonzero(~inside)
    masked = mask_frames(sampled.frames, sampled.timestamps, sample.span_seconds, 0.5, rng=1)
    black = np.flatnonzero((masked == 0).all(axis=(1, 2, 3)))
    assert len(black) == int(np.floor(0.5 * len(outside) + 0.5))
    assert set(black.tolist()) <= set(outside.tolist())
    kept = np.setdiff1d(np.arange(len(masked)), black)
    assert np.array_equal(masked[kept], sampled.frames[kept])  # span frames and unmasked frames as they were
    assert inside.any() and np.array_equal(masked[inside], sampled.frames[inside])
    # the farthest outside frame from the span is among the masked ones
    distance = np.where(sampled.timestamps < t0, t0 - sampled.timestamps, sampled.timestamps - t1)
    assert int(np.argmax(distance)) in black
    full = mask_frames(sampled.frames, sampled.timestamps, sample.span_seconds, 1.0, rng=1)
    assert (full[outside] == 0).all() and np.array_equal(full[inside], sampled.frames[inside])


def test_curriculum_masks_only_hard_samples_when_enabled():
    frames = np.full((10, 4, 4, 3), 200, dtype=np.uint8)
    cfg = CurriculumConfig(enabled=True, schedule="linear", start_share=1.0, end_share=0.0, difficulty_threshold=0.7)
    hard = curriculum_frames(frames, TIMES, SPAN, 0.7, step=50, total_steps=100, cfg=cfg, rng=0)
    # share 0.5 at step 50 -> the 4 farthest outside frames
    assert np.flatnonzero((hard == 0).all(axis=(1, 2, 3))).tolist() == [0, 1, 8, 9]
    assert curriculum_frames(frames, TIMES, SPAN, 0.69, 50, 100, cfg, rng=0) is frames
    assert curriculum_frames(frames, TIMES, SPAN, None, 50, 100, cfg, rng=0) is frames
    off = CurriculumConfig(enabled=False)
    assert curriculum_frames(frames, TIMES, SPAN, 1.0, 0, 100, off, rng=0) is frames
    late = curriculum_frames(frames, TIMES, SPAN, 1.0, 100, 100, cfg, rng=0)
    assert np.array_equal(late, frames)


def test_curriculum_rng_is_stable_per_seed_step_and_sample():
    a = curriculum_rng(7, 3, "video-1.mp4").integers(0, 1 << 30, size=4).tolist()
    b = curriculum_rng(7, 3, "video-1.mp4").integers(0, 1 << 30, size=4).tolist()
    c = curriculum_rng(7, 3, "video-2.mp4").integers(0, 1 << 30, size=4).tolist()
    d = curriculum_rng(7, 4, "video-1.mp4").integers(0, 1 << 30, size=4).tolist()
    assert a == b and a != c and a != d
