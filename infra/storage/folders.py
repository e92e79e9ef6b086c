"""Whole folders between a node and S3: node-local copies of folders named by URI, and uploads.

A learner rank or a rollout actor that needs local files (a Hugging Face model folder) calls
`local_folder(uri, cache_root)`: a local path (on a mount every node has) is used where it is; an
`s3://` prefix is copied into this node's cache once, even when several processes of the node ask
at once (infra.cache.build_once's lock), atomically (never a half-downloaded folder), with every
file's size checked against the listing, files and parts in parallel, and a progress line for
large downloads. The cache keys on the listing's sizes and ETags, so an object rewritten under the
same name is fetched anew instead of served stale.

`upload_folder` is the other way: a local model folder or dataset put under an s3:// prefix (what
`stvg upload` does), files and parts in parallel, with the same progress lines.
"""

from __future__ import annotations

import hashlib
import re
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from infra.cache import build_once
from infra.errors import UserError
from infra.storage.objects import MIB, TransferSettings, open_store
from infra.storage.uris import parse_location

DONE_MARKER = ".stvg-fetched"
"""Written last into a fetched folder: the folder is complete once it exists."""
PROGRESS_MIN_BYTES = 64 * MIB
"""Downloads at least this big print progress lines."""
FETCH_CONCURRENCY = 16
"""Files and parts in flight at once."""


def folder_fingerprint(uri: str) -> str:
    """A digest of what is under the s3:// prefix `uri` now (keys, sizes, ETags): it changes whenever
    an object is added, removed or rewritten. '' for a local path (never hashed: it may be huge)."""
    if parse_location(uri).scheme != "s3":
        return ""
    return _fingerprint(_describe(uri))


def local_folder(uri: str, cache_root: str | Path, *, fingerprint: str = "", progress: bool = True,
                 what: str = "folder") -> Path:
    """A local folder holding the files under `uri`. `fingerprint` (from folder_fingerprint on the
    driver) pins the contents: if the prefix changed since, this is a UserError rather than a node
    silently loading other weights than its peers."""
    location = parse_location(uri)
    if location.scheme != "s3":
        if not location.path.is_dir():
            raise UserError(f"{what} {uri} is not a folder on this node ({_node()}); on a multi-node run use "
                            "s3:// or a path under cluster.shared_paths")
        return location.path
    listing = _describe(uri)
    if not listing:
        raise UserError(f"{what} {uri} holds no files")
    found = _fingerprint(listing)
    if fingerprint and found != fingerprint:
        raise UserError(f"{what} {uri} changed after the run started (its objects differ from what the driver "
                        "listed); do not overwrite a model or dataset while a run reads it")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", uri[len("s3://"):]).strip("_")[-80:]
    final = Path(cache_root) / "s3" / f"{slug}-{found[:12]}"

    def download(staging: Path) -> None:
        store = open_store(uri, TransferSettings(max_concurrency=FETCH_CONCURRENCY))
        total = sum(size for size, _ in listing.values())
        with TransferProgress(f"fetching {uri}", total, enabled=progress) as tick:
            store.get_files([(key, staging / key) for key in listing], progress=tick)
        for key, (size, _) in listing.items():
            got = (staging / key).stat().st_size
            if got != size:
                raise UserError(f"{uri}/{key}: downloaded {got} bytes, the listing says {size}; retry the run")
        (staging / DONE_MARKER).write_text(found)

    return build_once(final, DONE_MARKER, download)


def upload_folder(folder: str | Path, uri: str, *, replace: bool = False, progress: bool = True) -> int:
    """Upload every file under `folder` to the s3:// prefix `uri` (same relative keys); returns the
    bytes sent. A prefix that already holds objects is refused unless `replace` (then objects the
    folder does not have are deleted): runs pin the listing they start with, so rewriting a model
    under a running job makes that job fail on its next node instead of mixing weights."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder")
    if parse_location(uri).scheme != "s3":
        raise UserError(f"{uri}: upload to an s3://bucket/prefix (a shared mount needs no upload: copy the folder there)")
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    if not files:
        raise UserError(f"{folder} holds no files")
    store = open_store(uri, TransferSettings(max_concurrency=FETCH_CONCURRENCY))
    existing = store.list("")
    if existing and not replace:
        raise UserError(f"{uri} already holds {len(existing)} objects; upload to a new prefix (runs pin what they "
                        "list when they start), or pass --replace to overwrite it")
    total = sum((folder / rel).stat().st_size for rel in files)
    with TransferProgress(f"uploading to {uri}", total, enabled=progress) as tick:
        store.put_files([(folder / rel, rel) for rel in files], progress=tick)
    stale = [key for key in existing if key not in set(files)]
    if stale:
        store.delete(stale)
    return total


class TransferProgress:
    """Byte counts from transfer threads, shown as a tqdm bar on a terminal and otherwise as a line
    every `every_s` seconds and one at the end (Ray forwards workers' lines to the driver's log).
    Silent below PROGRESS_MIN_BYTES, where a download takes too little time to be worth a line."""

    def __init__(self, label: str, total: int, enabled: bool = True, every_s: float = 10.0):
        self.label, self.total, self.every_s = label, total, every_s
        self.enabled = enabled and total >= PROGRESS_MIN_BYTES
        self.done = 0
        self._lock = threading.Lock()
        self._started = self._last = time.monotonic()
        self._bar = None

    def __enter__(self) -> Callable[[int], None]:
        if self.enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.label, unit="B", unit_scale=True, dynamic_ncols=True)
        return self.add

    def add(self, count: int) -> None:
        with self._lock:
            self.done += count
            if self._bar is not None:
                self._bar.update(count)
            elif self.enabled and time.monotonic() - self._last >= self.every_s:
                self._last = time.monotonic()
                print(self.line(), flush=True)

    def line(self) -> str:
        seconds = max(time.monotonic() - self._started, 1e-9)
        share = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.label}: {self.done / MIB:,.0f} / {self.total / MIB:,.0f} MiB ({share:.0f}%), "
                f"{self.done / MIB / seconds:,.1f} MiB/s")

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and exc_type is None:
            print(self.line(), flush=True)


def _describe(uri: str) -> dict[str, tuple[int, str]]:
    return open_store(uri).describe("")


def _fingerprint(listing: dict[str, tuple[int, str]]) -> str:
    return hashlib.sha256(repr(sorted(listing.items())).encode()).hexdigest()


def _node() -> str:
    import socket

    return socket.gethostname()
