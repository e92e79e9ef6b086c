"""RolloutPool: N rollout actors, prompts spread over them, dead or hung actors replaced, weights pushed.

- `generate(samples, n, sampling, step)` makes one GRPO group per prompt (group id unique per
  (step, prompt)), sends requests of `prompts_per_request` prompts to the least-loaded live actor,
  keeps at most `max_inflight` requests outstanding, and returns a RolloutBatch in prompt order.
- An actor that dies (node lost, OOM, `ray.kill`), or hangs (busy without finishing anything for
  `worker_timeout_s`: it is killed), is replaced by a new one; the requests it held are queued
  again. A request's results only ever come from one successful call: no prompt is lost or doubled.
- Weights are pushed bucket by bucket (`begin_update` / `push_weights`, or `update_weights` from a
  process that holds them) by the object store (CPU) or a collective broadcast (GPU), see
  rollout.weight_sync. A worker lost during a collective push is replaced, the group rebuilt, and
  `finish()` says the weights must be sent again. Calls to an actor run in order, so completions
  already being generated keep the version they started with and say so.

The pool object is picklable (actor handles only) so it can travel into the learner's train loop;
push weights from the process that holds them (learner rank 0). Every actor carries a name under
the pool's prefix, so `shutdown()` also ends the replacements another process's copy created.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from infra.data.sample import GroundingSample
from rollout.config import RolloutConfig
from rollout.engines import SamplingConfig
from rollout.models.source import ModelSource, as_model_source
from rollout.prompting import PromptOptions
from rollout.types import RolloutBatch, SkippedPrompt
from rollout.worker import PromptRequest, PromptResult, RolloutWorker
from rollout.weight_sync import (Bucket, CollectiveBucket, TransferAborted, WeightGroup, bucket_metadata, buckets,
                                 pack_bucket, send_bucket)

log = logging.getLogger("rollout.pool")

POLL_S = 0.5
"""How often a waiting pool looks for hung workers."""
ABORT_GRACE_S = 10.0
"""After an aborted broadcast, how long a worker may take to notice and return before it counts as hung."""


@dataclass
class _Slot:
    """One position in the pool: the current actor filling it and its bookkeeping."""

    index: int
    actor: Any
    inflight: int = 0
    """Generate requests outstanding."""
    generation: int = 0
    """How many times this slot's actor has been replaced."""
    stale: bool = False
    """Replaced after a collective update: holds old weights until the next update reaches it."""
    last_progress: float = field(default_factory=time.monotonic)
    """When the actor last finished a call (or, idle, was given one): the hung-worker clock."""
    started: bool = False
    """The actor has answered a call: worker_timeout_s applies, not worker_start_timeout_s."""

    def timeout(self, config: RolloutConfig) -> float:
        return config.worker_timeout_s if self.started else config.worker_start_timeout_s


@dataclass
class _Call:
    slot: _Slot
    generation: int
    ref: Any
    issued: float = field(default_factory=time.monotonic)


