"""Prompt length: the plan's frames, video grid, video tokens and prompt tokens equal what the real
rollout pipeline builds (H.264 videos decoded and sampled, the real Qwen2.5-VL processor, the tiny
model's tokenizer) for videos of several sizes and samplings."""

from __future__ import annotations

import pytest

from infra.plan.prompt import PLAN_QUERY, VideoAssumption, assumed_video, size_prompt
from infra.plan.shapes import shapes_from_config
from infra.plan.source import find_model

FPS = 5.0  # the synthetic videos' frame rate; they are 20 s long


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from rollout.models import get_family
    from rollout.models.tiny import tiny_model_dir

    model_dir = tiny_model_dir(tmp_path_factory.mktemp("models"))
    family = get_family("qwen2_5_vl")
    return model_dir, family, family.load_processor(model_dir)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """One synthetic sample per (width, height), in real encoded videos."""
    from infra.data.synth import generate, load_synthetic

    out = {}
    for width, height in ((160, 120), (320, 180), (120, 200)):
        folder = tmp_path_factory.mktemp(f"synth{width}x{height}")
        generate(folder, num_videos=1, seed=3, width=width, height=height, fps=FPS)
        out[(width, height)] = load_synthetic(folder)[0]
    return out


CASES = [  # (video size, task, fps, max_frames, max_long_side)
    ((160, 120), "stvg-o1", 2.0, 64, 336),   # 40 frames, upscaling never happens: 168x112
    ((320, 180), "vtg", 2.0, 16, 336),       # max_frames caps the count: timestamps at 0.8 fps
    ((320, 180), "stvg-o1", 1.5, 7, 112),    # an odd frame count (the processor pads one frame)
    ((120, 200), "vtg", 8.0, 200, 168),      # portrait, asked for more frames than the video has (5 fps)
]


@pytest.mark.parametrize("size,task,fps,max_frames,max_long_side", CASES)
def test_prompt_size_equals_the_real_processors_output(tiny, videos, size, task, fps, max_frames, max_long_side):
    from rollout.config import RolloutConfig
    from rollout.prompting import PromptOptions, PromptSettings, build_prompt_inputs

    model_dir, family, processor = tiny
    rollout = RolloutConfig(task=task, fps=fps, max_frames=max_frames, max_long_side=max_long_side,
                            max_prompt_tokens=100_000)
    real = build_prompt_inputs(videos[size], family=family, processor=processor,
                               settings=PromptSettings.from_config(rollout), options=PromptOptions(query=PLAN_QUERY))
    source = find_model(str(model_dir))
    assert source.tokenizer is not None  # counted exactly, not estimated
    planned = size_prompt(rollout, shapes_from_config(source.config, "tiny").vision,
                          VideoAssumption(size[0], size[1], 20.0, FPS), source.tokenizer)
    video_tokens = int((real.input_ids == processor.video_token_id).sum())
    assert planned.frames == len(real.frame_timestamps)
    assert planned.frame_size == real.frame_size
    assert list(planned.grid) == real.video_grid_thw[0].tolist()
    assert planned.patches == real.pixel_values_videos.shape[0]
    assert planned.video_tokens == video_tokens
    assert planned.tokens == real.input_ids.numel()
    assert planned.text_exact


def test_without_a_tokenizer_text_tokens_are_estimated_near_the_tokenizers_count(tiny):
    """The estimate counts pre-tokenizer pieces, a lower bound of any BPE over the same split; the
    tiny tokenizer was trained on these very instructions, so it is close to that bound."""
    from rollout.config import RolloutConfig

    model_dir, _, _ = tiny
    source = find_model(str(model_dir))
    vision = shapes_from_config(source.config, "tiny").vision
    video = VideoAssumption(640, 360, 60.0)
    for task in ("stvg-o1", "stvg-r1", "vtg"):
        rollout = RolloutConfig(task=task)
        exact = size_prompt(rollout, vision, video, source.tokenizer)
        estimate = size_prompt(rollout, vision, video, None)
        assert not estimate.text_exact and estimate.video_tokens == exact.video_tokens
        assert estimate.text_tokens <= exact.text_tokens <= 1.5 * estimate.text_tokens


def test_the_assumed_video_is_the_generators_for_synthetic_data_else_the_worst_case():
    from trainer.config import load_run_config

    synthetic = assumed_video(load_run_config(None, ["data.synthetic_width=200", "data.synthetic_height=100"]))
    assert (synthetic.width, synthetic.height, synthetic.seconds, synthetic.fps) == (200, 100, 20.0, 5.0)
    real = assumed_video(load_run_config(None, ["data.source=charades", "data.train_annotations=a.txt",
                                                "rollout.max_long_side=448"]))
    assert (real.width, real.height, real.seconds, real.origin) == (448, 448, 60.0, "worst case")
    given = assumed_video(load_run_config(None), size=(1280, 720))
    assert (given.width, given.height, given.seconds) == (1280, 720, 60.0)
