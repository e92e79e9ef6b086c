"""The SFT warm start (`stvg sft`): supervised fine-tuning on ground-truth answers in the task's
output format, on the GRPO stack (Ray Train ranks, DeepSpeed ZeRO-3 learner, checkpoints, MLflow),
so that `stvg train model.path=<sft checkpoint>` starts RL from it.

    for each step:
        rank 0: prompts_per_step samples (the same deterministic sampler as GRPO) -> the prompt
                exactly as the rollout builds it + the ideal answer (rewards.answers) tokens
        all:    items split across ranks -> one cross-entropy step (trainer.learner.sft)
        all:    before an evaluation: gathered weights -> rollout pool; rank 0 evaluates
        rank 0: metrics -> MLflow and console
        all:    checkpoint every N steps (manifest last)

The run config is the GRPO one: total_steps, prompts_per_step (the batch size), learner.*, eval.*,
checkpoint.*, tracking.*, rollout.* (prompt building and evaluation). grpo.* does not apply: the
learner scores at temperature 1 and builds no reference model.
"""

from __future__ import annotations

import dataclasses
import logging

from infra.config import to_dict
from infra.data.sample import GroundingSample
from rewards.answers import format_answer
from rewards.targets import build_target
from rollout.config import RolloutConfig
from rollout.prompt_cache import PromptCache
from rollout.types import Completion, PromptInputs
from trainer.bad_videos import BadVideoLog, build_usable
from trainer.checkpointing import save_checkpoint
from trainer.config import RunConfig
from trainer.experience import prompt_metrics
from trainer.learner.batch import TrainItem
from trainer.learner.distribute import scatter_items
from trainer.loop import Job, StepTimer, due, evaluate_heldout, resume_state, sync_weights
from trainer.progress import RunLog
from trainer.sampler import PromptSampler

log = logging.getLogger("stvg.sft")

PROMPT_CACHE_BYTES = 2 * 1024**3
"""Processed prompts (video tensors) kept on rank 0 between epochs, least recently used evicted."""


class AnswerItems:
    """SFT TrainItems for samples: the prompt as the rollout worker builds it (same frames, same
    processor call, same instruction) and the ideal answer followed by the end-of-turn token."""

    def __init__(self, model_dir: str, rollout: RolloutConfig, task: str):
        from rollout.models import get_family
        from rollout.prompting import PromptSettings
        from rollout.video_cache import VideoCache

        self.task = task
        self.family = get_family(rollout.model_family)
        self.processor = self.family.load_processor(model_dir)
        self.settings = PromptSettings.from_config(rollout, task)
        self.videos = VideoCache(rollout.video_cache_dir, rollout.video_cache_bytes)
        self.end_of_turn = end_of_turn_id(self.family, self.processor)
        self._prompts = PromptCache(PROMPT_CACHE_BYTES)

    def item(self, sample: GroundingSample) -> TrainItem:
        prompt = self.prompt(sample)
        text = format_answer(self.task, build_target(self.task, sample, prompt.frame_size))
        ids = list(self.processor.tokenizer.encode(text, add_special_tokens=False)) + [self.end_of_turn]
        completion = Completion(prompt_index=0, group_id=sample.id, token_ids=ids, text=text, logprobs=[],
                                finish_reason="stop", policy_version=0)
        return TrainItem(prompt=prompt, completion=completion, advantage=0.0)

    def prompt(self, sample: GroundingSample) -> PromptInputs:
        from rollout.prompting import build_prompt_inputs

        # keyed like the rollout worker's cache: a sample given another video (the learning bench's
        # video-swap control) or query must not get the prompt cached for its original one
        return self._prompts.get((sample.id, sample.video, sample.query), lambda: build_prompt_inputs(
            sample, family=self.family, processor=self.processor, settings=self.settings,
            video_path=self.videos.local_path(sample.video)))


def end_of_turn_id(family, processor) -> int:
    """The token that ends the assistant's turn: the tokenizer's eos (`<|im_end|>` for Qwen chat
    models), which must be one of the family's stop tokens so that generation stops on it."""
    stops = family.stop_token_ids(processor)
    eos = processor.tokenizer.eos_token_id
    if eos is None or eos not in stops:
        raise ValueError(f"the tokenizer's eos token {processor.tokenizer.eos_token!r} is not among the model "
                         f"family's stop tokens {stops}; SFT answers must end on a token that stops generation")
    return int(eos)


def sft_objective(cfg: RunConfig):
    """The learner's GRPOConfig for SFT: raw (temperature 1) log-probs, no reference model."""
    return dataclasses.replace(cfg.grpo, temperature=1.0, kl_coef=0.0)


