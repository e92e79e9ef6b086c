"""The driver of a training run (`stvg train`; the RayJob entrypoint on Kubernetes).

It resolves the model's source and reads the data, checks that everything other nodes will read or
write is reachable from them (trainer.reachability), starts (or joins) Ray, opens the MLflow run,
creates the rollout pool, and runs the GRPO loop on the learner ranks with Ray Train. It is the
only process that talks to MLflow: learner rank 0 posts metrics, pictures and lines to a board on
this node (trainer.progress), which the driver logs and prints.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from infra.config import to_dict
from infra.errors import UserError, VideoError
from trainer.bad_videos import hint as bad_video_hint
from trainer.config import RunConfig
from trainer.preparation import prepare_data, resolve_model, resolve_paths
from trainer.reachability import check_reachable

log = logging.getLogger("stvg.train")


@dataclass
class TrainingSummary:
    run_id: str
    tracking_uri: str
    checkpoint_uri: Optional[str]
    steps: int
    last_metrics: dict[str, float]


def run_training(cfg: RunConfig, loop: Optional[Callable] = None) -> TrainingSummary:
    """Run `loop` (default: the GRPO loop, trainer.loop.grpo_loop) on the learner ranks.

    The loop receives a trainer.loop.Job; the SFT loop (`stvg sft`) runs through here too, so both
    share data and model preparation, resume rules, MLflow, checkpoints and the console."""
    cfg = resolve_paths(cfg)
    new_folder = not cfg.run_dir.exists()
    try:
        return _prepare_and_run(cfg, loop)
    except BaseException:
        if new_folder:  # a run that failed before writing anything leaves no empty runs/<name>/ behind
            remove_empty_folders(cfg.run_dir)
        raise


RAY_STORAGE_MARKER = ".validate_storage_marker"
"""The empty file Ray Train writes to check that it can write to its storage path."""


def remove_empty_folders(root: Path) -> None:
    """Remove `root` and the folders under it that hold no file (Ray Train's storage marker aside)."""
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True) + [root]:
        marker = folder / RAY_STORAGE_MARKER
        if marker.is_file() and len(list(folder.iterdir())) == 1:
            marker.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


def _prepare_and_run(cfg: RunConfig, loop: Optional[Callable]) -> TrainingSummary:
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    store = cfg.checkpoint.open()
    latest = store.latest()
    if cfg.resume == "never" and latest is not None:
        raise UserError(f"{store.uri} already holds checkpoints (latest step {latest.step}); pass resume=auto to "
                        f"continue that run, or choose another name=... / checkpoint.uri=...")
    if cfg.resume not in ("never", "auto") and latest is None:
        from trainer.checkpointing import open_checkpoint_uri

        open_checkpoint_uri(cfg.resume)  # fail now, with a clear message, if it is not usable
    start_step = latest.step if latest is not None else 0
    if start_step >= cfg.total_steps:
        raise UserError(f"the latest checkpoint is at step {start_step} and total_steps={cfg.total_steps}: "
                        "nothing left to do; raise total_steps to train further")

    if loop is None and cfg.warm_start.steps:  # GRPO from scratch: a short SFT stage first
        from trainer.warm_start import warm_start

        cfg = warm_start(cfg)
    model = resolve_model(cfg)
    train, heldout = prepare_data(cfg)
    if not train:
        raise UserError("the training split is empty")
    check_reachable(cfg, model, [*train, *heldout])
    started_ray = start_ray(cfg)
    try:
        return _run(cfg, store, latest, model, train, heldout, start_step, loop)
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _run(cfg: RunConfig, store, latest, model, train, heldout, start_step: int,
         loop: Optional[Callable]) -> TrainingSummary:
    import ray

    from infra.plan import log_plan
    from infra.tracking import Tracker
    from rollout.pool import RolloutPool
    from trainer.curate_job import curate_training_data
    from trainer.learner.ray_train import make_trainer
    from trainer.loop import Job, grpo_loop
    from trainer.pictures import log_reward_curve
    from trainer.progress import follow, start_board

    run_id = (latest.metadata.get("mlflow_run_id") if latest is not None else None) or None
    tracker = Tracker.start(dataclasses.replace(cfg.tracking, run_name=cfg.tracking.run_name or cfg.name),
                            run_id=run_id, tags={"dataset": cfg.data.source, "task": cfg.task,
                                                 "checkpoint_root": store.uri})
    cfg = dataclasses.replace(cfg, tracking=dataclasses.replace(cfg.tracking, tracking_uri=tracker.tracking_uri))
    tracker.log_config(to_dict(cfg))
    log_plan(tracker, cfg)  # stvg plan's figures as plan.* params (docs/plan.md)
    status = "FAILED"
    pool = RolloutPool(model, cfg.rollout)
    board = start_board()
    try:
        train, curriculum = curate_training_data(cfg, pool, train, tracker, model)  # VideoTG-R1, when on
        job = Job(config=cfg, model=model, train=train, heldout=heldout, pool=pool, progress=board,
                  run_id=tracker.run_id, curriculum=curriculum,
                  init_checkpoint=cfg.resume if cfg.resume not in ("never", "auto") else None)
        trainer = make_trainer(FailFastOnUserError(loop or grpo_loop), job, cfg.learner, storage_path=str(cfg.run_dir / "ray"),
                               name=f"{cfg.name}-learner", env=_worker_env(), local_cluster=not os.environ.get("RAY_ADDRESS"))
        print(f"training {cfg.name}: {len(train)} train / {len(heldout)} held-out samples, model {model.describe()}, "
              f"steps {start_step}->{cfg.total_steps}, mode {cfg.mode}; MLflow run {tracker.run_id}", flush=True)
        last: dict[str, Any] = {}
        outcome: dict[str, Any] = {}

        def fit() -> None:
            try:
                trainer.fit()
            except BaseException as err:  # reported by the main thread
                outcome["error"] = err

        thread = threading.Thread(target=fit, name="ray-train-fit", daemon=True)
        thread.start()
        follow(board, lambda: not thread.is_alive(), cfg.total_steps, start_step, cfg.quiet, tracker,
               on_event=last.update)
        if "error" in outcome:
            raise _explain(outcome["error"])
        if loop is None:  # a GRPO run: its whole reward curve, resumed parts included
            log_reward_curve(tracker)
        status = "FINISHED"
    except VideoError as err:  # from a rollout, SFT's prompts, or curation: say what to do about it
        raise err.with_hint(bad_video_hint(cfg.data.on_bad_video)) from None
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.close(status)
        pool.shutdown()
    latest = store.latest()
    return TrainingSummary(tracker.run_id, tracker.tracking_uri, latest.uri if latest else None,
                           latest.step if latest else 0, last.get("metrics", {}))


