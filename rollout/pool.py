"""RolloutPool: N rollout actors, prompts spread over them, dead actors replaced, weights pushed.

- `generate(samples, n, sampling, step)` makes one GRPO group per prompt (group id unique per
  (step, prompt)), sends requests of `prompts_per_request` prompts to the least-loaded live actor,
  keeps at most `max_inflight` requests outstanding, and returns a RolloutBatch in prompt order.
- An actor that dies (node lost, OOM, `ray.kill`) is replaced by a new one that first loads the
  latest weights; the requests it held are queued again. A request's results only ever come back
  from one successful call, so no prompt is lost or doubled.
- `update_weights(named_tensors, version)` ships weights by the object store (CPU) or a collective
  broadcast (GPU), see rollout.weight_sync. Calls made to an actor run in order, so completions
  already being generated keep the version they started with and say so.

The pool object is picklable (actor handles only) so it can travel into the learner's train loop;
call `update_weights` from the process that holds the weights (learner rank 0).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Sequence

from infra.data.sample import GroundingSample
from rollout.config import RolloutConfig
from rollout.engines import SamplingConfig
from rollout.models.source import ModelSource, as_model_source
from rollout.prompting import PromptOptions
from rollout.types import RolloutBatch, SkippedPrompt
from rollout.worker import PromptRequest, PromptResult, RolloutWorker
from rollout.weight_sync import CollectiveSender, pack_state

log = logging.getLogger("rollout.pool")


@dataclass
class _Slot:
    """One position in the pool: the current actor filling it and its bookkeeping."""

    index: int
    actor: Any
    inflight: int = 0
    generation: int = 0
    """How many times this slot's actor has been replaced."""
    stale: bool = False
    """Replaced after a collective update: holds old weights until the next update reaches it."""


