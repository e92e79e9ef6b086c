"""VideoTG-R1's curriculum through the real rollout pool (Ray, tiny model, real synthetic videos):
the share of frames masked per step is seen in the frames the rollout built (decoded back from the
PromptInputs), masked frames are black, the rest untouched, and the learner's batch holds exactly
those pixels."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from rewards.client import RewardClientConfig, build_reward_client
from rollout.config import RolloutConfig
from rollout.curriculum import CurriculumConfig, CurriculumPlan
from rollout.engines import SamplingConfig
from rollout.prompting import PromptSettings, build_prompt_inputs
from rollout.prompts import build_instruction
from tests.rollout._seed_frames import prompt_frames
from trainer.grpo import GRPOConfig
from trainer.rollouts import RolloutSource
from trainer.sampler import PromptSampler

pytestmark = pytest.mark.slow

TOTAL_STEPS = 4
# Synthetic seed 0: video 0's GT span is 6-13 s, video 1's 5-11.6 s; 8 frames at 0, 2.5, ..., 17.5 s.
# Linear schedule 0.5 -> 0: share 0.5 at step 0, 0.25 at step 2, 0 at step 4.
# Video 0, outside frames 0 (6 s from the span), 2.5 (3.5), 5 (1), 15 (2), 17.5 (4.5): half of 5 rounded
#   half up = 3 -> frames 0, 1, 7; a quarter = 1.25 -> 1 -> frame 0.
# Video 1, outside 0 (5), 2.5 (2.5), 12.5 (0.9), 15 (3.4), 17.5 (5.9): 3 -> frames 0, 6, 7; 1 -> frame 7.
# Video 2 is not hard (difficulty 0.1 < 0.7): never masked.
EXPECTED = {0: {"synth-s0-00000.mp4": [0, 1, 7], "synth-s0-00001.mp4": [0, 6, 7], "synth-s0-00002.mp4": []},
            2: {"synth-s0-00000.mp4": [0], "synth-s0-00001.mp4": [7], "synth-s0-00002.mp4": []},
            4: {"synth-s0-00000.mp4": [], "synth-s0-00001.mp4": [], "synth-s0-00002.mp4": []}}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    from infra.data.synth import generate, load_synthetic

    out = tmp_path_factory.mktemp("curriculum-videos")
    generate(out, num_videos=3, seed=0, width=160, height=120, fps=5.0)
    return load_synthetic(out)


@pytest.fixture(scope="module")
def pool(tiny_model):
    import ray

    from infra.loopback import init_local_ray
    from rollout.pool import RolloutPool

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    init_local_ray(num_cpus=2, include_dashboard=False, log_to_driver=False)
    config = RolloutConfig(engine="hf", num_workers=1, task="stvg-r1", fps=2.0, max_frames=8, max_long_side=336,
                           max_new_tokens=8)
    pool = RolloutPool(str(tiny_model), config)
    yield pool
    pool.shutdown()
    ray.shutdown()


def test_hard_samples_are_masked_in_the_rollouts_frames_by_step_and_the_learner_gets_those_pixels(
        pool, samples, tiny_model):
    from rollout.models import get_family
    from trainer.experience import make_experience
    from trainer.learner.batch import collate

    assert [s.span_seconds for s in samples[:2]] == [(6.0, 13.0), (5.0, 11.6)]
    plan = CurriculumPlan(CurriculumConfig(enabled=True, start_share=0.5, end_share=0.0), TOTAL_STEPS,
                          {samples[0].id: 0.9, samples[1].id: 0.75, samples[2].id: 0.1})
    source = RolloutSource(pool, samples, PromptSampler(len(samples), seed=0),
                           prompts_per_step=3, group_size=2, task="stvg-r1", seed=0, prefetch=False,
                           sampling=SamplingConfig(1.0, 1.0, 8), curriculum=pickle.loads(pickle.dumps(plan)))
    family = get_family("qwen2_5_vl")
    processor = family.load_processor(tiny_model)
    settings = PromptSettings(task="stvg-r1", fps=2.0, max_frames=8, max_long_side=336)
    unmasked = {s.id: build_prompt_inputs(s, family=family, processor=processor, settings=settings) for s in samples}
    by_id = {s.id: s for s in samples}
    rewards = build_reward_client(RewardClientConfig(mode="local"))

    for step, expected in EXPECTED.items():
        batch = source.take(step, TOTAL_STEPS + 1)
        assert sorted(p.sample_id for p in batch.prompts) == sorted(expected)
        for prompt in batch.prompts:
            masked = expected[prompt.sample_id]
            frames, plain = prompt_frames(prompt), prompt_frames(unmasked[prompt.sample_id])
            for k in range(8):
                if k in masked:
                    assert not frames[k].any(), f"step {step} {prompt.sample_id}: frame {k} must be black"
                else:
                    assert np.array_equal(frames[k], plain[k]), f"step {step} {prompt.sample_id}: frame {k} changed"
            # independently: the unmasked frames blacked out here, through the processor
            blacked = plain.copy()
            blacked[masked] = 0
            sample = by_id[prompt.sample_id]
            reference = family.build_prompt(
                processor, sample_id=sample.id, frames=blacked, timestamps=prompt.frame_timestamps,
                instruction=build_instruction("stvg-r1", sample.query, prompt.frame_timestamps, prompt.frame_size),
                task="stvg-r1", scale_to_original=prompt.scale_to_original, max_prompt_tokens=4096)
            assert torch.equal(prompt.pixel_values_videos, reference.pixel_values_videos)
            assert torch.equal(prompt.input_ids, reference.input_ids)

        # the learner side: experience -> items -> (pickled across Ray) -> the learner's micro-batch
        scored = make_experience(batch, samples, rewards, "stvg-r1", GRPOConfig(group_size=2, filter_zero_variance=False,
                                                                            max_completion_length=8), 0, 1)
        items = pickle.loads(pickle.dumps(scored.items))
        assert len(items) == 6
        for item in items:
            micro = collate([item], processor.tokenizer.pad_token_id, item.prompt.extra["video_token_id"])
            rollout_prompt = next(p for p in batch.prompts if p.sample_id == item.prompt.sample_id)
            assert torch.equal(micro.pixel_values_videos, rollout_prompt.pixel_values_videos)
    source.close()
