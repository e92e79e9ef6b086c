"""Ray Train wiring for the learner: a TorchTrainer whose workers are the learner ranks.

Ray Train (2.60, the "v2" API that is on by default) starts `num_workers` actors, creates the
torch.distributed process group (gloo on CPU, NCCL on GPU), sets RANK / LOCAL_RANK / WORLD_SIZE and
the CUDA device, and runs `train_loop_per_worker(config)` on each; DeepSpeed then adopts that
process group. Inside the loop: `ray.train.get_context().get_world_rank()`, `ray.train.report(...)`,
`ray.train.get_checkpoint()`. A worker that dies makes Ray Train restart the whole group (up to
`max_failures` times); the loop is expected to resume from its latest checkpoint.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from trainer.learner.config import LearnerConfig


def resolve_use_gpu(cfg: LearnerConfig) -> bool:
    """use_gpu="auto" on the driver: GPUs anywhere in the Ray cluster (the driver itself may have
    none, e.g. a RayJob submitter pod), else CUDA on this machine."""
    value = str(cfg.use_gpu).lower()
    if value != "auto":
        return value == "true"
    import ray

    if ray.is_initialized():
        return ray.cluster_resources().get("GPU", 0) > 0
    import torch

    return torch.cuda.is_available()


def worker_env(use_gpu: bool, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    """Environment of every learner worker: DS_ACCELERATOR=cpu on CPU (DeepSpeed picks its
    accelerator at import; without it a CUDA build of torch on a GPU-less node confuses it)."""
    env = {} if use_gpu else {"DS_ACCELERATOR": "cpu"}
    env.update(extra or {})
    return env


def make_trainer(train_loop_per_worker: Callable[[dict], Any], train_loop_config: dict, cfg: LearnerConfig, *,
                 storage_path: str, name: Optional[str] = None, env: Optional[dict[str, str]] = None,
                 local_cluster: bool = False):
    """A TorchTrainer for the learner ranks; call `.fit()` on it (blocks until the loop returns).

    storage_path: where Ray Train keeps run state and reported checkpoints (a local path in tests;
    shared storage such as s3://bucket/prefix on a multi-node cluster).
    local_cluster: the driver's own Ray cluster (no dashboard): Ray Train's PlacementGroupCleaner is
    left out, see `_without_placement_group_cleaner`.
    """
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from trainer.learner.rendezvous import LoopbackTorchConfig

    if local_cluster:
        TorchTrainer = _without_placement_group_cleaner(TorchTrainer)  # noqa: N806 - a class

    use_gpu = resolve_use_gpu(cfg)
    scaling = ScalingConfig(num_workers=cfg.num_workers, use_gpu=use_gpu,
                            resources_per_worker=dict(cfg.resources_per_worker) or None)
    run = RunConfig(name=name, storage_path=storage_path,
                    failure_config=FailureConfig(max_failures=cfg.max_failures),
                    worker_runtime_env={"env_vars": worker_env(use_gpu, env)})
    return TorchTrainer(train_loop_per_worker, train_loop_config=train_loop_config,
                        torch_config=LoopbackTorchConfig(backend="nccl" if use_gpu else "gloo"),
                        scaling_config=scaling, run_config=run)


def _without_placement_group_cleaner(trainer_cls):
    """`trainer_cls` without Ray Train's PlacementGroupCleaner. That detached actor asks Ray's State
    API (served by the dashboard) every second whether the train controller still lives, to free
    its placement group should the controller die without doing so. A cluster the driver starts
    itself runs no dashboard, so every question fails with a warning (dozens in a short run; with
    a second local Ray instance on the machine, a traceback), and it has nothing to guard: the whole
    cluster ends with the driver."""
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    class Trainer(trainer_cls):
        def _create_default_callbacks(self):
            return [callback for callback in super()._create_default_callbacks()
                    if not isinstance(callback, PlacementGroupCleanerCallback)]

    return Trainer
