"""The GRPO training loop. It runs on every learner rank (a Ray Train worker); rank 0 also drives
the rollout pool, the reward client, MLflow and the progress board.

    for each step:
        rank 0: prompts -> rollout pool -> G completions each (with their policy version)
                completions -> reward client -> rewards -> advantages, filters -> training items
        all:    items split across ranks -> GRPO update (DeepSpeed ZeRO-3)
        all:    gathered weights -> rollout pool (versioned)
        rank 0: metrics -> MLflow and console; pictures every N steps; eval every N steps
        all:    checkpoint every N steps (manifest last)

Every collective call (step, weight export, checkpoint) is made by all ranks in the same order.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Optional

import torch

from infra.config import to_dict
from rewards.client import build_reward_client
from rollout.engines import SamplingConfig
from rollout.pool import push_weights
from trainer.bad_videos import BadVideoLog
from trainer.checkpointing import TrainState, open_checkpoint_uri, restore_checkpoint, save_checkpoint
from trainer.config import RunConfig
from trainer.evaluation import EvalResult, run_evaluation
from trainer.experience import make_experience, policy_tokenizer
from trainer.learner.distribute import scatter_items
from trainer.learner.learner import Learner
from trainer.progress import RunLog
from trainer.rollouts import RolloutSource
from trainer.sampler import PromptSampler

log = logging.getLogger("stvg.train")


@dataclasses.dataclass
class Job:
    """What the driver hands every learner rank (pickled by Ray)."""

    config: RunConfig
    """Resolved run config: absolute paths, tracking URI and checkpoint URI filled in."""
    model: Any
    """Where the model comes from (rollout.models.source.ModelSource); each rank fetches or builds
    it on its own node with `model.local_dir()`."""
    train: list
    heldout: list
    pool: Any
    progress: Any
    """The driver's ProgressBoard: rank 0 reports metrics, pictures and lines there (trainer.progress)."""
    run_id: str
    """The MLflow run the driver started (or resumed), stored in checkpoints for resuming."""
    init_checkpoint: Optional[str] = None
    """resume=<uri>: a checkpoint of another run to start from when this run has none yet."""
    curriculum: Any = None
    """VideoTG-R1's masking plan (rollout.curriculum.CurriculumPlan), when the curriculum is on."""


class StepTimer:
    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        yield
        self.seconds[f"time/{phase}_s"] = self.seconds.get(f"time/{phase}_s", 0.0) + time.perf_counter() - start


def grpo_loop(job: Job) -> None:
    cfg = job.config
    learner = Learner(job.model.local_dir(), cfg.learner, cfg.grpo)
    rank, world = learner.rank, learner.world_size
    store, staging = cfg.checkpoint.open(), cfg.run_dir / "staging"
    state = resume_state(learner, store, staging, job)
    lead = rank == 0
    if lead:
        rewards = build_reward_client(cfg.reward)
        tokenizer = policy_tokenizer(job.model.local_dir()) if cfg.grpo.credit == "box" else None
        tracker = RunLog(job.progress, cfg.tracking)
        bad_videos = BadVideoLog(tracker.message)
        if state.step > 0:
            tracker.message(f"resuming at step {state.step} from the latest complete checkpoint")
        rollouts = RolloutSource(
            job.pool, job.train, PromptSampler(len(job.train), cfg.seed), prompts_per_step=cfg.prompts_per_step,
            group_size=cfg.grpo.group_size, task=cfg.task, seed=cfg.seed, prefetch=cfg.mode == "async",
            curriculum=job.curriculum, sampling=SamplingConfig(cfg.rollout.temperature, cfg.rollout.top_p, cfg.rollout.max_new_tokens),
            skip_bad_videos=cfg.data.on_bad_video == "skip")
    if state.step > 0:  # the rollout workers must generate with the restored weights
        sync_weights(learner, job.pool if lead else None, state.policy_version, cfg.rollout.weight_bucket_bytes)
    elif lead and cfg.eval.at_start:  # held-out figures of the starting model, at step 0
        result = evaluate_heldout(job, cfg, bad_videos)
        if result is not None:
            tracker.log_metrics(result.metrics, 0)

    for step in range(state.step, cfg.total_steps):
        timer, metrics = StepTimer(), {}
        with timer("step"):
            items = None
            if lead:
                with timer("rollout"):
                    batch = rollouts.take(step, cfg.total_steps)
                with timer("reward"):
                    scored = make_experience(batch, job.train, rewards, cfg.task, cfg.grpo, state.policy_version,
                                             cfg.max_staleness, tokenizer)
                items, metrics = scored.items, {**scored.metrics, **bad_videos.step_metrics(batch.skipped)}
                if job.curriculum is not None:
                    metrics.update(_curriculum_metrics(job.curriculum, batch, step))
            with timer("learn"):
                metrics.update(learner.step(scatter_items(items, rank, world)))
            state = dataclasses.replace(state, step=step + 1, policy_version=state.policy_version + 1,
                                        prompts_consumed=(step + 1) * cfg.prompts_per_step)
            with timer("sync"):
                sync_weights(learner, job.pool if lead else None, state.policy_version, cfg.rollout.weight_bucket_bytes)
        if lead:
            metrics.update(timer.seconds)
            if due(state.step, cfg.eval.every_n_steps, cfg.total_steps, cfg.eval.at_end):
                result = evaluate_heldout(job, cfg, bad_videos)
                metrics.update(result.metrics if result is not None else {})
            tracker.log_metrics(metrics, state.step, console=due(state.step, cfg.log_every_n_steps, cfg.total_steps, True))
            if tracker.wants_images(state.step, cfg.total_steps):
                _log_pictures(tracker, batch, scored.rewards, job.train, cfg, state.step)
        if due(state.step, cfg.checkpoint.every_n_steps, cfg.total_steps, True):
            if lead:
                tracker.flush()  # this step's metrics in MLflow before its checkpoint exists
            uri = save_checkpoint(learner, store, state, staging, config=to_dict(cfg),
                                  export_hf=cfg.checkpoint.export_hf)
            if lead:
                tracker.set_tags({"checkpoint_uri": uri})
                tracker.message(f"checkpoint step {state.step}: {uri}")
    if lead:
        rollouts.close()
        rewards.close()


