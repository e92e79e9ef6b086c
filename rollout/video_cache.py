"""Per-worker local cache for videos stored in S3 (`s3://bucket/key`), bounded in bytes (LRU).

A rollout worker decodes the same training videos many times over a run; each is downloaded once
and kept while it fits. Local paths pass through untouched. S3 access uses boto3's standard
configuration (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE / AWS_REGION and
AWS_ENDPOINT_URL for S3-compatible stores such as MinIO or moto).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Optional

from infra.errors import DataError


def split_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/a/b.mp4' -> ('bucket', 'a/b.mp4')."""
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise DataError(f"video URI {uri!r} must look like s3://bucket/key")
    return bucket, key


class VideoCache:
    """`local_path(uri)` gives a local file for a video path or s3:// URI, downloading at most once
    while the file stays in the cache. Files are evicted least-recently-used first once the cache
    holds more than `max_bytes` (the file just fetched is never evicted, even if alone too big)."""

    def __init__(self, root: Optional[str | os.PathLike] = None, max_bytes: int = 8 * 1024**3):
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="stvg-video-cache-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.downloads = 0
        """Number of files fetched from S3 so far (for metrics and tests)."""
        self._lock = threading.Lock()
        self._client = None
        self._entries: OrderedDict[str, int] = OrderedDict()  # file name -> bytes, oldest first
        existing = sorted((p for p in self.root.iterdir() if p.is_file() and not p.name.startswith(".")),
                          key=lambda p: p.stat().st_mtime)
        for path in existing:
            self._entries[path.name] = path.stat().st_size

    @property
    def size_bytes(self) -> int:
        return sum(self._entries.values())

    def local_path(self, uri: str) -> str:
        if not uri.startswith("s3://"):
            return uri
        name = hashlib.sha1(uri.encode()).hexdigest()[:20] + Path(uri).suffix
        with self._lock:
            path = self.root / name
            if name in self._entries and path.is_file():
                self._entries.move_to_end(name)
                os.utime(path)
                return str(path)
            self._download(uri, path)
            self._entries[name] = path.stat().st_size
            self._entries.move_to_end(name)
            self._evict(keep=name)
            return str(path)

    def _download(self, uri: str, path: Path) -> None:
        bucket, key = split_s3_uri(uri)
        partial = path.with_name(f".{path.name}.part")
        try:
            self._s3().download_file(bucket, key, str(partial))
        except Exception as err:  # botocore raises ClientError / NoCredentialsError / EndpointConnectionError
            partial.unlink(missing_ok=True)
            raise DataError(f"cannot download video {uri!r}: {err}") from err
        os.replace(partial, path)
        self.downloads += 1

    def _evict(self, keep: str) -> None:
        while self.size_bytes > self.max_bytes:
            victim = next((name for name in self._entries if name != keep), None)
            if victim is None:
                return
            self._entries.pop(victim)
            (self.root / victim).unlink(missing_ok=True)

    def _s3(self):
        if self._client is None:
            import boto3

            # boto3 reads AWS_ENDPOINT_URL itself in recent versions; passing it keeps older ones right.
            self._client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
        return self._client
