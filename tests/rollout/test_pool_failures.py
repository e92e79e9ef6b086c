"""RolloutPool under failure, on a real local Ray: rollout workers killed (ray.kill) or hung (SIGSTOP,
a real stopped process) during weight pushes of both transports and during generation, the
collective group reused across pushes and rebuilt when a worker is replaced, and shutdown ending
replacements that another process's copy of the pool created."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import numpy as np
import pytest

from rollout.config import RolloutConfig
from rollout.engines import SamplingConfig

pytestmark = pytest.mark.slow

TIMEOUT_S = 20.0  # worker_timeout_s of these pools: a stopped (started) worker is hung after this


def _config(**overrides) -> RolloutConfig:
    base = dict(engine="hf", num_workers=2, num_cpus_per_worker=0.5, resources_per_worker={"stvg_rollout": 1},
                max_frames=8, max_new_tokens=16, max_inflight=4, worker_timeout_s=TIMEOUT_S,
                worker_start_timeout_s=300, weight_bucket_mb=1)
    base.update(overrides)
    return RolloutConfig(**base)


@pytest.fixture
def stopped_pids():
    """Processes a test froze with SIGSTOP (our own Ray workers): resumed and killed if still there."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break


@pytest.fixture
def make_pool(ray_local, tiny_model):
    pools = []

    def make(**overrides):
        from rollout.pool import RolloutPool

        pools.append(RolloutPool(tiny_model, _config(**overrides)))
        return pools[-1]

    yield make
    for pool in pools:
        pool.shutdown()


def _interrupted(model, action, at: int = 30):
    """model.named_parameters, but the first pass runs `action` when it reaches tensor `at` (with
    1 MiB buckets the tiny model's first buckets have gone out by then)."""
    passes = []

    def weights():
        passes.append(1)
        for k, pair in enumerate(model.named_parameters()):
            if len(passes) == 1 and k == at:
                action()
            yield pair
    return weights, passes


def _pid(pool, index: int) -> int:
    return int(pool.stats()[index]["pid"])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _gone(pid: int, within: float = 60.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat") as stat:  # a killed child not yet reaped by its parent
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.2)
    return False


def _check_every_worker_runs(pool, model, samples, reference, version: int) -> None:
    """Each worker reports `version` and generates with exactly `model`'s weights."""
    import ray

    assert [int(s["policy_version"]) for s in pool.stats()] == [version] * len(pool.workers)
    from rollout.worker import PromptRequest

    for actor in pool.workers:
        result = ray.get(actor.generate.remote([PromptRequest(samples[0], "g", 0)], 2,
                                               SamplingConfig(max_new_tokens=8, seed=5)))[0]
        for c in result.completions:
            assert c.policy_version == version
            np.testing.assert_allclose(c.logprobs, reference.logprobs(model, result.prompt, c.token_ids), atol=1e-4)


def test_collective_group_is_reused_and_a_worker_killed_mid_push_is_replaced(ray_local, make_pool, tiny_model,
                                                                             samples, reference):
    pool = make_pool(weight_sync="collective")
    model = reference.perturbed(reference.load_model(tiny_model), seed=1)
    pool.update_weights(model.named_parameters, 1)
    pool.update_weights(model.named_parameters, 2)
    assert [s["weight_groups_joined"] for s in pool.stats()] == [1.0, 1.0]  # one group for both pushes
    first_store = pool._group.spec.port  # rank 0's end of the group, in this process

    reference.perturbed(model, seed=2)
    victim = pool.workers[0]
    weights, passes = _interrupted(model, lambda: ray_local.kill(victim))
    pool.update_weights(weights, 3)
    assert len(passes) == 2  # the push was sent again, to the rebuilt group
    assert pool.restarts == 1 and pool.workers[0] != victim
    # the survivor joined the rebuilt group (2 groups), the replacement only that one
    assert [s["weight_groups_joined"] for s in pool.stats()] == [1.0, 2.0]
    # the old group was shut down on rank 0 too: its store no longer listens
    assert pool._group.spec.port != first_store and not _listening(first_store)
    _check_every_worker_runs(pool, model, samples, reference, 3)
    pool.update_weights(model.named_parameters, 4)  # the rebuilt group is reused
    assert [s["weight_groups_joined"] for s in pool.stats()] == [1.0, 2.0]