def _curriculum_metrics(plan, batch, step: int) -> dict[str, float]:
    """How much of this step's video the curriculum hid (VideoTG-R1)."""
    masks = [plan.mask_for(p.sample_id, step) for p in batch.prompts]
    shares = [m.share for m in masks if m is not None]
    return {"data/curriculum_masked_prompts": float(len(shares)),
            "data/curriculum_share": max(shares, default=0.0)}


def due(step: int, every: int, total: int, at_end: bool) -> bool:
    return (every > 0 and step % every == 0) or (at_end and step == total)


def resume_state(learner, store, staging: Path, job: Job) -> TrainState:
    """This run's latest complete checkpoint (also after Ray Train restarted the worker group), else
    the checkpoint named by resume=<uri>, else a fresh state."""
    ref = store.latest()
    if ref is None and job.init_checkpoint:
        store, ref = open_checkpoint_uri(job.init_checkpoint)
    if ref is None:
        return TrainState(mlflow_run_id=job.run_id)
    return dataclasses.replace(restore_checkpoint(learner, store, ref, staging), mlflow_run_id=job.run_id)


def sync_weights(learner, pool, version: int, bucket_bytes: int) -> None:
    """Every rank gathers the weights one bucket at a time; rank 0 streams each bucket into the pool.
    When a rollout worker was lost part-way (the pool replaced it), rank 0 says so and every rank
    gathers again for a second push."""
    push_weights(partial(pool.begin_update, version) if pool is not None else None,
                 lambda: learner.export_weights(bucket_bytes), again=learner.any_rank)


def evaluate_heldout(job: Job, cfg: RunConfig, bad_videos: BadVideoLog) -> Optional[EvalResult]:
    """The periodic evaluation on (at most eval.max_samples of) the held-out split; None without one."""
    samples = job.heldout[: cfg.eval.max_samples or None]
    if not samples:
        return None
    result = run_evaluation(job.pool, samples, task=cfg.task, source=cfg.data.source,
                            max_new_tokens=cfg.rollout.max_new_tokens, temperature=cfg.eval.temperature,
                            seed=cfg.seed, skip_bad_videos=cfg.data.on_bad_video == "skip")
    bad_videos.note(result.skipped)
    return result


def _log_pictures(tracker, batch, rewards, samples, cfg: RunConfig, step: int) -> None:
    """Best effort, like all logging: a picture that cannot be drawn never stops training."""
    from trainer.pictures import draw_rollouts

    try:
        images = draw_rollouts(batch, rewards, samples, cfg.rollout, cfg.task, cfg.tracking.num_images)
    except Exception as err:  # noqa: BLE001 - decoding/drawing errors of any kind
        log.warning("could not draw rollouts at step %d: %s", step, err)
        return
    for i, image in enumerate(images):
        tracker.log_image(image, step, suffix=str(i))