USER_ERROR_GRACE_S = 60.0
"""How long a learner rank that posted a user error waits for the driver to end the run before it
raises the error itself (then Ray Train reports it, and retries)."""


class FailFastOnUserError:
    """The learner loop, with a user mistake (e.g. a prompt over rollout.max_prompt_tokens, a damaged
    video) posted to the progress board instead of raised. Ray Train restarts the worker group on any
    error, up to learner.max_failures times, and a mistake in the config or the data fails every
    attempt the same way; the driver ends the run as soon as it reads the post. Raising here would
    only make Ray Train print the error's traceback and start a retry before the driver's one line,
    so the rank waits to be stopped (and raises after USER_ERROR_GRACE_S if nobody reads the post)."""

    def __init__(self, loop: Callable):
        self.loop = loop

    def __call__(self, job) -> Any:
        import ray

        try:
            return self.loop(job)
        except UserError as err:
            cause = getattr(err, "cause", None)  # a rollout actor's error arrives wrapped by Ray
            error = cause if isinstance(cause, UserError) else err
            try:
                ray.get(job.progress.post.remote({"kind": "user_error", "error": error}), timeout=30)
            except Exception:  # noqa: BLE001 - not posted: Ray Train's retry path reports it instead
                raise error from None
            time.sleep(USER_ERROR_GRACE_S)
            raise error from None


def _worker_env() -> dict[str, str]:
    """Environment of the learner ranks (and of every actor of a cluster the driver starts itself).
    Torch threads are left to Ray, which sets OMP_NUM_THREADS to the CPUs an actor reserved: 1 for
    the default one-CPU learner ranks and rollout actors (no thrashing on a 2-core laptop), the
    reservation of `learner.resources_per_worker` ({CPU: 8, ...}) on GPU nodes. STVG_TORCH_THREADS
    sets it for every worker instead (benchmarks). No Hugging Face progress bars in workers: Ray
    prefixes and interleaves them with the step lines (a "Writing model shards" bar at every
    checkpoint)."""
    env = {"TOKENIZERS_PARALLELISM": "false", "RAY_TRAIN_V2_ENABLED": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if os.environ.get("STVG_TORCH_THREADS"):
        env["OMP_NUM_THREADS"] = os.environ["STVG_TORCH_THREADS"]
    return env


def start_ray(cfg: RunConfig) -> bool:
    """Join the cluster in RAY_ADDRESS (a RayJob's), or start a local one sized for the run, listening on
    loopback only (infra/loopback.py)."""
    import ray

    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=not cfg.quiet)
        return True
    from infra.loopback import init_local_ray

    # Logical CPUs: enough for every learner rank and rollout actor even on a 2-core laptop
    # (they time-share the cores; the learner and the rollout alternate in sync mode).
    needed = cfg.learner.num_workers + cfg.rollout.num_workers * cfg.rollout.num_cpus_per_worker
    # Ray Train's preemption watcher follows the draining of cloud nodes; one machine has none, and
    # starting it logs an error about its constructor arguments that nobody can act on.
    env = {**_worker_env(), "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": "0"}
    init_local_ray(num_cpus=max(os.cpu_count() or 1, int(needed + 0.999)), include_dashboard=False,
                   log_to_driver=not cfg.quiet, runtime_env={"env_vars": env})
    return True


def _explain(err: BaseException) -> BaseException:
    """Ray wraps a worker's exception; surface a user mistake as itself, anything else as one line."""
    cause = err
    for _ in range(8):
        inner = getattr(cause, "cause", None) or getattr(cause, "__cause__", None)
        if inner is None:
            errors = getattr(cause, "worker_failures", None) or {}
            inner = next(iter(errors.values()), None) if isinstance(errors, dict) else None
        if inner is None or inner is cause:
            break
        cause = inner
        if isinstance(cause, UserError):
            return cause
    return RuntimeError(f"training failed: {type(cause).__name__}: {cause}")
