"""Cache files kept beside a dataset, in the dataset's own storage.

What a run derives from a dataset once (candidate tracks, difficulty and boundary-reflection
scores) is stored next to its annotation file: beside a local (or shared) file, or beside an
`s3://` one in the same bucket, so "computed once" holds across pods, nodes and reruns. Code that
reads and writes such a file works on a local copy:

    cache = beside(annotations, "train.tracks-yolo.json", node_cache)
    with cache.synced() as path:     # fetched from S3 first when it is there
        ...read / write path...      # stored back to S3 when it changed (even if this block fails)

A dataset folder that cannot be written (read-only mount, no S3 write permission) keeps the file
in this node's cache instead, with a warning: the run goes on, the work is redone by the next one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from infra.errors import UserError

log = logging.getLogger("stvg.data")


@dataclass(frozen=True)
class AnnotationFile:
    """An annotation file as configured (`uri`: a path or s3://) and its local copy (`local`)."""

    uri: str
    local: Path


@dataclass(frozen=True)
class DatasetCacheFile:
    path: Path
    """The local file this process reads and writes."""
    remote: str = ""
    """The s3:// URI the file is stored at, when the dataset lives in S3."""

    @contextlib.contextmanager
    def synced(self) -> Iterator[Path]:
        before = self.pull()
        try:
            yield self.path
        finally:  # also when the work failed part way: what it wrote is kept for the rerun, on any node
            if self.remote and self.path.is_file() and _digest(self.path) != before:
                self.push()

    def sibling(self, name: str) -> "DatasetCacheFile":
        """The cache file `name` in the same folder (and the same S3 prefix)."""
        remote = f"{self.remote.rpartition('/')[0]}/{name}" if self.remote else ""
        return DatasetCacheFile(self.path.with_name(name), remote)

    def pull(self) -> str:
        """Fetch the stored copy (if any) over the local one; returns the local file's digest after."""
        if self.remote:
            from infra.storage.objects import open_store

            parent, _, name = self.remote.rpartition("/")
            try:
                store = open_store(parent)
                if name in store.list(name):
                    store.get_files([(name, self.path)])
            except UserError as err:
                log.warning("could not read %s (%s); using this node's copy", self.remote, err)
        return _digest(self.path) if self.path.is_file() else ""

    def push(self) -> None:
        from infra.storage.objects import open_store

        parent, _, name = self.remote.rpartition("/")
        try:
            open_store(parent).put_files([(self.path, name)])
        except UserError as err:
            log.warning("could not store %s beside the dataset (%s); it stays in this node's cache only and a "
                        "later run on another node will compute it again", self.remote, err)


def beside(annotations: AnnotationFile, name: str, node_cache: str | Path) -> DatasetCacheFile:
    """The cache file `name` next to `annotations` (see the module docstring)."""
    if annotations.uri.startswith("s3://"):
        parent = annotations.uri.rpartition("/")[0]
        return DatasetCacheFile(annotations.local.parent / name, f"{parent}/{name}")
    folder = annotations.local.parent
    if os.access(folder, os.W_OK):
        return DatasetCacheFile(folder / name)
    key = hashlib.sha1(str(annotations.local.resolve()).encode()).hexdigest()[:12]
    log.warning("%s is not writable: %s is kept in this node's cache", folder, name)
    return DatasetCacheFile(Path(node_cache) / "dataset-caches" / f"{key}-{name}")


def cache_file(uri: str, node_cache: str | Path) -> DatasetCacheFile:
    """A cache file named explicitly (a path, or s3:// kept in sync through a local copy)."""
    if not uri.startswith("s3://"):
        return DatasetCacheFile(Path(uri))
    parent, _, name = uri.rpartition("/")
    return DatasetCacheFile(Path(node_cache) / "dataset-caches" / hashlib.sha1(parent.encode()).hexdigest()[:16] / name,
                            uri)


def fetch_annotations(uri: str, node_cache: str | Path) -> AnnotationFile:
    """The annotation file `uri` with a local copy: itself when local, else fetched into the cache
    (again on every run, so an updated file in S3 is read as it is now)."""
    if not uri.startswith("s3://"):
        return AnnotationFile(uri, Path(uri))
    from infra.storage.objects import open_store

    parent, _, name = uri.rpartition("/")
    local = Path(node_cache) / "annotations" / hashlib.sha1(parent.encode()).hexdigest()[:16] / name
    open_store(parent).get_files([(name, local)])
    return AnnotationFile(uri, local)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
