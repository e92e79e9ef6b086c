"""The rule of a multi-node run: whatever a process on another node reads or writes is named by a
URI that node can reach, `s3://` or a path under `cluster.shared_paths`. The driver checks it before
any worker starts, so a node-local path is one clear line naming the key and the fix, not a missing
file on a remote pod twenty minutes into the run.

What stays on the driver is exempt: annotation and tracks files (the driver reads them and hands
samples to workers by value), the MLflow store (only the driver writes to it), curation scores.
Node-local caches (model.cache_dir, rollout.video_cache_dir, output_dir's staging) are filled by each
node itself and never handed over.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from infra.errors import UserError
from infra.storage.uris import parse_location
from rollout.models.source import ModelSource
from trainer.config import RunConfig


def is_multi_node(cfg: RunConfig) -> bool:
    """cluster.multi_node, with auto meaning: the driver joins an existing Ray cluster (RAY_ADDRESS)."""
    value = str(cfg.cluster.multi_node).lower()
    if value == "auto":
        return bool(os.environ.get("RAY_ADDRESS"))
    return value == "true"


def check_reachable(cfg: RunConfig, model: ModelSource, samples: Iterable) -> None:
    """Raise a UserError for the first artifact another node could not reach (multi-node runs only)."""
    if not is_multi_node(cfg):
        return
    shared = cfg.cluster.all_shared_paths
    require_shared("checkpoint.uri", cfg.checkpoint.uri, shared, "learner ranks on other nodes write checkpoints there")
    if model.kind == "folder":
        require_shared("model.path", model.uri, shared, "learner ranks and rollout workers on other nodes load it")
    if cfg.resume not in ("never", "auto"):
        require_shared("resume", cfg.resume, shared, "learner ranks on other nodes restore it")
    roots = [Path(p) for p in shared]
    for sample in samples:
        if "://" not in sample.video and not _under(sample.video, roots):
            key = "data.video_root" if cfg.data.video_root else f"the videos of {cfg.data.train_annotations}"
            raise UserError(f"{key}: video {sample.video} is on this node only, but rollout workers on other "
                            f"nodes decode it; {_fix(shared)}")


def require_shared(key: str, uri: str, shared_paths: Iterable[str], why: str) -> None:
    """`uri` must be s3:// or a path under one of `shared_paths`; else a UserError naming `key`."""
    shared = list(shared_paths)
    location = parse_location(uri)
    if location.scheme == "s3" or _under(str(location.path), [Path(p) for p in shared]):
        return
    raise UserError(f"{key}={uri} is a folder on the driver's node only, but this is a multi-node run ({why}); "
                    f"{_fix(shared)}")


def _fix(shared: list[str]) -> str:
    return ("use s3://bucket/prefix, or a folder mounted at the same path on every node and listed in "
            "cluster.shared_paths" + (f" (now: {', '.join(shared)})" if shared else ""))


def _under(path: str, shared: list[Path]) -> bool:
    resolved = Path(os.path.abspath(path))
    return any(resolved == root or root in resolved.parents for root in shared)
