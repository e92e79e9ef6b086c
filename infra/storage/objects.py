"""Where checkpoint bytes live: one small interface, a local-directory backend and `open_store`.

Keys are relative '/'-separated paths under the store's root URI. The S3 backend is in `s3.py`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

from infra.errors import UserError
from infra.storage.uris import check_key, parse_location

MIB = 1024 * 1024
_TMP_MARK = ".tmp-"  # local temp files are "<.name>.tmp-<uuid>" and never listed


@dataclass(frozen=True)
class TransferSettings:
    """How big files move to and from S3 (ignored by the local backend)."""

    multipart_threshold: int = 16 * MIB
    """Files of at least this many bytes go up as multipart uploads (and down as ranged GETs)."""
    multipart_chunk: int = 16 * MIB
    """Part size in bytes; S3 needs at least 5 MiB for every part but the last."""
    max_concurrency: int = 8
    """Parts and files transferred at the same time (one shared thread pool)."""


class ObjectStore(Protocol):
    """Files under a root URI. Batch calls so a backend can move many files in parallel."""

    uri: str
    """The root, e.g. 's3://bucket/prefix' or '/abs/dir'."""

    def put_files(self, items: Sequence[tuple[Path, str]], progress: Callable[[int], None] | None = None) -> None:
        """Upload each (local file, key). An object appears whole or not at all. `progress(n)` as for get_files."""

    def get_files(self, items: Sequence[tuple[str, Path]], progress: Callable[[int], None] | None = None) -> None:
        """Download each (key, local file), creating parent directories; `progress(n)` is called as
        bytes arrive (from transfer threads), for progress lines on large downloads."""

    def list(self, prefix: str = "") -> dict[str, int]:
        """Every key starting with `prefix` (all of them when empty) -> its size in bytes."""

    def delete(self, keys: Iterable[str]) -> None:
        """Remove the keys; missing keys are ignored."""


def open_store(uri: str, transfer: TransferSettings | None = None) -> ObjectStore:
    """The backend for `uri`: S3 for s3://, a local directory for file:// or a plain path."""
    location = parse_location(uri)
    if location.scheme == "s3":
        from infra.storage.s3 import S3Store

        return S3Store(location, transfer or TransferSettings())
    return LocalStore(location.path)


class LocalStore:
    """A directory on a local or mounted (NFS, PVC) filesystem. Writes are temp file + rename."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.uri = str(self.root)
        if self.root.exists() and not self.root.is_dir():
            raise UserError(f"storage location {self.uri!r} exists but is not a directory")

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def put_files(self, items: Sequence[tuple[Path, str]], progress: Callable[[int], None] | None = None) -> None:
        for src, key in items:
            dst = self._path(key)
            tmp = dst.with_name(f".{dst.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}")
            try:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)  # atomic on POSIX: readers see the old file or the new one
            except OSError as err:
                tmp.unlink(missing_ok=True)
                raise UserError(f"cannot write {dst} in {self.uri!r}: {err.strerror or err}") from None
            if progress is not None:
                progress(dst.stat().st_size)

    def get_files(self, items: Sequence[tuple[str, Path]], progress: Callable[[int], None] | None = None) -> None:
        for key, dst in items:
            src = self._path(key)
            if not src.is_file():
                raise UserError(f"{self.uri}/{key} does not exist")
            Path(dst).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            if progress is not None:
                progress(Path(dst).stat().st_size)

    def list(self, prefix: str = "") -> dict[str, int]:
        if not self.root.is_dir():
            return {}
        out: dict[str, int] = {}
        # Walk only the deepest directory the prefix names, then filter by the full prefix.
        start_dir = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*start_dir.split("/")) if start_dir else self.root
        for dirpath, _, filenames in os.walk(start):
            for name in filenames:
                if _TMP_MARK in name and name.startswith("."):
                    continue
                full = Path(dirpath, name)
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    out[key] = full.stat().st_size
        return out

    def delete(self, keys: Iterable[str]) -> None:
        parents: set[Path] = set()
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            parents.add(path.parent)
        # Remove directories left empty, deepest first, never the root itself.
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            while parent != self.root and self.root in parent.parents:
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