def sft_loop(job: Job) -> None:
    """Runs on every learner rank (through trainer.job.run_training(cfg, loop=sft_loop))."""
    from trainer.learner.learner import Learner
    from trainer.learner.sft import sft_step

    cfg = job.config
    model_dir = job.model.local_dir()
    learner = Learner(model_dir, cfg.learner, sft_objective(cfg))
    rank, world = learner.rank, learner.world_size
    store, staging = cfg.checkpoint.open(), cfg.run_dir / "staging"
    state = resume_state(learner, store, staging, job)
    lead = rank == 0
    if lead:
        tracker = RunLog(job.progress, cfg.tracking)
        if state.step > 0:
            tracker.message(f"resuming at step {state.step} from the latest complete checkpoint")
        tracker.set_tags({"stage": "sft"})
        answers = AnswerItems(model_dir, cfg.rollout, cfg.task)
        sampler = PromptSampler(len(job.train), cfg.seed)
        bad_videos = BadVideoLog(tracker.message)

    for step in range(state.step, cfg.total_steps):
        timer, metrics = StepTimer(), {}
        with timer("step"):
            items = None
            if lead:
                with timer("data"):
                    indices = sampler.indices_at(step * cfg.prompts_per_step, cfg.prompts_per_step)
                    items, skipped = build_usable([job.train[i] for i in indices], answers.item,
                                                  skip=cfg.data.on_bad_video == "skip")
                    metrics.update(bad_videos.step_metrics(skipped))
                metrics.update(prompt_metrics([item.prompt for item in items]))
            with timer("learn"):
                metrics.update(sft_step(learner, scatter_items(items, rank, world)))
        state = dataclasses.replace(state, step=step + 1, policy_version=step + 1,
                                    prompts_consumed=(step + 1) * cfg.prompts_per_step)
        evaluate = bool(job.heldout) and due(state.step, cfg.eval.every_n_steps, cfg.total_steps, cfg.eval.at_end)
        if evaluate:  # the rollout pool answers the held-out prompts: it needs these weights first
            with timer("sync"):
                sync_weights(learner, job.pool if lead else None, state.policy_version,
                             cfg.rollout.weight_bucket_bytes)
        if lead:
            if evaluate:
                with timer("eval"):
                    metrics.update(evaluate_with_terms(job, cfg, bad_videos))
            metrics.update(timer.seconds)
            if due(state.step, cfg.log_every_n_steps, cfg.total_steps, True) or evaluate:
                tracker.log_metrics(metrics, state.step)
                tracker.message(summary_line(state.step, cfg.total_steps, metrics))
        if due(state.step, cfg.checkpoint.every_n_steps, cfg.total_steps, True):
            if lead:
                tracker.flush()  # this step's metrics in MLflow before its checkpoint exists
            uri = save_checkpoint(learner, store, state, staging, config=to_dict(cfg),
                                  export_hf=cfg.checkpoint.export_hf)
            if lead:
                tracker.set_tags({"checkpoint_uri": uri})
                tracker.message(f"checkpoint step {state.step}: {uri}")


def evaluate_with_terms(job: Job, cfg: RunConfig, bad_videos: BadVideoLog) -> dict[str, float]:
    """trainer.evaluation's held-out metrics plus the mean of every reward term (`eval/term/<name>`)."""
    result = evaluate_heldout(job, cfg, bad_videos)
    return {**result.metrics, **term_means(result.completions, cfg.task)}


def term_means(completions: list[dict], task: str) -> dict[str, float]:
    """`eval/term/<name>`: the mean of each reward term over evaluated completions."""
    from rewards import TERMS

    count = max(len(completions), 1)
    return {f"eval/term/{name}": sum(c[name] for c in completions) / count for name in TERMS[task]}


def summary_line(step: int, total: int, m: dict[str, float]) -> str:
    """One console line per logged SFT step."""
    parts = [f"sft step {step}/{total}", f"loss {m.get('loss', float('nan')):.4f}",
             f"tokens {m.get('tokens', 0):.0f}",
             f"{m.get('time/step_s', 0):.2f}s (data {m.get('time/data_s', 0):.2f} learn {m.get('time/learn_s', 0):.2f})"]
    if "eval/reward_mean" in m:
        fmt = m.get("eval/term/format", m.get("eval/parsed_frac", 0.0))
        parts.append(f"eval format {100 * fmt:.0f}% reward {m.get('eval/reward_mean', 0):.3f} "
                     f"m_tIoU {m.get('eval/m_tIoU', 0):.1f} m_vIoU {m.get('eval/m_vIoU', 0):.1f}")
    return " | ".join(parts)


def run_sft(cfg: RunConfig):
    """`stvg sft`: run the SFT loop through the shared driver; returns its TrainingSummary with
    `last_metrics` read back from the MLflow run (the SFT loop reports to the console as messages)."""
    from trainer.job import run_training

    summary = run_training(cfg, loop=sft_loop)
    return dataclasses.replace(summary, last_metrics={**latest_metrics(summary.tracking_uri, summary.run_id),
                                                      **summary.last_metrics})


def latest_metrics(tracking_uri: str, run_id: str) -> dict[str, float]:
    """The last value of every metric of an MLflow run ({} when the store cannot be read)."""
    try:
        from mlflow.tracking import MlflowClient

        return dict(MlflowClient(tracking_uri=tracking_uri).get_run(run_id).data.metrics)
    except Exception as err:  # noqa: BLE001 - reporting is best effort, like all tracking
        log.warning("could not read the metrics of MLflow run %s: %s", run_id, err)
        return {}
