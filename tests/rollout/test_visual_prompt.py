"""STVG-R1 visual prompts: instance ids drawn where the tracks say, checked on the pixels of real
synthetic videos, plus the box lookup tolerance and the query normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from rollout.visual_prompt import box_at, draw_instance_ids, mark_sampled_frames, stvg_r1_query

SHOWN_LONG_SIDE = 120  # 160x120 videos shown at 120x90: scale_to_original = (4/3, 4/3)
FONT = 9  # font size at a 120-px long side: max(9, round(20 * 120 / 336)) = max(9, 7) = 9 (hand-worked)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    from infra.data.synth import generate, load_synthetic
    from infra.data.video import sample_frames

    out = tmp_path_factory.mktemp("visual_prompt")
    generate(out, 3, seed=11)
    result = []
    for sample in load_synthetic(out):
        sampled = sample_frames(sample.video, fps=2.0, max_long_side=SHOWN_LONG_SIDE)
        result.append((sample, sampled, mark_sampled_frames(sampled, sample.tracks)))
    return result


def _centres(sample, sampled, k):
    """(instance id, cx, cy) in shown pixels of the objects with a box on sampled frame k."""
    sx, sy = sampled.scale_to_original
    f = int(sampled.frame_ids[k])
    return [(i, (b[0] + b[2]) / 2 / sx, (b[1] + b[3]) / 2 / sy)
            for i, boxes in sample.tracks.items() if (b := boxes.get(f)) is not None]


def _pure_red(frames):
    return (frames[..., 0] >= 200) & (frames[..., 1] <= 60) & (frames[..., 2] <= 60)


def test_drawing_changes_pixels_only_around_visible_objects_centres(drawn):
    for sample, sampled, marked in drawn:
        assert sampled.scale_to_original == pytest.approx((4 / 3, 4 / 3))
        changed = (marked != sampled.frames).any(axis=-1)
        ys, xs = np.mgrid[0:marked.shape[1], 0:marked.shape[2]]
        for k in range(len(marked)):
            centres = _centres(sample, sampled, k)
            near = np.zeros(changed.shape[1:], dtype=bool)
            for _, cx, cy in centres:
                near |= (np.abs(xs + 0.5 - cx) <= FONT) & (np.abs(ys + 0.5 - cy) <= FONT)
            assert not (changed[k] & ~near).any(), f"{sample.id} frame {k}: pixels changed away from every object"
            if not centres:
                assert not changed[k].any()


def test_red_digits_sit_inside_the_targets_box_around_its_centre(drawn):
    seen = 0
    for sample, sampled, marked in drawn:
        red = _pure_red(marked) & (marked != sampled.frames).any(axis=-1)
        sx, sy = sampled.scale_to_original
        for k, f in enumerate(sampled.frame_ids.tolist()):
            box = sample.tracks[sample.target_id].get(f)
            if box is None:
                continue
            seen += 1
            x1, y1, x2, y2 = box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            rows, cols = np.nonzero(red[k])
            inside = (cols + 0.5 >= x1) & (cols + 0.5 <= x2) & (rows + 0.5 >= y1) & (rows + 0.5 <= y2)
            assert inside.sum() >= 3, f"{sample.id} frame {k}: no red digit inside the target's box"
            # the red strokes inside the box are centred on the box centre (within a couple of pixels)
            assert abs((cols[inside] + 0.5).mean() - cx) <= 2.5 and abs((rows[inside] + 0.5).mean() - cy) <= 2.5
    assert seen >= 10


def test_every_visible_object_gets_red_digits_and_absent_ones_none(drawn):
    for sample, sampled, marked in drawn:
        red = _pure_red(marked) & (marked != sampled.frames).any(axis=-1)
        for k in range(len(marked)):
            for _, cx, cy in _centres(sample, sampled, k):
                x0, y0 = int(max(cx - 4, 0)), int(max(cy - 4, 0))
                assert red[k, y0:int(cy + 4) + 1, x0:int(cx + 4) + 1].any()


def test_an_id_looks_the_same_on_every_frame_and_different_ids_differ():
    frames = np.full((4, 90, 120, 3), 100, dtype=np.uint8)
    # id 3 moves 10 px per frame; its box centre is always at integer coordinates; id 12 stays still
    tracks = {3: {f: (10 + 10 * f, 20, 30 + 10 * f, 40) for f in range(4)},
              12: {f: (80, 50, 100, 70) for f in range(4)}}
    marked = draw_instance_ids(frames, [0, 1, 2, 3], tracks)
    patches3 = [marked[f, 20:40, 10 + 10 * f:30 + 10 * f] for f in range(4)]
    patches12 = [marked[f, 50:70, 80:100] for f in range(4)]
    for f in range(1, 4):
        assert np.array_equal(patches3[f], patches3[0])
        assert np.array_equal(patches12[f], patches12[0])
    assert not np.array_equal(patches3[0], patches12[0])
    assert (patches3[0] != 100).any()
    assert (frames == 100).all(), "the input frames are not modified"


def test_box_lookup_interpolates_or_takes_the_nearest_within_the_tolerance():
    sparse = {0: (0.0, 0.0, 10.0, 10.0), 10: (20.0, 0.0, 30.0, 10.0)}  # a track sampled every 10 frames
    # tolerance 5 frames (0.5 s at 10 fps): gaps up to 10 frames are interpolated
    assert box_at(sparse, 0, 5) == (0.0, 0.0, 10.0, 10.0)
    assert box_at(sparse, 5, 5) == pytest.approx((10.0, 0.0, 20.0, 10.0))   # halfway
    assert box_at(sparse, 4, 5) == pytest.approx((8.0, 0.0, 18.0, 10.0))    # 4/10 of the way
    assert box_at(sparse, 14, 5) == (20.0, 0.0, 30.0, 10.0)   # past the end: 4 <= min(5, 10 / 2)
    assert box_at(sparse, 16, 5) is None                        # 6 frames past the end
    # tolerance 4: the gap of 10 > 2 * 4 is not bridged; the nearest box within 4 frames is used
    assert box_at(sparse, 3, 4) == (0.0, 0.0, 10.0, 10.0)
    assert box_at(sparse, 7, 4) == (20.0, 0.0, 30.0, 10.0)
    assert box_at(sparse, 5, 4) is None
    assert box_at(sparse, 5, 0) is None                         # no tolerance: exact frames only
    dense = {f: (0.0, 0.0, 10.0, 10.0) for f in range(20, 30)}  # a box on every frame 20..29
    assert box_at(dense, 30, 5) is None and box_at(dense, 19, 5) is None  # never extended past its ends
    hole = {**{f: (0.0, 0.0, 10.0, 10.0) for f in range(0, 5)}, 8: (6.0, 0.0, 16.0, 10.0)}
    assert box_at(hole, 6, 5) == pytest.approx((3.0, 0.0, 13.0, 10.0))  # halfway across the hole 4..8


def test_tolerance_applies_only_when_the_video_fps_is_known():
    frames = np.full((3, 40, 40, 3), 100, dtype=np.uint8)
    tracks = {1: {0: (10, 10, 30, 30), 10: (10, 10, 30, 30)}}  # sampled every 10 frames
    with_fps = draw_instance_ids(frames, [0, 4, 17], tracks, video_fps=10.0)       # tolerance 5 frames
    assert (with_fps[0] != 100).any() and (with_fps[1] != 100).any() and (with_fps[2] == 100).all()
    without = draw_instance_ids(frames, [0, 4, 17], tracks)
    assert (without[0] != 100).any() and (without[1] == 100).all()
    by_time = draw_instance_ids(frames, None, tracks, timestamps=[0.0, 0.4, 1.7], video_fps=10.0)
    assert np.array_equal(by_time, with_fps)


def test_bad_frames_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        draw_instance_ids(np.zeros((2, 8, 8, 3), dtype=np.float32), [0, 1], {})
    with pytest.raises(ValueError, match="frame ids"):
        draw_instance_ids(np.zeros((2, 8, 8, 3), dtype=np.uint8), [0], {})


def test_query_normalisation_matches_stvg_r1_and_the_prompt_builder():
    assert stvg_r1_query("The Man in Red  turns around.") == "the man in red turns around"
    assert stvg_r1_query("the red square moving right") == "the red square moving right"
    from rollout.prompts import build_instruction

    query = "The Woman in black   picks up the phone."
    text = build_instruction("stvg-r1", query, [0.0, 0.5], (120, 90)).text
    assert f'"{stvg_r1_query(query)}"' in text
