"""RolloutPool on a real local Ray: groups, contract with the learner, weight sync, dead workers."""

from __future__ import annotations

import collections
import threading
import time

import numpy as np
import pytest
import torch

from infra.errors import UserError
from rollout.config import RolloutConfig
from rollout.engines import SamplingConfig
from rollout.prompting import build_prompt_inputs

pytestmark = pytest.mark.slow

N = 3


def _config(**overrides) -> RolloutConfig:
    base = dict(engine="hf", num_workers=2, num_cpus_per_worker=0.5, resources_per_worker={"stvg_rollout": 1},
                max_frames=8, max_new_tokens=24, max_inflight=4)
    base.update(overrides)
    return RolloutConfig(**base)


@pytest.fixture(scope="module")
def pool(ray_local, tiny_model):
    from rollout.pool import RolloutPool

    pool = RolloutPool(tiny_model, _config())
    yield pool
    pool.shutdown()


@pytest.fixture(scope="module")
def learner_model(tiny_model, reference):
    """The driver's own copy of the policy, standing in for the learner."""
    return reference.load_model(tiny_model)


def _check_groups(batch, num_prompts: int, n: int) -> None:
    per_prompt = collections.Counter(c.prompt_index for c in batch.completions)
    assert per_prompt == {i: n for i in range(num_prompts)}
    groups = {}
    for c in batch.completions:
        groups.setdefault(c.prompt_index, set()).add(c.group_id)
    assert all(len(g) == 1 for g in groups.values())
    assert len({next(iter(g)) for g in groups.values()}) == num_prompts  # one distinct group per prompt


def test_pool_returns_n_completions_per_prompt_in_distinct_groups(pool, samples, learner_model, reference,
                                                                   family, processor, settings):
    started = time.perf_counter()
    batch = pool.generate(samples[:4], N, SamplingConfig(max_new_tokens=16, seed=0), step=7)
    wall = time.perf_counter() - started
    assert len(batch.prompts) == 4 and len(batch.completions) == 4 * N
    # the workers' own seconds: 4 calls over 2 workers in parallel, so their sum is under twice the wall time
    assert set(batch.timing) == {"prompt_s", "generate_s"}
    assert batch.timing["prompt_s"] > 0 and batch.timing["generate_s"] > 0
    assert batch.timing["prompt_s"] + batch.timing["generate_s"] < 2 * wall
    _check_groups(batch, 4, N)
    assert {c.group_id for c in batch.completions} == {f"step7/prompt{i}" for i in range(4)}
    assert [p.sample_id for p in batch.prompts] == [s.id for s in samples[:4]]
    assert all(c.policy_version == pool.policy_version for c in batch.completions)
    assert batch.tokens_per_second > 0
    # the learner rebuilds nothing: the shipped prompt equals an independent local build, bit for bit
    local = build_prompt_inputs(samples[2], family=family, processor=processor, settings=settings)
    assert torch.equal(batch.prompts[2].input_ids, local.input_ids)
    assert torch.equal(batch.prompts[2].pixel_values_videos, local.pixel_values_videos)
    assert "frames" not in batch.prompts[2].extra
    # and the rollout log-probs are the learner's log-probs for the same weights
    for c in batch.completions[:: N]:
        expected = reference.logprobs(learner_model, batch.prompts[c.prompt_index], c.token_ids)
        np.testing.assert_allclose(c.logprobs, expected, atol=1e-4)
    # the pool travels into the learner's train loop by pickling: same actors on the other side
    from ray import cloudpickle

    assert cloudpickle.loads(cloudpickle.dumps(pool)).workers == pool.workers
    stats = pool.stats()
    assert len(stats) == 2 and all(s["tokens"] > 0 and s["tokens_per_second"] > 0 for s in stats)


