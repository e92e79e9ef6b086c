"""Where a step's rollouts come from: generated now (sync) or prefetched one step ahead (async).

In one-step-off mode the rollout of step k+1 is requested before step k's update, so generation
overlaps learning; those completions were sampled by the policy of step k and arrive one version
stale (each records its version; the loop enforces the staleness bound).

With VideoTG-R1's curriculum (rollout.curriculum.CurriculumPlan), each prompt of step k carries the
masking its sample gets at step k; the rollout worker applies it while building the prompt, so the
PromptInputs the learner trains on hold the masked pixels the rollout saw.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional, Sequence

from infra.data.sample import GroundingSample
from rollout.curriculum import CurriculumPlan
from rollout.engines import SamplingConfig
from rollout.prompting import PromptOptions
from rollout.types import RolloutBatch
from trainer.sampler import PromptSampler


class RolloutSource:
    def __init__(self, pool, samples: Sequence[GroundingSample], sampler: PromptSampler, *, prompts_per_step: int,
                 group_size: int, sampling: SamplingConfig, task: str, seed: int, prefetch: bool,
                 curriculum: Optional[CurriculumPlan] = None, skip_bad_videos: bool = False):
        """`curriculum`: VideoTG-R1's masking plan per step (None: no masking). `skip_bad_videos`:
        leave out prompts whose video cannot be used (listed in the batch's `skipped`) instead of
        raising their VideoError."""
        self.curriculum = curriculum
        self.skip_bad_videos = skip_bad_videos
        self.pool, self.samples, self.sampler = pool, list(samples), sampler
        self.prompts_per_step, self.group_size = prompts_per_step, group_size
        self.sampling, self.task, self.seed = sampling, task, seed
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rollout") if prefetch else None
        self._ahead: Optional[tuple[int, Future]] = None

    def prompts_for(self, step: int) -> list[GroundingSample]:
        """The prompts of `step`: a pure function of the step, so a resumed run sees the same ones."""
        indices = self.sampler.indices_at(step * self.prompts_per_step, self.prompts_per_step)
        return [self.samples[i] for i in indices]

    def options_for(self, step: int, samples: Sequence[GroundingSample]) -> Optional[list[Optional[PromptOptions]]]:
        """Each prompt's curriculum mask at `step` (None when no prompt of the step is masked)."""
        if self.curriculum is None:
            return None
        masks = [self.curriculum.mask_for(s.id, step) for s in samples]
        if all(m is None for m in masks):
            return None
        return [PromptOptions(mask=m) if m is not None else None for m in masks]

    def _generate(self, step: int) -> RolloutBatch:
        sampling = SamplingConfig(self.sampling.temperature, self.sampling.top_p, self.sampling.max_new_tokens,
                                  seed=self.seed * 1_000_003 + step)
        samples = self.prompts_for(step)
        return self.pool.generate(samples, self.group_size, sampling, step=step, task=self.task,
                                  options=self.options_for(step, samples), skip_bad_videos=self.skip_bad_videos)

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