def test_a_worker_hung_during_a_collective_push_is_killed_replaced_and_the_push_completes(
        make_pool, tiny_model, samples, reference, stopped_pids):
    pool = make_pool(weight_sync="collective")
    model = reference.perturbed(reference.load_model(tiny_model), seed=3)
    pid = _pid(pool, 1)
    weights, passes = _interrupted(model, lambda: (stopped_pids.append(pid), os.kill(pid, signal.SIGSTOP)))
    started = time.monotonic()
    pool.update_weights(weights, 1)
    assert time.monotonic() - started >= TIMEOUT_S  # it waited the timeout, not forever
    assert len(passes) == 2 and pool.restarts == 1
    assert _gone(pid)  # the hung process was killed
    _check_every_worker_runs(pool, model, samples, reference, 1)


@pytest.mark.parametrize("failure", ["killed", "hung"])
def test_an_object_store_push_replaces_a_lost_worker_which_loads_the_same_buckets(
        ray_local, make_pool, tiny_model, samples, reference, stopped_pids, failure):
    pool = make_pool(weight_sync="object_store")
    model = reference.perturbed(reference.load_model(tiny_model), seed=4)
    victim, pid = pool.workers[0], _pid(pool, 0)

    def fail():
        if failure == "killed":
            ray_local.kill(victim)
        else:
            stopped_pids.append(pid)
            os.kill(pid, signal.SIGSTOP)

    weights, passes = _interrupted(model, fail)
    pool.update_weights(weights, 1)
    assert len(passes) == 1  # the object store keeps the buckets: nothing is sent twice
    assert pool.restarts == 1 and pool.workers[0] != victim and _gone(pid)
    _check_every_worker_runs(pool, model, samples, reference, 1)


def test_a_worker_hung_mid_batch_is_replaced_and_every_prompt_comes_back_once(make_pool, samples, stopped_pids):
    pool = make_pool(weight_sync="object_store")
    pid = _pid(pool, 0)
    prompts = [samples[i % len(samples)] for i in range(6)]
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(batch=pool.generate(prompts, 2, SamplingConfig(
        max_new_tokens=16, seed=3))))
    thread.start()
    deadline = time.monotonic() + 60
    while pool.inflight[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.inflight[0] > 0
    stopped_pids.append(pid)
    os.kill(pid, signal.SIGSTOP)
    thread.join(timeout=300)
    assert not thread.is_alive()
    batch = out["batch"]
    assert sorted(c.prompt_index for c in batch.completions) == sorted(list(range(6)) * 2)
    assert pool.restarts == 1 and _gone(pid)


def test_shutdown_ends_replacements_another_copy_of_the_pool_made(ray_local, make_pool, samples):
    """Learner rank 0 holds a pickled copy of the driver's pool; workers it replaces are unknown to the
    driver's copy, whose shutdown must still end them."""
    from ray import cloudpickle
    from ray.exceptions import RayActorError

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the holder class below, on Ray's side
    pool = make_pool(weight_sync="object_store")
    original = pool.workers[0]
    holder = Holder.options(num_cpus=0).remote(pool)
    replacement = ray_local.get(holder.replace_first_worker.remote(samples[:1]))
    assert replacement != original and pool.workers[0] == original  # the driver's copy never saw it
    assert ray_local.get(replacement.stats.remote())["policy_version"] == 0  # alive
    pool.shutdown()
    # ray.kill is asynchronous: a call that reaches the actor before the kill is still answered
    deadline = time.monotonic() + 60
    while True:
        try:
            ray_local.get(replacement.stats.remote(), timeout=60)
        except RayActorError:
            break
        assert time.monotonic() < deadline, "the replacement outlived the pool's shutdown by 60 s"
        time.sleep(0.2)
    assert ray_local.get(holder.alive.remote())  # its owner lives on: shutdown ended it, not fate-sharing


import ray  # noqa: E402  (only for the holder actor's decorator)


@ray.remote
class Holder:
    """Stands in for learner rank 0: another process with its own copy of the pool."""

    def __init__(self, pool):
        self.pool = pool

    def replace_first_worker(self, samples):
        ray.kill(self.pool.workers[0])
        self.pool.generate(samples, 1, SamplingConfig(max_new_tokens=4, seed=0))
        return self.pool.workers[0]

    def alive(self) -> bool:
        return True
