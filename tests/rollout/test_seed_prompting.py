"""Prompt building for the seed methods, checked on the pixels the prompt carries (decoded back from
its processed video): STVG-R1 ids where the tracks are, the curriculum mask after the ids, temporal
views, and instructions / queries given per prompt."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rollout.curriculum import FrameMask
from rollout.prompting import PromptOptions, build_prompt_inputs
from rollout.zero_shot import sample_views
from tests.rollout._seed_frames import prompt_frames

# conftest: 6 synthetic videos of 20 s, 160x120 at 5 fps; prompts of 8 frames at 0, 2.5, ..., 17.5 s,
# shown at 168x112 (scale 160/168, 120/112), frame ids floor(t * 5) = 0, 12, 25, 37, 50, 62, 75, 87.
FRAME_IDS = [0, 12, 25, 37, 50, 62, 75, 87]
FONT = 10  # visual_prompt.font_px(168, 112): 20 px at a 336 long side -> 10 px
SX, SY = 160 / 168, 120 / 112


def _build(sample, family, processor, settings, task="stvg-r1", **kwargs):
    return build_prompt_inputs(sample, family=family, processor=processor,
                               settings=dataclasses.replace(settings, task=task), **kwargs)


def _centre(box):
    return (box[0] + box[2]) / 2 / SX, (box[1] + box[3]) / 2 / SY


def _changed_near(changed: np.ndarray, centre, radius: float) -> bool:
    ys, xs = np.nonzero(changed)
    return bool(np.any((np.abs(xs - centre[0]) <= radius) & (np.abs(ys - centre[1]) <= radius)))


def _inside(centre, margin=3):
    return margin <= centre[0] < 168 - margin and margin <= centre[1] < 112 - margin


def test_ids_are_drawn_at_each_tracks_centre_on_the_frames_the_prompt_carries(samples, family, processor, settings):
    sample = samples[0]
    plain = prompt_frames(_build(sample, family, processor, settings, task="stvg-o1"))
    prompt = _build(sample, family, processor, settings)
    marked = prompt_frames(prompt)
    assert prompt.extra["frame_ids"] == FRAME_IDS
    reach = FONT + 2  # half a two-digit label is under one font size; plus the outline
    drawn = 0
    for k, frame_id in enumerate(FRAME_IDS):
        changed = np.any(plain[k] != marked[k], axis=-1)
        centres = [_centre(track[frame_id]) for track in sample.tracks.values() if frame_id in track]
        for centre in centres:
            if _inside(centre):
                assert _changed_near(changed, centre, reach), f"no id drawn near {centre} on frame {k}"
                drawn += 1
        # nothing changes away from every centre
        ys, xs = np.nonzero(changed)
        near_any = np.zeros(len(xs), dtype=bool)
        for cx, cy in centres:
            near_any |= (np.abs(xs - cx) <= reach) & (np.abs(ys - cy) <= reach)
        assert near_any.all(), f"frame {k}: pixels changed away from every track centre"
    assert drawn >= 8


def test_sparse_tracks_are_drawn_within_half_a_second_of_an_annotated_frame(samples, family, processor, settings):
    sample = samples[1]
    target = sample.target_id
    # the target's track only every 25 frames (5 s): frames 0, 25, 50, 75 are annotated. The sampled
    # frame ids 12, 37, 62, 87 are 12-13 frames (2.4-2.6 s) from the nearest one: more than the
    # 0.5 s (2 frames) tolerance, and the annotated frames around them are 25 frames apart, more than
    # 2 x 2 frames, so no interpolation: the id appears on frames 0, 25, 50, 75 only.
    every5s = {f: b for f, b in sample.tracks[target].items() if f % 25 == 0}
    # and another object's track only every 5 frames (1 s): every sampled frame is within 2 frames
    # of an annotated one (0, 10, 25, 35, 50, 60, 75, 85), so it gets that box's id.
    other = next(i for i in sorted(sample.tracks) if i != target)
    every1s = {f: b for f, b in sample.tracks[other].items() if f % 5 == 0}
    sparse = dataclasses.replace(sample, tracks={target: every5s})
    dense_other = dataclasses.replace(sample, tracks={other: every1s})
    plain = prompt_frames(_build(sample, family, processor, settings, task="stvg-o1"))
    marked = prompt_frames(_build(sparse, family, processor, settings))
    for k, frame_id in enumerate(FRAME_IDS):
        changed = np.any(plain[k] != marked[k], axis=-1)
        if frame_id % 25 == 0 and frame_id in every5s and _inside(_centre(every5s[frame_id])):
            assert _changed_near(changed, _centre(every5s[frame_id]), FONT + 2)
        elif frame_id % 25:
            assert not changed.any(), f"frame {frame_id} is too far from an annotated frame to get an id"
    marked = prompt_frames(_build(dense_other, family, processor, settings))
    nearest = [0, 10, 25, 35, 50, 60, 75, 85]
    for k, annotated in enumerate(nearest):
        changed = np.any(plain[k] != marked[k], axis=-1)
        if annotated in every1s and _inside(_centre(every1s[annotated])):
            assert _changed_near(changed, _centre(every1s[annotated]), FONT + 2), f"frame {k}"


def test_curriculum_mask_blacks_out_the_farthest_frames_after_the_ids_are_drawn(samples, family, processor,
                                                                               settings):
    sample = samples[0]  # GT span 6-13 s
    assert sample.span_seconds == (6.0, 13.0)
    unmasked = prompt_frames(_build(sample, family, processor, settings))
    prompt = _build(sample, family, processor, settings, options=PromptOptions(mask=FrameMask(share=0.5, step=3)))
    frames = prompt_frames(prompt)
    # outside the span: 0 s (6 s away), 2.5 (3.5), 5 (1), 15 (2), 17.5 (4.5): 5 frames; half of 5,
    # rounded half up, is 3: the farthest three, 0, 17.5 and 2.5 s = frames 0, 7, 1.
    assert prompt.extra["masked_frames"] == [0, 1, 7]
    for k in range(8):
        if k in (0, 1, 7):
            assert not frames[k].any(), f"masked frame {k} is not black (ids drawn after masking?)"
        else:
            assert np.array_equal(frames[k], unmasked[k]), f"frame {k} must be untouched"


def test_a_step_that_masks_nothing_leaves_the_prompt_unchanged(samples, family, processor, settings):
    sample = samples[0]
    plain = _build(sample, family, processor, settings)
    zero = _build(sample, family, processor, settings, options=PromptOptions(mask=FrameMask(share=0.0, step=9)))
    assert torch.equal(plain.pixel_values_videos, zero.pixel_values_videos)
    assert zero.extra["masked_frames"] == []


def test_reversed_and_shifted_views_show_their_frames_and_presented_times(samples, family, processor, settings):
    sample = samples[2]
    original = _build(sample, family, processor, settings, task="vtg")
    reversed_ = _build(sample, family, processor, settings, task="vtg", options=PromptOptions(view="reversed"))
    shifted = _build(sample, family, processor, settings, task="vtg", options=PromptOptions(view="shifted"))
    assert np.array_equal(prompt_frames(reversed_), prompt_frames(original)[::-1])
    assert reversed_.extra["frame_ids"] == FRAME_IDS[::-1] and reversed_.extra["view"] == "reversed"
    text = processor.tokenizer.decode(reversed_.input_ids)
    # a frame at t is shown at 20 - t: 17.5 -> 2.5, ..., 0 -> 20
    assert "the frames are at these seconds: 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20." in text
    # half an interval (1.25 s) later: 1.25, 3.75, ..., 18.75 s, frame ids floor(t * 5)
    assert shifted.frame_timestamps == [1.25, 3.75, 6.25, 8.75, 11.25, 13.75, 16.25, 18.75]
    assert shifted.extra["frame_ids"] == [6, 18, 31, 43, 56, 68, 81, 93]
    from infra.data.video import sample_frames

    later = sample_frames(sample.video, fps=0.4, segment=(1.25, 20.0), max_long_side=336, size_multiple=28)
    assert np.array_equal(prompt_frames(shifted), later.frames)


def test_frames_given_by_the_caller_build_the_same_prompt_as_the_view(samples, family, processor, settings):
    sample = samples[2]
    view = sample_views(sample.video, ("reversed",), duration=sample.duration, fps=settings.fps,
                        max_frames=settings.max_frames, max_long_side=settings.max_long_side, size_multiple=28)[0]
    given = _build(sample, family, processor, settings, frames=view)
    built = _build(sample, family, processor, settings, options=PromptOptions(view="reversed"))
    assert torch.equal(given.input_ids, built.input_ids)
    assert torch.equal(given.pixel_values_videos, built.pixel_values_videos)


def test_an_instruction_given_per_prompt_replaces_the_tasks_and_keeps_the_frame_times(samples, family, processor,
                                                                                      settings):
    question = "Does the same event also happen outside 6.00 to 13.00 seconds?"
    prompt = _build(samples[0], family, processor, settings, task="vtg", options=PromptOptions(instruction=question))
    text = processor.tokenizer.decode(prompt.input_ids)
    assert "the frames are at these seconds: 0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5.\n" + question in text
    assert "Find when this happens" not in text
    assert text.index("<|vision_start|>") < text.index(question)  # the video goes first


def test_a_query_given_per_prompt_goes_into_the_tasks_instruction(samples, family, processor, settings):
    prompt = _build(samples[0], family, processor, settings, task="vtg", options=PromptOptions(query="moving down"))
    text = processor.tokenizer.decode(prompt.input_ids)
    assert 'Find when this happens in the video: "moving down".' in text
    assert samples[0].query not in text


def test_a_mask_on_an_augmented_view_is_refused():
    with pytest.raises(ValueError, match="original view"):
        PromptOptions(view="reversed", mask=FrameMask(share=0.5, step=0))


def test_the_plans_masks_are_the_frames_curriculum_frames_masks():
    from rollout.curriculum import CurriculumConfig, CurriculumPlan, curriculum_frames, curriculum_rng

    cfg = CurriculumConfig(enabled=True, schedule="cosine", start_share=0.8, end_share=0.1, order="random", seed=5)
    plan = CurriculumPlan(cfg, 10, {"hard": 0.9, "easy": 0.2})
    frames = np.random.default_rng(0).integers(1, 255, (12, 4, 4, 3), dtype=np.uint8)
    times = [0.5 * k for k in range(12)]
    for step in (0, 3, 7, 10):
        mask = plan.mask_for("hard", step)
        expected = curriculum_frames(frames, times, (2.0, 3.0), 0.9, step, 10, cfg, curriculum_rng(5, step, "hard"))
        assert np.array_equal(mask.apply(frames, times, (2.0, 3.0), "hard"), expected)
    assert plan.mask_for("easy", 0) is None and plan.mask_for("unscored", 0) is None
    # cosine from 0.8 to 0.1 never reaches 0, the linear default does at the last step
    linear = CurriculumPlan(CurriculumConfig(enabled=True), 10, {"hard": 0.9})
    assert linear.mask_for("hard", 10) is None and linear.mask_for("hard", 5).share == pytest.approx(0.25)
