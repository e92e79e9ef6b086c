"""Build-once folders in a node-local cache: artefacts (the tiny model, synthetic datasets, models and
checkpoints fetched from S3) are built in a private folder and renamed into place, so concurrent or
interrupted builds never leave a half-built folder where a later run would take it for a finished one.

Every node of a cluster fills its own cache: nothing in it is shared between nodes. On one node,
several processes (learner ranks, rollout actors) may ask for the same artefact at once; a file lock
makes one of them build it while the others wait and then reuse it, so a 15 GB model is downloaded
once per node, not once per process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator


def build_once(final: Path, done_marker: str, build: Callable[[Path], None]) -> Path:
    """`final`, built by `build(staging_folder)` unless `final/done_marker` already exists."""
    final = Path(final)
    if (final / done_marker).exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with node_lock(final):
        if (final / done_marker).exists():  # another process on this node built it while we waited
            return final
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=final.parent))
        try:
            build(staging)
            if final.exists():
                shutil.rmtree(final, ignore_errors=True)  # debris without the marker (an old, non-atomic layout)
            os.rename(staging, final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final


@contextlib.contextmanager
def node_lock(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` among the processes of this node (flock on `.<name>.lock` beside
    it). The kernel releases it when its holder dies, so a killed builder never blocks the others."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
