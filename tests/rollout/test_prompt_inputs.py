"""PromptInputs from real synthetic videos: reproducible, never resized, never truncated."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from infra.errors import DataError, UserError
from rollout.prompting import build_prompt_inputs

CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711])


def test_two_independent_builds_give_identical_ids_and_pixels(samples, family, tiny_model, settings):
    # two processors loaded separately, as the rollout worker and a learner would
    first = build_prompt_inputs(samples[0], family=family, processor=family.load_processor(tiny_model), settings=settings)
    second = build_prompt_inputs(samples[0], family=family, processor=family.load_processor(tiny_model), settings=settings)
    assert torch.equal(first.input_ids, second.input_ids)
    assert torch.equal(first.pixel_values_videos, second.pixel_values_videos)
    assert torch.equal(first.video_grid_thw, second.video_grid_thw)
    assert first.frame_timestamps == second.frame_timestamps


def test_processor_keeps_the_sampled_frames_unresized(samples, family, processor, settings):
    prompt = build_prompt_inputs(samples[0], family=family, processor=processor, settings=settings)
    # 160x120 video, long side <= 336 (no enlarging), sides to the nearest multiple of 28 -> 168x112
    assert prompt.frame_size == (168, 112)
    assert prompt.scale_to_original == pytest.approx((160 / 168, 120 / 112))
    # 8 frames, temporal patch 2 -> 4 steps; 112/14 = 8 rows, 168/14 = 12 columns of patches
    assert prompt.video_grid_thw.tolist() == [[4, 8, 12]]
    assert prompt.pixel_values_videos.shape == (4 * 8 * 12, 3 * 2 * 14 * 14)
    # 4*8*12 patches merged 2x2 -> 96 video tokens in the prompt
    assert int((prompt.input_ids == prompt.extra["video_token_id"]).sum()) == 96
    # the first patch is frame 0's top-left 14x14 pixels, normalised with CLIP's mean/std and nothing else
    from infra.data.video import sample_frames

    frames = sample_frames(samples[0].video, fps=2.0, max_frames=8, max_long_side=336, size_multiple=28).frames
    expected = (frames[0, :14, :14] / 255.0 - CLIP_MEAN) / CLIP_STD  # [14, 14, 3]
    patch = prompt.pixel_values_videos[0].reshape(3, 2, 14, 14)[:, 0].permute(1, 2, 0).double().numpy()
    np.testing.assert_allclose(patch, expected, atol=1e-5)


def test_mrope_timing_follows_the_real_frame_spacing(samples, family, processor, settings):
    prompt = build_prompt_inputs(samples[0], family=family, processor=processor, settings=settings)
    # a 20 s video capped at 8 frames: one frame every 2.5 s, two frames per temporal step -> 5 s
    assert prompt.frame_timestamps == [0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5]
    assert prompt.second_per_grid_ts == pytest.approx(5.0)
    assert prompt.extra["frame_ids"] == [0, 12, 25, 37, 50, 62, 75, 87]  # floor(t * 5 fps)


def test_prompt_text_gives_frame_times_size_and_query(samples, family, processor, settings):
    prompt = build_prompt_inputs(samples[1], family=family, processor=processor, settings=settings)
    text = processor.tokenizer.decode(prompt.input_ids)
    assert "the frames are at these seconds: 0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5." in text
    assert "168x112 frames" in text and samples[1].query in text
    assert text.endswith("<|im_start|>assistant\n")


def test_too_long_prompt_is_a_user_error_naming_the_sample_and_the_knobs(samples, family, processor, settings):
    tight = dataclasses.replace(settings, max_prompt_tokens=120)
    with pytest.raises(UserError) as err:
        build_prompt_inputs(samples[2], family=family, processor=processor, settings=tight)
    message = str(err.value)
    assert repr(samples[2].id) in message
    for knob in ("rollout.fps", "rollout.max_frames", "rollout.max_long_side", "max_prompt_tokens=120"):
        assert knob in message


def test_stvg_r1_draws_candidate_ids_near_their_centres_only(samples, family, processor, settings):
    sample = samples[3]
    plain = build_prompt_inputs(sample, family=family, processor=processor, settings=settings)
    marked = build_prompt_inputs(sample, family=family, processor=processor,
                                 settings=dataclasses.replace(settings, task="stvg-r1"))
    assert marked.task == "stvg-r1"
    assert torch.equal(plain.video_grid_thw, marked.video_grid_thw)
    changed = (plain.pixel_values_videos != marked.pixel_values_videos).any(dim=1)
    # patch index -> (temporal step, row, col) in the processor's 2x2-merged order
    t, h, w = marked.video_grid_thw[0].tolist()
    index = torch.arange(t * h * w).reshape(t, h // 2, w // 2, 2, 2)
    rows = torch.arange(h).reshape(h // 2, 2)[None, :, None, :, None].expand_as(index)
    cols = torch.arange(w).reshape(w // 2, 2)[None, None, :, None, :].expand_as(index)
    steps = torch.arange(t)[:, None, None, None, None].expand_as(index)
    sx, sy = marked.scale_to_original
    near = torch.zeros(t * h * w, dtype=torch.bool)
    for k, frame_id in enumerate(marked.extra["frame_ids"]):
        for boxes in sample.tracks.values():
            if frame_id in boxes:
                x1, y1, x2, y2 = boxes[frame_id]
                cx, cy = (x1 + x2) / 2 / sx / 14, (y1 + y2) / 2 / sy / 14  # in patch units
                close = ((rows - cy).abs() <= 1.5) & ((cols - cx).abs() <= 1.5) & (steps == k // 2)
                near[index[close]] = True
    assert changed.any(), "no id was drawn"
    assert not (changed & ~near).any(), "pixels changed away from every candidate's centre"


def test_stvg_r1_without_tracks_is_a_data_error(samples, family, processor, settings):
    bare = dataclasses.replace(samples[0], tracks=None)
    with pytest.raises(DataError, match="tracks"):
        build_prompt_inputs(bare, family=family, processor=processor,
                            settings=dataclasses.replace(settings, task="stvg-r1"))


def test_model_inputs_batch_scores_like_single_unpadded_forwards(samples, family, processor, settings, tiny_model, reference):
    """The learner's batched, right-padded forward gives the log-probs of one plain forward each."""
    model = reference.load_model(tiny_model)
    a = build_prompt_inputs(samples[0], family=family, processor=processor, settings=settings)
    b = build_prompt_inputs(samples[1], family=family, processor=processor,
                            settings=dataclasses.replace(settings, max_frames=6))
    completions = [[30, 31, 32, 33, 34], [40, 41]]
    inputs = family.model_inputs([(a, completions[0]), (b, completions[1])], processor.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = model(**inputs).logits
    for row, (prompt, ids) in enumerate(zip((a, b), completions)):
        start = prompt.input_ids.numel() - 1
        got = torch.log_softmax(logits[row, start:start + len(ids)].double(), -1)[torch.arange(len(ids)), ids]
        np.testing.assert_allclose(got.numpy(), reference.logprobs(model, prompt, ids), atol=1e-4)