class RolloutPool:
    def __init__(self, model: ModelSource | str, config: RolloutConfig):
        """`model`: where the actors load the model from, each on its own node (a ModelSource, or
        a local folder for single-machine tools and tests)."""
        import ray

        if not ray.is_initialized():
            raise RuntimeError("RolloutPool needs Ray: call ray.init() (or run inside a Ray job) first")
        self.model = as_model_source(model)
        self.config = config
        self._restarts = 0
        self._version = 0
        self._weights_ref = None  # latest packed weights in the object store (object_store path)
        self._calls = 0
        self._lock = threading.RLock()  # generate may run in a background thread beside update_weights
        self._slots = [_Slot(i, self._new_actor(i, 0)) for i in range(config.num_workers)]
        try:  # fail fast, and readably, when an actor cannot start (bad model_dir, no GPU, ...)
            ray.get([slot.actor.stats.remote() for slot in self._slots])
        except Exception as err:
            self.shutdown()
            raise RuntimeError(f"rollout workers could not start from model {self.model.describe()}: "
                               f"{_unwrap(err)}") from None

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
        """Dead actors replaced so far."""
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
        started = time.perf_counter()
        while queue or pending:
            with self._lock:
                while queue and len(pending) < self.config.max_inflight:
                    slot = min(self._live_slots(), key=lambda s: s.inflight)
                    chunk = queue.popleft()
                    ref = slot.actor.generate.remote(chunk, n, sampling)
                    slot.inflight += 1
                    pending[ref] = (slot, slot.generation, chunk)
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                slot, generation, chunk = pending.pop(ref)
                with self._lock:
                    if slot.generation == generation:
                        slot.inflight -= 1
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
                for result in out:
                    if result.prompt_index in results:  # cannot happen: a request succeeds once
                        raise RuntimeError(f"prompt {result.prompt_index} came back twice")
                    if result.error is not None and not skip_bad_videos:
                        raise result.error  # at once: the rest of the batch would be generated for nothing
                    results[result.prompt_index] = result
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
                                     for r in failed])

    def update_weights(self, named_tensors: Iterable[tuple[str, Any]], version: int) -> None:
        """Every worker loads these weights and takes `version`; returns when all have.

        Object-store mode: a worker found dead here is replaced, and its replacement loads these
        weights before it generates. Collective mode: every worker must stay up for the broadcast.
        """
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        with self._lock:
            if self._sync_mode() == "collective":
                tensors = list(named_tensors)
                sender = CollectiveSender(tensors, len(self._slots), backend="nccl" if _cuda() else "gloo")
                calls = [(slot, slot.generation, slot.actor.update_weights.remote(source, version))
                         for slot, source in zip(self._slots, sender.sources())]
                sender.send()
                self._weights_ref = None
            else:
                self._weights_ref = ray.put(pack_state(named_tensors))
                self._version = int(version)
                calls = [(slot, slot.generation, slot.actor.update_weights.remote(self._weights_ref, version))
                         for slot in self._slots]
        for slot, generation, ref in calls:
            try:
                ray.get(ref)
            except RayActorError:
                if self._weights_ref is None:
                    raise
                log.warning("rollout worker %d died during a weight update; replacing it", slot.index)
                self._replace(slot, generation)
            except RayTaskError as err:
                raise _unwrap(err) from None
        with self._lock:
            self._version = int(version)
            for slot in self._slots:
                slot.stale = False

    def stats(self) -> list[dict[str, float]]:
        """Each live worker's counters (tokens, generate_seconds, tokens_per_second, policy_version)."""
        import ray

        return ray.get([slot.actor.stats.remote() for slot in self._slots])

    def shutdown(self) -> None:
        import ray

        with self._lock:
            for slot in self._slots:
                ray.kill(slot.actor)
            self._slots = []

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    # --- internals -------------------------------------------------------------------------------

    def _sync_mode(self) -> str:
        mode = self.config.weight_sync
        if mode == "auto":
            return "collective" if _cuda() else "object_store"
        return mode

    def _new_actor(self, index: int, generation: int):
        import ray

        options = dict(num_cpus=self.config.num_cpus_per_worker, num_gpus=self.config.num_gpus_per_worker,
                       max_restarts=0, name=None)
        if self.config.resources_per_worker:
            options["resources"] = dict(self.config.resources_per_worker)
        actor_class = ray.remote(RolloutWorker)
        return actor_class.options(**options).remote(self.model, self.config, f"worker{index}.{generation}")

    def _replace(self, slot: _Slot, generation: int) -> None:
        """Start a new actor in `slot` at the pool's current weights, unless the actor of
        `generation` was already replaced (several of its calls fail when it dies)."""
        with self._lock:
            if slot.generation != generation:
                return
            self._replace_locked(slot)

    def _replace_locked(self, slot: _Slot) -> None:
        if self._restarts >= self.config.max_worker_restarts:
            raise RuntimeError(f"rollout workers died {self._restarts + 1} times, more than "
                               f"rollout.max_worker_restarts={self.config.max_worker_restarts}; see the Ray logs")
        self._restarts += 1
        slot.generation += 1
        slot.inflight = 0
        slot.actor = self._new_actor(slot.index, slot.generation)
        if self._weights_ref is not None:
            # Queued before any generate call, so the new actor never samples from stale weights.
            slot.actor.update_weights.remote(self._weights_ref, self._version)
        elif self._version != 0:
            # Collective mode keeps no copy of the weights to replay: the new actor sits out until
            # the next update_weights reaches it. (Version 0 is the checkpoint it loads itself.)
            slot.stale = True

    def _live_slots(self) -> list[_Slot]:
        live = [slot for slot in self._slots if not slot.stale]
        if not live:
            raise RuntimeError("every rollout worker was replaced since the last collective weight update, so none "
                               "holds the current weights; call update_weights again, or use "
                               "rollout.weight_sync=object_store, which replays the weights to new workers")
        return live


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _unwrap(err: Exception) -> Exception:
    """The exception a worker raised (e.g. a UserError for a too-long prompt), not Ray's wrapper."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, Exception) else err