def test_weight_update_moves_logprobs_to_the_new_weights(pool, samples, learner_model, reference):
    old = [p.detach().clone() for p in learner_model.parameters()]
    version = pool.policy_version + 1
    reference.perturbed(learner_model, seed=version)
    pool.update_weights(learner_model.named_parameters, version)
    batch = pool.generate(samples[:2], N, SamplingConfig(max_new_tokens=12, seed=1))
    assert all(c.policy_version == version for c in batch.completions)
    new_state = [p.detach().clone() for p in learner_model.parameters()]
    for c in batch.completions:
        prompt = batch.prompts[c.prompt_index]
        np.testing.assert_allclose(c.logprobs, reference.logprobs(learner_model, prompt, c.token_ids), atol=1e-4)
    # under the old weights the same tokens score differently: the update really landed
    with torch.no_grad():
        for param, value in zip(learner_model.parameters(), old):
            param.copy_(value)
    c = batch.completions[0]
    stale = reference.logprobs(learner_model, batch.prompts[c.prompt_index], c.token_ids)
    assert np.abs(np.array(stale) - np.array(c.logprobs)).max() > 1e-2
    with torch.no_grad():
        for param, value in zip(learner_model.parameters(), new_state):
            param.copy_(value)


def test_killing_a_worker_mid_batch_still_returns_every_completion_once(ray_local, pool, samples, learner_model,
                                                                        reference):
    restarts = pool.restarts
    version = pool.policy_version
    prompts = [samples[i % len(samples)] for i in range(8)]
    out: dict = {}

    def run():
        out["batch"] = pool.generate(prompts, 2, SamplingConfig(max_new_tokens=48, seed=3))

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while pool.inflight[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    victim = pool.workers[0]
    assert pool.inflight[0] > 0
    ray_local.kill(victim)
    thread.join(timeout=240)
    assert not thread.is_alive()
    batch = out["batch"]
    assert pool.restarts == restarts + 1 and pool.workers[0] != victim
    _check_groups(batch, len(prompts), 2)
    # the replacement came up with the current weights, not the checkpoint's
    assert all(c.policy_version == version for c in batch.completions)
    for c in batch.completions[::4]:
        expected = reference.logprobs(learner_model, batch.prompts[c.prompt_index], c.token_ids)
        np.testing.assert_allclose(c.logprobs, expected, atol=1e-4)


def test_collective_weight_sync_and_prompt_errors_through_the_pool(ray_local, tiny_model, samples, reference):
    from rollout.pool import RolloutPool

    # o1 prompts of these samples are 333 tokens, stvg-r1 ones 391: the budget sits between
    pool = RolloutPool(tiny_model, _config(num_workers=1, weight_sync="collective", max_prompt_tokens=360))
    try:
        model = reference.perturbed(reference.load_model(tiny_model), seed=11)
        pool.update_weights(model.named_parameters, 5)  # gloo broadcast from this process (rank 0)
        batch = pool.generate(samples[:2], 2, SamplingConfig(max_new_tokens=10, seed=2))
        assert all(c.policy_version == 5 for c in batch.completions)
        for c in batch.completions:
            np.testing.assert_allclose(c.logprobs, reference.logprobs(model, batch.prompts[c.prompt_index], c.token_ids),
                                       atol=1e-4)
        with pytest.raises(UserError) as err:
            pool.generate(samples[:1], 2, task="stvg-r1")
        assert type(err.value) is UserError  # the worker's own error, not Ray's wrapper
        assert "391 tokens" in str(err.value) and "rollout.max_frames" in str(err.value)
    finally:
        pool.shutdown()


def test_a_damaged_video_raises_its_video_error_or_is_left_out_when_the_caller_asks(pool, samples, tmp_path):
    import dataclasses

    from infra.errors import VideoError
    from rollout.types import SkippedPrompt

    damaged = tmp_path / "damaged.mp4"
    data = bytearray(open(samples[1].video, "rb").read())
    data[2000:] = bytes(len(data) - 2000)  # overwritten from byte 2000
    damaged.write_bytes(bytes(data))
    asked = [samples[0], dataclasses.replace(samples[1], video=str(damaged)), samples[2]]
    sampling = SamplingConfig(max_new_tokens=8, seed=0)
    with pytest.raises(VideoError) as caught:
        pool.generate(asked, N, sampling, step=3)
    assert caught.value.video == str(damaged)

    batch = pool.generate(asked, N, sampling, step=3, skip_bad_videos=True)
    assert [p.sample_id for p in batch.prompts] == [samples[0].id, samples[2].id]
    assert batch.skipped == [SkippedPrompt(samples[1].id, str(damaged), caught.value.problem)]
    _check_groups(batch, 2, N)
    # each completion points at the prompt it answers, among the prompts kept
    owner = {"step3/prompt0": samples[0].id, "step3/prompt2": samples[2].id}
    assert all(batch.prompts[c.prompt_index].sample_id == owner[c.group_id] for c in batch.completions)
