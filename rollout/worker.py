"""A rollout worker: one engine plus the prompt building around it, run as a Ray actor by the pool.

The worker fetches videos (through its VideoCache), samples frames, builds PromptInputs (kept in a
PromptCache, so a sample seen again is neither decoded nor processed again), generates n
completions per prompt and stamps each with the engine's policy version at generation time. It is
a plain class so it can also run in-process; `RolloutPool` wraps it with `ray.remote`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from infra.data.sample import GroundingSample
from infra.errors import VideoError
from rollout.config import RolloutConfig
from rollout.engines import SamplingConfig, make_engine
from rollout.models import get_family
from rollout.models.source import ModelSource, as_model_source
from rollout.prompt_cache import PromptCache
from rollout.prompting import PromptOptions, PromptSettings, build_prompt_inputs
from rollout.types import Completion, PromptInputs
from rollout.video_cache import VideoCache
from rollout.weight_sync import CollectiveBucket, WeightGroup, receive_bucket, unpack_bucket


@dataclass
class PromptRequest:
    """One prompt to roll out: the sample, its GRPO group id and its index in the batch."""

    sample: GroundingSample
    group_id: str
    prompt_index: int
    task: Optional[str] = None
    """Overrides RolloutConfig.task for this prompt (None: the config's task)."""
    options: Optional[PromptOptions] = None
    """Changes to the default prompt: another query or instruction, a curriculum mask, a temporal
    view (rollout.prompting.PromptOptions). None: the sample's normal prompt."""


@dataclass
class PromptResult:
    prompt_index: int
    prompt: Optional[PromptInputs]
    """None when the prompt could not be built because of its video (see `error`)."""
    completions: list[Completion]
    worker: str = ""
    """Which worker generated it (actor id or process id), for logs."""
    timing: dict[str, float] = field(default_factory=dict)
    error: Optional[VideoError] = None
    """The sample's video could not be used; the pool raises it or skips the prompt."""


class RolloutWorker:
    """generate / update_weights / stats: everything the pool asks of a rollout actor."""

    def __init__(self, model: ModelSource | str, config: RolloutConfig, name: str = ""):
        _quiet_transformers()
        self.config = config
        self.name = name or f"pid{os.getpid()}"
        # Fetched (or built) on this actor's own node, once per node (rollout.models.source).
        model_dir = as_model_source(model).local_dir()
        self.family = get_family(config.model_family)
        self.processor = self.family.load_processor(model_dir)
        self.engine = make_engine(config.engine, model_dir, family=self.family, processor=self.processor,
                                  dtype=config.dtype, gpu_memory_utilization=config.gpu_memory_utilization,
                                  max_model_len=config.max_prompt_tokens + config.max_new_tokens)
        self.videos = VideoCache(config.video_cache_dir, config.video_cache_bytes)
        self.prompts = PromptCache(0 if self.engine.needs_frames else config.prompt_cache_bytes)
        self._tokens = 0
        self._generate_seconds = 0.0
        self._weight_group: Optional[WeightGroup] = None  # this worker's end of the pool's collective group
        self._groups_joined = 0

    def generate(self, requests: list[PromptRequest], n: int, sampling: SamplingConfig) -> list[PromptResult]:
        """n completions for each request. A request whose video cannot be used (VideoError) comes
        back with the error and no prompt, so the other prompts of the request are not lost."""
        started = time.perf_counter()
        prompts, failed = [], []
        for r in requests:
            try:
                prompts.append(self._prompt(r))
            except VideoError as err:
                failed.append(PromptResult(r.prompt_index, None, [], self.name, error=err))
        unusable = {f.prompt_index for f in failed}
        requests = [r for r in requests if r.prompt_index not in unusable]
        built = time.perf_counter()
        version = self.engine.policy_version
        sequences = self.engine.generate(prompts, n, sampling) if prompts else []
        done = time.perf_counter()
        results = failed
        for request, prompt, seqs in zip(requests, prompts, sequences):
            prompt.extra.pop("frames", None)  # engine-only payload; never shipped to the learner
            completions = [
                Completion(prompt_index=request.prompt_index, group_id=request.group_id, token_ids=s.token_ids,
                           text=s.text, logprobs=s.logprobs, finish_reason=s.finish_reason, policy_version=version)
                for s in seqs
            ]
            results.append(PromptResult(request.prompt_index, prompt, completions, self.name,
                                        {"prompt_seconds": built - started, "generate_seconds": done - built}))
        self._tokens += sum(len(c.token_ids) for r in results for c in r.completions)
        self._generate_seconds += done - built
        return results

    def _prompt(self, request: PromptRequest) -> PromptInputs:
        """The request's PromptInputs; a default prompt (no options) is built once and cached."""
        def build() -> PromptInputs:
            return build_prompt_inputs(request.sample, family=self.family, processor=self.processor,
                                       settings=PromptSettings.from_config(self.config, request.task),
                                       video_path=self.videos.local_path(request.sample.video),
                                       keep_frames=self.engine.needs_frames, options=request.options)

        if request.options is not None:  # curriculum masks, zero-shot views: built every time
            return build()
        sample = request.sample
        return self.prompts.get((sample.id, sample.video, sample.query, request.task or self.config.task), build)

    def update_weights(self, weights: Any, version: Optional[int]) -> int:
        """Load weights; then take `version`, or keep the current one when `version` is None (more
        buckets of the same update follow). Returns the version now held. `weights`:
        - a list of object-store buckets (ObjectRefs of rollout.weight_sync.pack_bucket dicts),
          fetched one at a time; an empty list with a version commits an update;
        - a CollectiveBucket: receive that bucket over the pool's process group (joined on first use,
          reused until the pool sends another group);
        - any iterable of (name, tensor) pairs (in-process use).
        """
        if isinstance(weights, CollectiveBucket):
            group = self._group_for(weights)
            device = "cuda" if weights.group.backend == "nccl" else getattr(self.engine, "device", "cpu")
            weights = receive_bucket(group, weights.metadata, device)
        elif isinstance(weights, list) and weights and not isinstance(weights[0], tuple):
            import ray

            for ref in weights:  # one bucket in memory at a time
                self.engine.load_weights(unpack_bucket(ray.get(ref)), self.engine.policy_version)
            weights = []
        self.engine.load_weights(weights, self.engine.policy_version if version is None else version)
        return self.engine.policy_version

    def _group_for(self, bucket: CollectiveBucket) -> WeightGroup:
        """The pool's current group: reused across updates, replaced when the pool sends a new one."""
        if self._weight_group is None or self._weight_group.spec.group_id != bucket.group.group_id:
            if self._weight_group is not None:
                self._weight_group.close()
                self._weight_group = None
            self._weight_group = WeightGroup.join(bucket.group)
            self._groups_joined += 1
        return self._weight_group

    def stats(self) -> dict[str, float]:
        """Completion tokens generated so far, seconds spent generating, their ratio, policy version,
        weight-sync groups joined (1 while the pool reuses its group), process id. Also the pool's
        readiness probe: it answers once the engine is loaded and earlier calls are done."""
        seconds = self._generate_seconds
        return {"tokens": float(self._tokens), "generate_seconds": seconds,
                "tokens_per_second": self._tokens / seconds if seconds > 0 else 0.0,
                "policy_version": float(self.engine.policy_version), "video_downloads": float(self.videos.downloads),
                "weight_groups_joined": float(self._groups_joined), "prompt_cache_hits": float(self.prompts.hits),
                "pid": float(os.getpid())}


def _quiet_transformers() -> None:
    """No weight-loading progress bars from every worker in the driver's log."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