class RolloutPool:
    def __init__(self, model: ModelSource | str, config: RolloutConfig):
        """`model`: where the actors load the model from, each on its own node (a ModelSource, or
        a local folder for single-machine tools and tests)."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError("RolloutPool needs Ray: call ray.init() (or run inside a Ray job) first")
        self.model = as_model_source(model)
        self.config = config
        self.name = f"stvg-rollout-{uuid.uuid4().hex[:8]}"
        self._namespace = ray.get_runtime_context().namespace
        self._restarts = 0
        self._version = 0
        self._weights_refs: Optional[list] = None  # latest object-store buckets, replayed to new actors
        self._calls = 0
        self._lock = threading.RLock()  # generate may run in a background thread beside a weight push
        self._resumed = threading.Condition(self._lock)
        self._updating = False  # a collective push is under way: no new generate requests go out
        self._group: Optional[WeightGroup] = None  # this process's end of the collective group
        self._group_members: tuple = ()
        self._slots = [_Slot(i, self._new_actor(i, 0)) for i in range(config.num_workers)]
        try:  # fail fast, and readably, when an actor cannot start (bad model_dir, no GPU, ...)
            ray.get([slot.actor.stats.remote() for slot in self._slots], timeout=config.worker_start_timeout_s)
        except Exception as err:
            self.shutdown()
            raise RuntimeError(f"rollout workers could not start from model {self.model.describe()}: "
                               f"{_unwrap(err)}") from None
        for slot in self._slots:
            slot.started = True

    # --- public API ---------------------------------------------------------------------------

    @property
    def workers(self) -> list[Any]:
        """The current actor handles (a replaced actor's slot shows its replacement)."""
        return [slot.actor for slot in self._slots]

    @property
    def policy_version(self) -> int:
        return self._version

    @property
    def restarts(self) -> int:
        """Dead or hung actors replaced so far."""
        return self._restarts

    @property
    def inflight(self) -> list[int]:
        """Requests outstanding on each worker right now (for metrics and tests)."""
        return [slot.inflight for slot in self._slots]

    def generate(self, samples: Sequence[GroundingSample], n: int, sampling: Optional[SamplingConfig] = None,
                 *, step: Optional[int] = None, task: Optional[str] = None,
                 options: Optional[Sequence[Optional[PromptOptions]]] = None,
                 skip_bad_videos: bool = False) -> RolloutBatch:
        """n completions for each sample; one GRPO group per sample, group id '<step>/<index>'.
        `options[i]` changes sample i's prompt (rollout.prompting.PromptOptions; None: unchanged).
        A sample whose video cannot be used raises its VideoError (as soon as one comes back), or,
        with `skip_bad_videos`, is left out of the batch and listed in `batch.skipped`."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        if n < 1:
            raise ValueError(f"n (completions per prompt) must be >= 1, got {n}")
        if options is not None and len(options) != len(samples):
            raise ValueError(f"{len(options)} prompt options for {len(samples)} samples")
        sampling = sampling or SamplingConfig(self.config.temperature, self.config.top_p, self.config.max_new_tokens)
        with self._lock:
            step = self._calls if step is None else step
            self._calls += 1
        requests = [PromptRequest(s, group_id=f"step{step}/prompt{i}", prompt_index=i, task=task,
                                  options=options[i] if options is not None else None)
                    for i, s in enumerate(samples)]
        size = self.config.prompts_per_request
        queue = collections.deque(requests[i:i + size] for i in range(0, len(requests), size))
        pending: dict[Any, tuple[_Slot, int, list[PromptRequest]]] = {}
        results: dict[int, PromptResult] = {}
        timing = {"prompt_s": 0.0, "generate_s": 0.0}  # summed over calls (every result of a call has its times)
        started = time.perf_counter()
        while queue or pending:
            with self._lock:
                while queue and len(pending) < self.config.max_inflight and not self._updating:
                    slot = min(self._live_slots(), key=lambda s: s.inflight)
                    chunk = queue.popleft()
                    if slot.inflight == 0:
                        slot.last_progress = time.monotonic()
                    pending[slot.actor.generate.remote(chunk, n, sampling)] = (slot, slot.generation, chunk)
                    slot.inflight += 1
                if not pending:  # the rest waits for the weight push under way
                    self._resumed.wait(POLL_S)
                    continue
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
            for ref in ready:
                slot, generation, chunk = pending.pop(ref)
                with self._lock:
                    if slot.generation == generation:
                        slot.inflight -= 1
                        slot.last_progress, slot.started = time.monotonic(), True
                try:
                    out = ray.get(ref)
                except RayActorError as err:
                    log.warning("rollout worker %d died (%s); re-queueing %d prompt(s)", slot.index,
                                type(err).__name__, len(chunk))
                    self._replace(slot, generation)
                    queue.appendleft(chunk)
                    continue
                except RayTaskError as err:
                    raise _unwrap(err) from None
                call = next((r.timing for r in out if r.timing), {})  # the same on every kept result
                timing["prompt_s"] += call.get("prompt_seconds", 0.0)
                timing["generate_s"] += call.get("generate_seconds", 0.0)
                for result in out:
                    if result.prompt_index in results:  # cannot happen: a request succeeds once
                        raise RuntimeError(f"prompt {result.prompt_index} came back twice")
                    if result.error is not None and not skip_bad_videos:
                        raise result.error  # at once: the rest of the batch would be generated for nothing
                    results[result.prompt_index] = result
            for slot, generation in self._hung({s.index: g for s, g, _ in pending.values()}):
                lost = [ref for ref, (s, g, _) in pending.items() if s is slot and g == generation]
                log.warning("rollout worker %d finished nothing for %g s; replacing it and re-queueing %d "
                            "request(s)", slot.index, slot.timeout(self.config), len(lost))
                for ref in lost:
                    queue.appendleft(pending.pop(ref)[2])
                self._replace(slot, generation, kill=True)
        seconds = time.perf_counter() - started
        ordered = [results[i] for i in range(len(requests))]
        failed = [r for r in ordered if r.error is not None]
        kept = [r for r in ordered if r.error is None]
        position = {r.prompt_index: i for i, r in enumerate(kept)}  # prompt_index among the prompts kept
        completions = [dataclasses.replace(c, prompt_index=position[c.prompt_index])
                       for r in kept for c in r.completions]
        tokens = sum(len(c.token_ids) for c in completions)
        return RolloutBatch(prompts=[r.prompt for r in kept], completions=completions,
                            tokens_per_second=tokens / seconds if seconds > 0 else 0.0,
                            skipped=[SkippedPrompt(samples[r.prompt_index].id, r.error.video, r.error.problem)
                                     for r in failed],
                            timing=timing)

    @contextmanager
    def begin_update(self, version: int) -> Iterator["WeightPush"]:
        """A push of the weights of `version`: `send(bucket)` each bucket, then `finish()`, which is
        True when every worker holds them, False when a worker was lost part-way (it has been
        replaced; send everything again). Use `push_weights` for the loop."""
        push = (_CollectivePush(self, version) if self._sync_mode() == "collective"
                else _ObjectStorePush(self, version))
        try:
            push.start()
            yield push
        except BaseException:
            push.abandon()
            raise
        finally:
            push.close()

    def update_weights(self, weights: Callable[[], Iterable[tuple[str, Any]]], version: int) -> None:
        """Every worker loads these weights and takes `version`; returns when all have.

        `weights()` gives the (Hugging Face name, tensor) pairs, e.g. `model.named_parameters`; it is
        called again when a worker was lost part-way through a collective push. Call it from the
        process that holds the weights (tests, benchmarks, single-process tools; a ZeRO-3 learner
        uses `push_weights` with its bucketed export).
        """
        push_weights(lambda: self.begin_update(version),
                     lambda: buckets(weights(), self.config.weight_bucket_bytes))

    def stats(self) -> list[dict[str, float]]:
        """Each live worker's counters (tokens, generate_seconds, tokens_per_second, policy_version, ...)."""
        import ray

        return ray.get([slot.actor.stats.remote() for slot in self._slots],
                       timeout=max(slot.timeout(self.config) for slot in self._slots))

    def shutdown(self) -> None:
        """End every actor of this pool: its slots' actors and any replacement another copy of the
        pool (e.g. the one in learner rank 0) created under the pool's name."""
        import ray

        with self._lock:
            handles = [slot.actor for slot in self._slots]
            for entry in ray.util.list_named_actors(all_namespaces=True):
                if entry["namespace"] == self._namespace and entry["name"].startswith(self.name + "/"):
                    try:
                        handles.append(ray.get_actor(entry["name"], namespace=self._namespace))
                    except ValueError:  # ended meanwhile
                        pass
            for handle in handles:
                ray.kill(handle)
            self._slots = []
            self._close_group()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for key in ("_lock", "_resumed", "_group"):
            state.pop(key)
        state.update(_group_members=(), _updating=False)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._resumed = threading.Condition(self._lock)
        self._group = None

    # --- internals -------------------------------------------------------------------------------

    def _sync_mode(self) -> str:
        mode = self.config.weight_sync
        if mode == "auto":
            return "collective" if _cuda() else "object_store"
        return mode

    def _new_actor(self, index: int, generation: int):
        import ray

        options = dict(num_cpus=self.config.num_cpus_per_worker, num_gpus=self.config.num_gpus_per_worker,
                       max_restarts=0, name=f"{self.name}/{index}.{generation}-{uuid.uuid4().hex[:6]}",
                       namespace=self._namespace)
        if self.config.resources_per_worker:
            options["resources"] = dict(self.config.resources_per_worker)
        actor_class = ray.remote(RolloutWorker)
        return actor_class.options(**options).remote(self.model, self.config, f"worker{index}.{generation}")

    def _replace(self, slot: _Slot, generation: int, kill: bool = False) -> Optional[_Call]:
        """Start a new actor in `slot` at the pool's current weights, unless the actor of
        `generation` was already replaced (several of its calls fail when it dies). `kill`: end the
        old actor first (it is hung, not dead). Returns the call replaying the weights, if any."""
        import ray

        with self._lock:
            if slot.generation != generation:
                return None
            if self._restarts >= self.config.max_worker_restarts:
                raise RuntimeError(f"rollout workers failed {self._restarts + 1} times, more than "
                                   f"rollout.max_worker_restarts={self.config.max_worker_restarts}; see the Ray logs")
            if kill:
                ray.kill(slot.actor)
            self._restarts += 1
            slot.generation += 1
            slot.inflight = 0
            slot.last_progress, slot.started = time.monotonic(), False
            slot.actor = self._new_actor(slot.index, slot.generation)
            if self._weights_refs is not None:
                # Queued before any generate call, so the new actor never samples from stale weights.
                return _Call(slot, slot.generation, slot.actor.update_weights.remote(self._weights_refs, self._version))
            if self._version != 0:
                # Collective mode keeps no copy of the weights to replay: the new actor sits out until
                # the next push reaches it. (Version 0 is the checkpoint it loads itself.)
                slot.stale = True
            return None

    def _live_slots(self) -> list[_Slot]:
        live = [slot for slot in self._slots if not slot.stale]
        if not live:
            raise RuntimeError("every rollout worker was replaced since the last collective weight update, so none "
                               "holds the current weights; push the weights again, or use "
                               "rollout.weight_sync=object_store, which replays the weights to new workers")
        return live

    def _hung(self, busy: dict[int, int]) -> list[tuple[_Slot, int]]:
        """Of the slots with calls outstanding (slot index -> actor generation), those whose actor has
        finished nothing for worker_timeout_s (worker_start_timeout_s while it starts)."""
        now = time.monotonic()
        return [(slot, busy[slot.index]) for slot in self._slots if slot.index in busy
                and slot.generation == busy[slot.index] and now - slot.last_progress > slot.timeout(self.config)]

    def _poll(self, calls: list[_Call], timeout: float = 0.0) -> dict[int, str]:
        """Outcomes of the calls that have finished (within `timeout`), per slot index: 'ok', 'dead',
        'aborted' (the worker gave up a transfer: TransferAborted). Any other worker error is raised."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        outcomes: dict[int, str] = {}
        if not calls:
            return outcomes
        by_ref = {call.ref: call for call in calls}
        ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=timeout)
        for ref in ready:
            call = by_ref[ref]
            if call.slot.generation == call.generation:
                call.slot.last_progress = time.monotonic()
            try:
                ray.get(ref)
                outcomes[call.slot.index] = "ok"
                call.slot.started = call.slot.started or call.slot.generation == call.generation
            except RayActorError as err:
                outcomes[call.slot.index] = "dead"
                _forget_frames(err)
            except RayTaskError as err:
                if not isinstance(_unwrap(err), TransferAborted):
                    raise _unwrap(err) from None
                outcomes[call.slot.index] = "aborted"
                _forget_frames(err)
        return outcomes

    def _settle(self, calls: list[_Call], deadline: Optional[float] = None,
                stop: Callable[[dict], bool] = lambda outcomes: False) -> dict[int, str]:
        """Wait for `calls` (one per slot): their `_poll` outcomes, or 'hung' for a call unanswered by
        `deadline` (without one: whose worker finished nothing for worker_timeout_s, or for
        worker_start_timeout_s while it starts). Returns early once `stop(outcomes)`."""
        outcomes: dict[int, str] = {}
        waiting = list(calls)
        while waiting and not stop(outcomes):
            wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            outcomes.update(self._poll(waiting, wait))
            now = time.monotonic()
            for call in waiting:
                idle = now - max(call.issued, call.slot.last_progress)
                if call.slot.index not in outcomes and ((deadline is not None and now >= deadline)
                                                        or idle > call.slot.timeout(self.config)):
                    outcomes[call.slot.index] = "hung"
            waiting = [call for call in waiting if call.slot.index not in outcomes]
        return outcomes

    def _recover(self, calls: list[_Call], outcomes: dict[int, str]) -> list[_Call]:
        """Replace every worker that died or hung (a hung one is killed first); returns the replay
        calls of the replacements (object-store mode)."""
        replays = []
        for call in calls:
            outcome = outcomes.get(call.slot.index)
            if outcome in ("dead", "hung"):
                log.warning("rollout worker %d %s during a weight push; replacing it", call.slot.index,
                            "died" if outcome == "dead" else "hung")
                replay = self._replace(call.slot, call.generation, kill=outcome == "hung")
                if replay is not None:
                    replays.append(replay)
        return replays

    def _members(self) -> tuple:
        return tuple((slot.index, slot.generation) for slot in self._slots)

    def _close_group(self) -> None:
        if self._group is not None:
            self._group.close()
        self._group, self._group_members = None, ()


class WeightPush:
    """One push of weights to the pool: `send(bucket)` for each bucket, then `finish()`."""

    def start(self) -> None:
        """Prepare the workers (RolloutPool.begin_update calls it)."""

    def send(self, bucket: Bucket) -> None:
        """Ship one bucket; its tensors may be reused by the caller once this returns."""

    def finish(self) -> bool:
        """True when every worker holds the weights and their version; False: send them again."""
        raise NotImplementedError

    def abandon(self) -> None:
        """The sender raised part-way."""

    def close(self) -> None:
        """Always called last."""


class _ObjectStorePush(WeightPush):
    """Buckets go into the object store as they come; at `finish` every worker loads them all (a
    single call, so it never interleaves with generate calls) and takes the version. A worker that
    dies or hangs is replaced and its replacement loads the same buckets."""

    def __init__(self, pool: RolloutPool, version: int):
        self.pool, self.version, self.refs = pool, int(version), []

    def send(self, bucket: Bucket) -> None:
        import ray

        self.refs.append(ray.put(pack_bucket(bucket)))

    def finish(self) -> bool:
        pool = self.pool
        with pool._lock:
            pool._weights_refs, pool._version = self.refs, self.version
            calls = [_Call(slot, slot.generation, slot.actor.update_weights.remote(self.refs, self.version))
                     for slot in pool._slots]
        while calls:
            outcomes = pool._settle(calls)
            calls = pool._recover(calls, outcomes)
        return True


class _CollectivePush(WeightPush):
    """Over the pool's process group (built when the workers changed, else reused). New generate
    requests wait while it runs; it starts once every worker has finished its earlier calls. Each
    bucket: every worker is asked to receive it (a Ray call with the bucket's metadata), rank 0
    broadcasts in place, and all must confirm within worker_timeout_s. On a failure the abort flag
    stops the others, dead and hung workers are replaced, and `finish()` returns False."""

    def __init__(self, pool: RolloutPool, version: int):
        self.pool, self.version, self.index = pool, int(version), 0
        self.failure: Optional[str] = None
        self.outcomes: dict[int, str] = {}
        self.calls: list[_Call] = []
        self.group: Optional[WeightGroup] = None

    def start(self) -> None:
        pool = self.pool
        with pool._lock:
            pool._updating = True
        self._wait_until_idle()
        backend = "nccl" if _cuda() else "gloo"
        if pool._group is None or pool._group_members != pool._members():
            pool._close_group()
            pool._group = WeightGroup.host(len(pool._slots), backend, pool.config.worker_timeout_s)
            pool._group_members = pool._members()
        self.group = pool._group

    def _wait_until_idle(self) -> None:
        """Every worker answers a probe queued behind its earlier calls; dead or hung ones are replaced
        and the probe goes to their replacements (which answer once their engine is loaded)."""
        pool = self.pool
        calls = [_Call(slot, slot.generation, slot.actor.stats.remote()) for slot in pool._slots]
        while calls:
            outcomes = pool._settle(calls)
            pool._recover(calls, outcomes)
            calls = [_Call(c.slot, c.slot.generation, c.slot.actor.stats.remote())
                     for c in calls if outcomes.get(c.slot.index) != "ok"]

    def send(self, bucket: Bucket) -> None:
        if self.failure is not None:
            return  # the learner keeps gathering in lockstep; nothing more goes out this round
        pool, group = self.pool, self.group
        metadata = bucket_metadata(bucket)
        self.calls = [_Call(slot, slot.generation, slot.actor.update_weights.remote(
            CollectiveBucket(group.spec_for(rank), self.index, metadata), None))
            for rank, slot in enumerate(pool._slots, start=1)]
        self.index += 1
        deadline = time.monotonic() + pool.config.worker_timeout_s
        try:
            group.connect()  # first bucket of a new group: waits for every worker to join
            works = send_bucket(group, bucket)
            group.wait(works, deadline, lambda: self._lost(pool._poll(self._unsettled())))
        except TransferAborted as err:
            self.failure = str(err)
        self._settle_bucket(deadline)

    def _unsettled(self) -> list[_Call]:
        return [c for c in self.calls if c.slot.index not in self.outcomes]

    def _lost(self, outcomes: dict[int, str]) -> Optional[str]:
        self.outcomes.update(outcomes)
        gone = [i for i, outcome in self.outcomes.items() if outcome != "ok"]
        return f"rollout worker(s) {gone} lost" if gone else None

    def _settle_bucket(self, deadline: float) -> None:
        """Every worker confirms the bucket by the deadline; on a failure the others are told to stop
        and get ABORT_GRACE_S to return before they count as hung."""
        pool = self.pool
        failing = lambda outcomes: self.failure is not None or any(v != "ok" for v in outcomes.values())  # noqa: E731
        self.outcomes.update(pool._settle(self._unsettled(), deadline=deadline, stop=failing))
        if self.failure is None and all(self.outcomes.get(c.slot.index) == "ok" for c in self.calls):
            self.outcomes = {}
            return
        self.failure = self.failure or self._lost(self.outcomes) or "weight broadcast failed"
        self.group.abort(self.failure)
        self.outcomes.update(pool._settle(self._unsettled(), deadline=time.monotonic() + ABORT_GRACE_S))

    def finish(self) -> bool:
        pool = self.pool
        if self.failure is None:  # everyone has every bucket: take the version
            self.calls = [_Call(slot, slot.generation, slot.actor.update_weights.remote([], self.version))
                          for slot in pool._slots]
            self.outcomes = pool._settle(self.calls)
            if all(outcome == "ok" for outcome in self.outcomes.values()):
                with pool._lock:
                    pool._version = self.version
                    pool._weights_refs = None
                    for slot in pool._slots:
                        slot.stale = False
                return True
            self.failure = self._lost(self.outcomes)
        lost = {i for i, outcome in self.outcomes.items() if outcome in ("dead", "hung")}
        if not lost:
            pool._close_group()
            raise RuntimeError(f"collective weight push failed and no worker is to blame: {self.failure}")
        pool._recover(self.calls, self.outcomes)
        pool._close_group()  # the members changed: the next push builds a new group
        log.warning("weight push of version %d failed (%s); workers replaced, sending again", self.version,
                    self.failure)
        return False

    def abandon(self) -> None:
        """The sender raised part-way: stop the workers waiting for the rest and drop the group."""
        if self.group is not None:
            self.group.abort("the weight sender stopped")
        self.pool._close_group()

    def close(self) -> None:
        with self.pool._lock:
            self.pool._updating = False
            self.pool._resumed.notify_all()


def push_weights(begin: Optional[Callable[[], Any]], make_buckets: Callable[[], Iterable[Bucket]],
                 again: Callable[[bool], bool] = lambda failed: failed) -> int:
    """Send the buckets of `make_buckets()` through `begin()` (RolloutPool.begin_update) until every
    worker holds them; returns the number of attempts. Processes without the pool (learner ranks
    other than 0) pass `begin=None` and still iterate the buckets, which gathers ZeRO-3 shards in
    lockstep; `again(failed)` then tells every rank whether rank 0 has to send again."""
    attempts = 0
    while True:
        attempts += 1
        with (begin() if begin is not None else nullcontext()) as push:
            for bucket in make_buckets():
                if push is not None:
                    push.send(bucket)
                del bucket  # the gathered tensors must be free before the next bucket is gathered
            failed = push is not None and not push.finish()
        if not again(failed):
            return attempts


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _forget_frames(err: BaseException) -> None:
    """Drop the traceback of an error Ray keeps with its ObjectRef. Raised here, it would pin our
    frames (a push's pending works, hence the weight group's communicator and store) in a cycle
    that only the garbage collector breaks, so a replaced group kept listening after its close."""
    err.__traceback__ = None


def _unwrap(err: Exception) -> Exception:
    """The exception a worker raised (e.g. a UserError for a too-long prompt), not Ray's wrapper."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, Exception) else err
