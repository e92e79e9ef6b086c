"""Where a step's rollouts come from: generated now (sync) or prefetched one step ahead (async).

In one-step-off mode the rollout of step k+1 is requested before step k's update, so generation
overlaps learning; those completions were sampled by the policy of step k and arrive one version
stale (each records its version; the loop enforces the staleness bound).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional, Sequence

from infra.data.sample import GroundingSample
from rollout.engines import SamplingConfig
from rollout.types import RolloutBatch
from trainer.sampler import PromptSampler


class RolloutSource:
    def __init__(self, pool, samples: Sequence[GroundingSample], sampler: PromptSampler, *, prompts_per_step: int,
                 group_size: int, sampling: SamplingConfig, task: str, seed: int, prefetch: bool):
        self.pool, self.samples, self.sampler = pool, list(samples), sampler
        self.prompts_per_step, self.group_size = prompts_per_step, group_size
        self.sampling, self.task, self.seed = sampling, task, seed
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout") if prefetch else None
        self._ahead: Optional[tuple[int, Future]] = None

    def prompts_for(self, step: int) -> list[GroundingSample]:
        """The prompts of `step`: a pure function of the step, so a resumed run sees the same ones."""
        indices = self.sampler.indices_at(step * self.prompts_per_step, self.prompts_per_step)
        return [self.samples[i] for i in indices]

    def _generate(self, step: int) -> RolloutBatch:
        sampling = SamplingConfig(self.sampling.temperature, self.sampling.top_p, self.sampling.max_new_tokens,
                                  seed=self.seed * 1_000_003 + step)
        return self.pool.generate(self.prompts_for(step), self.group_size, sampling, step=step, task=self.task)

    def take(self, step: int, last_step: int) -> RolloutBatch:
        """The batch of `step`; in async mode also starts generating step + 1 (if there is one)."""
        if self._ahead is not None and self._ahead[0] == step:
            batch = self._ahead[1].result()
        else:
            batch = self._generate(step)
        self._ahead = None
        if self._executor is not None and step + 1 < last_step:
            self._ahead = (step + 1, self._executor.submit(self._generate, step + 1))
        return batch

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
