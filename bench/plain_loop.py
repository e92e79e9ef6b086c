"""Baseline: the platform's SFT and GRPO math in one plain PyTorch process.

No Ray, no DeepSpeed, no weight sync, no MLflow, no progress board: one process holds one model,
generates with it (Hugging Face `generate`, the CPU rollout engine's exact call), scores the
completions in-process and takes the optimizer step on the same object. Everything that decides
WHAT is computed is the platform's own code, so the two do the same math on the same inputs:

- prompts: `trainer.sft.AnswerItems` (rollout.prompting.build_prompt_inputs with the run's
  rollout.* settings; processed prompts cached, as SFT on the platform caches them);
- prompt order: `trainer.sampler.PromptSampler` (SFT) and `trainer.rollouts.RolloutSource` (GRPO,
  the same sampling seeds per step);
- generation: `rollout.engines.hf.HFEngine` on the training model itself (no copy, no sync), the
  prompts in chunks of rollout.prompts_per_request as a rollout worker gets them;
- rewards, advantages, filters: `trainer.experience.make_experience` with the in-process reward client;
- the update: `trainer.learner.Learner` with learner.zero_stage=0 (plain torch AdamW, the same
  loss, normalisation and gradient clipping as the ZeRO-3 learner) and `trainer.learner.sft.sft_step`;
- evaluation: `trainer.evaluation.run_evaluation` (greedy, the same metrics).

    python bench/plain_loop.py [--task stvg-o1|vtg] [--seed 0] [--sft-steps N] [--grpo-steps N]

prints held-out figures (dev split) after SFT and after GRPO with the wall time of each phase.
bench/learning_run.py runs it side by side with the platform (--with-plain).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class PlainLoop:
    """One model in one process: `sft_step`, `grpo_step`, and the pool-like `generate` that
    trainer.evaluation and trainer.rollouts call."""

    def __init__(self, cfg, model_dir: str, objective):
        from rollout.engines.hf import HFEngine
        from rollout.models import get_family
        from trainer.learner.learner import Learner
        from trainer.sft import AnswerItems

        self.cfg = cfg
        learner_cfg = dataclasses.replace(cfg.learner, zero_stage=0, num_workers=1)
        self.learner = Learner(model_dir, learner_cfg, objective)
        self.answers = AnswerItems(model_dir, cfg.rollout, cfg.task)
        family = get_family(cfg.rollout.model_family)
        self.engine = HFEngine(model_dir, family=family, processor=self.answers.processor, dtype="float32",
                               device="cpu")
        self.engine.model = self.policy  # generate with the weights being trained: nothing to sync
        self.seconds = {"prompts": 0.0, "generation": 0.0, "reward": 0.0, "learn": 0.0}
        self.grpo_steps = 0

    @property
    def policy(self):
        return self.learner.policy.module.policy

    # --- the pool interface (trainer.evaluation.run_evaluation, trainer.rollouts.RolloutSource) -------
    def generate(self, samples: Sequence[Any], n: int, sampling=None, *, step: Optional[int] = None,
                 task: Optional[str] = None, options=None, skip_bad_videos: bool = False):
        """The pool's generate on the training model; a bad video raises whatever skip_bad_videos says
        (the bench's synthetic videos are never bad)."""
        from rollout.types import Completion, RolloutBatch

        if options is not None and any(o is not None for o in options):
            raise ValueError("the plain loop builds default prompts only (no curriculum, no zero-shot views)")
        mark = time.perf_counter()
        prompts = [self.answers.prompt(s) for s in samples]
        self.policy.eval()
        started = time.perf_counter()
        size = self.cfg.rollout.prompts_per_request  # the prompts a rollout worker generates together
        try:
            sequences = [group for i in range(0, len(prompts), size)
                         for group in self.engine.generate(prompts[i:i + size], n, sampling)]
        finally:
            self.policy.train()
        seconds = time.perf_counter() - started
        self.seconds["prompts"] += started - mark
        self.seconds["generation"] += seconds
        completions = [Completion(prompt_index=i, group_id=f"step{step}/prompt{i}", token_ids=s.token_ids,
                                  text=s.text, logprobs=s.logprobs, finish_reason=s.finish_reason,
                                  policy_version=self.engine.policy_version)
                       for i, group in enumerate(sequences) for s in group]
        tokens = sum(len(c.token_ids) for c in completions)
        return RolloutBatch(prompts=prompts, completions=completions, tokens_per_second=tokens / max(seconds, 1e-9))

    # --- steps ----------------------------------------------------------------------------------------
    def sft_step(self, samples: Sequence[Any]) -> dict[str, float]:
        from trainer.learner.sft import sft_step

        return sft_step(self.learner, [self.answers.item(s) for s in samples])

    def grpo_step(self, rollouts, step: int, train: Sequence[Any], rewards) -> dict[str, float]:
        from trainer.experience import make_experience

        batch = rollouts.take(step, self.cfg.total_steps)
        mark = time.perf_counter()
        scored = make_experience(batch, train, rewards, self.cfg.task, self.cfg.grpo, self.engine.policy_version,
                                 self.cfg.max_staleness, self.answers.processor.tokenizer)
        learn = time.perf_counter()
        metrics = {**scored.metrics, **self.learner.step(scored.items)}
        self.seconds["reward"] += learn - mark
        self.seconds["learn"] += time.perf_counter() - learn
        self.engine.policy_version += 1
        self.grpo_steps += 1
        return metrics

    def phase_seconds(self) -> dict[str, float]:
        """Mean seconds per GRPO step of each phase (prompts: cached after a sample's first use)."""
        return {name: seconds / max(self.grpo_steps, 1) for name, seconds in self.seconds.items()}

    def evaluate(self, samples: Sequence[Any]) -> dict[str, float]:
        from trainer.evaluation import run_evaluation
        from trainer.sft import term_means

        result = run_evaluation(self, samples, task=self.cfg.task, source=self.cfg.data.source,
                                max_new_tokens=self.cfg.rollout.max_new_tokens, temperature=0.0, seed=self.cfg.seed)
        return {**result.metrics, **term_means(result.completions, self.cfg.task)}

    def save(self, directory: Path) -> str:
        """The consolidated Hugging Face model (what the platform's checkpoint hf/ export holds)."""
        self.learner.save_hf(directory)
        return str(directory)


Checkpoint = Callable[[str, int, "PlainLoop"], None]
"""Called as (phase, step, loop) at the steps of `eval_at` (e.g. to evaluate on the dev split)."""


def run_sft(cfg, model_dir: str, train: Sequence[Any], *, on_step: Optional[Checkpoint] = None,
            eval_at: Sequence[int] = ()) -> PlainLoop:
    """cfg.total_steps SFT steps of cfg.prompts_per_step samples (the platform's sampler and order)."""
    from trainer.sampler import PromptSampler
    from trainer.sft import sft_objective

    loop = PlainLoop(cfg, model_dir, sft_objective(cfg))
    sampler = PromptSampler(len(train), cfg.seed)
    for step in range(cfg.total_steps):
        indices = sampler.indices_at(step * cfg.prompts_per_step, cfg.prompts_per_step)
        loop.sft_step([train[i] for i in indices])
        if on_step is not None and step + 1 in eval_at:
            on_step("sft", step + 1, loop)
    return loop


def run_grpo(cfg, model_dir: str, train: Sequence[Any], *, on_step: Optional[Checkpoint] = None,
             eval_at: Sequence[int] = ()) -> PlainLoop:
    """cfg.total_steps GRPO steps from the model in model_dir (a fresh optimizer, as a new platform run)."""
    from rewards.client import build_reward_client
    from rollout.engines import SamplingConfig
    from trainer.rollouts import RolloutSource
    from trainer.sampler import PromptSampler

    loop = PlainLoop(cfg, model_dir, cfg.grpo)
    rewards = build_reward_client(dataclasses.replace(cfg.reward, mode="local"))
    sampling = SamplingConfig(cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.max_new_tokens)
    rollouts = RolloutSource(loop, train, PromptSampler(len(train), cfg.seed), prompts_per_step=cfg.prompts_per_step,
                             group_size=cfg.grpo.group_size, task=cfg.task, seed=cfg.seed, prefetch=False,
                             sampling=sampling)
    try:
        for step in range(cfg.total_steps):
            loop.grpo_step(rollouts, step, train, rewards)
            if on_step is not None and step + 1 in eval_at:
                on_step("grpo", step + 1, loop)
    finally:
        rollouts.close()
        rewards.close()
    return loop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="stvg-o1", choices=("stvg-o1", "vtg"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int, default=None, help="default: the learning-<task>-sft preset's")
    parser.add_argument("--grpo-steps", type=int, default=None, help="default: the learning-<task>-grpo preset's")
    parser.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps of each phase")
    parser.add_argument("--eval-samples", type=int, default=256)
    parser.add_argument("--workdir", default="runs/plain-loop")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the learning run's default)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for both phases")
    args = parser.parse_args()

    import torch

    from bench.learning_run import stage_configs
    from trainer.preparation import prepare_data, resolve_model

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir).resolve()
    sft_cfg, grpo_cfg = stage_configs(args.task, args.seed, workdir, sft_steps=args.sft_steps,
                                      grpo_steps=args.grpo_steps, overrides=args.overrides)
    train, dev = prepare_data(sft_cfg)
    dev = dev[: args.eval_samples]
    started, evaluating = time.perf_counter(), [0.0]

    def record(phase: str, step: int, loop: PlainLoop) -> None:
        """Dev figures at this step, with the training minutes so far (evaluations not counted)."""
        mark = time.perf_counter()
        row = {"phase": phase, "step": step, "train_minutes": (mark - started - evaluating[0]) / 60,
               **loop.evaluate(dev)}
        evaluating[0] += time.perf_counter() - mark
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)

    every = args.eval_every
    sft_marks = [s for s in range(every, sft_cfg.total_steps + 1, every)] if every else []
    sft = run_sft(sft_cfg, resolve_model(sft_cfg).local_dir(), train, on_step=record,
                  eval_at=sorted({*sft_marks, sft_cfg.total_steps}))
    warm = sft.save(workdir / "sft-hf")
    del sft
    grpo_marks = [s for s in range(every, grpo_cfg.total_steps + 1, every)] if every else []
    run_grpo(grpo_cfg, warm, train, on_step=record, eval_at=sorted({*grpo_marks, grpo_cfg.total_steps}))
    total = time.perf_counter() - started
    print(f"plain loop: {(total - evaluating[0]) / 60:.1f} min of training, {evaluating[0] / 60:.1f} min of evaluation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
