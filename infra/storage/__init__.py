"""Checkpoint storage in a local directory or S3 (see docs/storage.md).

    store = open_checkpoints("s3://bucket/runs/exp1", keep_last=3)
    store.save(step, local_dir, metadata)      # files first, manifest last, then prune
    ref = store.latest()                       # newest complete checkpoint or None
    metadata = store.restore(ref, local_dir)   # download + SHA-256 check

boto3 is imported only when an s3:// store is opened.
"""

from infra.storage.checkpoints import (
    ChecksumError,
    CheckpointRef,
    CheckpointStore,
    open_checkpoints,
)
from infra.storage.config import CheckpointConfig
from infra.storage.objects import ObjectStore, TransferSettings, open_store

__all__ = [
    "CheckpointConfig",
    "CheckpointRef",
    "CheckpointStore",
    "ChecksumError",
    "ObjectStore",
    "TransferSettings",
    "open_checkpoints",
    "open_store",
]
