"""The processed-prompt cache: built once, least recently used evicted past its byte budget; the
rollout worker serves a sample seen again from it, and builds masked prompts every time."""

from __future__ import annotations

import torch

from rollout.config import RolloutConfig
from rollout.curriculum import FrameMask
from rollout.engines import SamplingConfig
from rollout.prompt_cache import PromptCache
from rollout.prompting import PromptOptions
from rollout.types import PromptInputs
from rollout.worker import PromptRequest, RolloutWorker


def _prompt(name: str) -> PromptInputs:  # 10 int64 ids + 15 float32 values = 140 bytes
    return PromptInputs(sample_id=name, input_ids=torch.zeros(10, dtype=torch.long), pixel_values_videos=torch.zeros(3, 5),
                        video_grid_thw=torch.ones(1, 3, dtype=torch.long), second_per_grid_ts=1.0,
                        frame_timestamps=[0.0], frame_size=(28, 28), scale_to_original=(1.0, 1.0))


def test_cache_builds_once_and_evicts_the_least_recently_used_past_its_budget():
    built = []

    def build(name):
        def make():
            built.append(name)
            return _prompt(name)
        return make

    cache = PromptCache(max_bytes=2 * 140)
    a = cache.get("a", build("a"))
    cache.get("b", build("b"))
    assert cache.get("a", build("a")) is a  # a is now the most recent
    cache.get("c", build("c"))  # over budget: b, the least recently used, goes
    assert len(cache) == 2
    cache.get("a", build("a"))
    cache.get("b", build("b"))
    assert built == ["a", "b", "c", "b"] and cache.hits == 2


def test_a_zero_budget_caches_nothing():
    cache = PromptCache(0)
    first = cache.get("a", lambda: _prompt("a"))
    assert cache.get("a", lambda: _prompt("a")) is not first and len(cache) == 0


def test_worker_reuses_a_samples_prompt_and_builds_masked_prompts_anew(samples, tiny_model):
    worker = RolloutWorker(str(tiny_model), RolloutConfig(engine="hf", max_frames=8))
    sampling = SamplingConfig(max_new_tokens=2, seed=0)
    first = worker.generate([PromptRequest(samples[0], "g0", 0)], 1, sampling)[0].prompt
    again = worker.generate([PromptRequest(samples[0], "g1", 0)], 1, sampling)[0].prompt
    assert again is first and worker.stats()["prompt_cache_hits"] == 1
    mask = FrameMask(share=1.0, step=0)
    masked = worker.generate([PromptRequest(samples[0], "g2", 0, options=PromptOptions(mask=mask))], 1, sampling)[0]
    assert masked.prompt is not first and worker.stats()["prompt_cache_hits"] == 1
    assert not torch.equal(masked.prompt.pixel_values_videos, first.pixel_values_videos)
