"""A node's local cache of the videos a run decodes, whatever URI names them.

Every process that decodes videos (rollout actors, learner rank 0 drawing pictures or building SFT
prompts, the driver's tracker) asks `local_path(uri)` for a local file:

- a local path (on this node, or on a mount every node has) passes through untouched;
- `s3://bucket/key` is downloaded once per node into the cache folder, even when several processes
  of the node ask at once (a per-file lock), atomically (a partial download is never visible), and
  kept while the folder stays under `max_bytes` (least recently used files are evicted first);
- `synthetic://<settings>/videos/<name>` (infra.data.synth) names a video of a synthetic dataset:
  the dataset is generated once per node under the cache folder, byte-identical on every node.

S3 access uses boto3's standard configuration (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_PROFILE / AWS_REGION and AWS_ENDPOINT_URL for S3-compatible stores such as MinIO or moto).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

from infra.cache import node_lock
from infra.errors import DataError

SYNTHETIC_DIR = "synthetic"
"""Subfolder of the cache holding the synthetic datasets generated on this node."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b.mp4' -> ('bucket', 'a/b.mp4')."""
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise DataError(f"video URI {uri!r} must look like s3://bucket/key")
    return bucket, key


class VideoCache:
    """`local_path(uri)` gives a local file for a video path, s3:// or synthetic:// URI. Downloaded
    files are evicted least-recently-used first (by access time, across every process sharing the
    folder) once the folder holds more than `max_bytes`; the file just fetched is never evicted."""

    def __init__(self, root: Optional[str | os.PathLike] = None, max_bytes: int = 8 * 1024**3):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="stvg-video-cache-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.downloads = 0
        """Number of files this process fetched from S3 so far (for metrics and tests)."""
        self._lock = threading.Lock()
        self._client = None
        self._last_touch = 0

    @property
    def size_bytes(self) -> int:
        return sum(size for _, size, _ in self._files())

    def local_path(self, uri: str) -> str:
        if uri.startswith("synthetic://"):
            from infra.data.synth import synthetic_video

            return str(synthetic_video(uri, self.root / SYNTHETIC_DIR))
        if not uri.startswith("s3://"):
            return uri
        path = self.root / (hashlib.sha1(uri.encode()).hexdigest()[:20] + Path(uri).suffix)
        with self._lock:
            if not path.is_file():
                with node_lock(path):
                    if not path.is_file():  # another process of this node may have fetched it meanwhile
                        self._download(uri, path)
                        self._evict(keep=path)
            self._touch(path)
            return str(path)

    def _touch(self, path: Path) -> None:
        """Mark `path` most recently used. Explicit nanoseconds: a plain utime takes the kernel's
        coarse clock, which gives files used a millisecond apart the same time and breaks LRU order."""
        self._last_touch = max(time.time_ns(), self._last_touch + 1)
        os.utime(path, ns=(self._last_touch, self._last_touch))

    def _download(self, uri: str, path: Path) -> None:
        bucket, key = split_s3_uri(uri)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            self._s3().download_file(bucket, key, str(partial))
        except Exception as err:  # botocore raises ClientError / NoCredentialsError / EndpointConnectionError
            partial.unlink(missing_ok=True)
            raise DataError(f"cannot download video {uri!r}: {err}") from err
        os.replace(partial, path)
        self.downloads += 1

    def _files(self) -> list[tuple[Path, int, int]]:
        """(path, bytes, access time in ns) of every cached download, oldest first."""
        out = []
        for path in self.root.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # evicted by another process just now
                continue
            out.append((path, stat.st_size, stat.st_mtime_ns))
        return sorted(out, key=lambda entry: entry[2])

    def _evict(self, keep: Path) -> None:
        files = self._files()
        total = sum(size for _, size, _ in files)
        for path, size, _ in files:
            if total <= self.max_bytes:
                return
            if path == keep:
                continue
            path.unlink(missing_ok=True)  # a reader that already opened it keeps its file descriptor
            total -= size

    def _s3(self):
        if self._client is None:
            import boto3

            # boto3 reads AWS_ENDPOINT_URL itself in recent versions; passing it keeps older ones right.
            self._client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        return self._client
