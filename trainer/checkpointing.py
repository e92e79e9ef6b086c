"""Save and restore a whole training state across learner ranks.

A checkpoint holds: the ZeRO-3 model and optimizer shards (every rank's), each rank's RNG states,
the trainer state (step, policy version, prompts consumed, MLflow run id, resolved config) and,
optionally, a consolidated Hugging Face model under `hf/` for evaluation and rollout start-up.

Ranks write into a node-local staging folder; one writer per node (local rank 0) uploads that
folder, and rank 0 commits the manifest last, after every node's upload, so a checkpoint is
either complete or invisible.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from infra.storage.checkpoints import HF_DIR, CheckpointRef, CheckpointStore, open_checkpoint_uri  # noqa: F401 - re-exported
from trainer.learner.distribute import all_gather_objects

STATE_FILE = "trainer_state.json"


@dataclass
class TrainState:
    step: int = 0
    """Optimizer steps completed (the next step to run)."""
    policy_version: int = 0
    """Version of the weights the rollout workers hold (= step in this loop)."""
    prompts_consumed: int = 0
    """Position of the prompt sampler."""
    mlflow_run_id: str = ""


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(learner, store: CheckpointStore, state: TrainState, staging: Path, *,
                    config: dict[str, Any], export_hf: bool) -> Optional[str]:
    """Every rank calls this; returns the checkpoint URI on rank 0 (None elsewhere)."""
    rank = learner.rank
    folder = Path(staging) / f"step-{state.step:06d}"
    learner.save(folder, client_state={"step": state.step})
    if export_hf:
        learner.save_hf(folder / HF_DIR)
    torch.save(_rng_state(), folder / f"rng_rank{rank}.pt")
    if rank == 0:
        (folder / STATE_FILE).write_text(json.dumps({"state": asdict(state), "config": config}, indent=1))
    _barrier()
    entries = store.upload(state.step, folder) if _local_rank() == 0 else []
    merged = {e["path"]: e for node in all_gather_objects(entries) for e in node}
    uri = store.commit(state.step, list(merged.values()), {"step": state.step, **asdict(state)}) if rank == 0 else None
    _barrier()
    if _local_rank() == 0:
        shutil.rmtree(folder, ignore_errors=True)
    return uri


def restore_checkpoint(learner, store: CheckpointStore, ref: CheckpointRef, staging: Path) -> TrainState:
    """Every rank calls this; loads weights, optimizer, this rank's RNG state; returns the state."""
    folder = Path(staging) / f"restore-{ref.step:06d}"
    if _local_rank() == 0:
        shutil.rmtree(folder, ignore_errors=True)
        store.restore(ref, folder)
    _barrier()
    learner.load(folder)
    rng_file = folder / f"rng_rank{learner.rank}.pt"
    if rng_file.exists():  # absent when resuming with more ranks than saved
        _set_rng_state(torch.load(rng_file, weights_only=False))
    state = TrainState(**json.loads((folder / STATE_FILE).read_text())["state"])
    _barrier()
    if _local_rank() == 0:
        shutil.rmtree(folder, ignore_errors=True)
    return state


def read_state(store: CheckpointStore, ref: CheckpointRef) -> TrainState:
    """The trainer state of a checkpoint from its manifest metadata (no download)."""
    fields = {k: ref.metadata[k] for k in TrainState.__dataclass_fields__ if k in ref.metadata}
    return TrainState(**fields)
