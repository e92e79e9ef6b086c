"""Training checkpoints in a local directory or S3, made visible only by a manifest written last.

Layout under the store URI:

    <uri>/step-000120/<every file of the saved directory, same relative paths>
    <uri>/step-000120/manifest.json      # written LAST: the checkpoint exists only once this does

A checkpoint is *complete* when its manifest parses and every file it lists is present with the
listed size. Half-written checkpoints (crash or preemption mid-upload) are ignored by `latest()`,
cleaned up by later saves, and a new save of the same step replaces them. `restore` checks every
file's SHA-256 against the manifest.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.errors import UserError
from infra.storage.objects import ObjectStore, TransferSettings, open_store
from infra.storage.uris import check_key

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = "stvg-checkpoint/1"
HF_DIR = "hf"
"""The consolidated Hugging Face model inside a training checkpoint (evaluation, rollout start-up)."""
_STEP_DIR = re.compile(r"^step-(\d+)$")


class ChecksumError(UserError):
    """A downloaded checkpoint file does not match its manifest (size or SHA-256)."""


@dataclass(frozen=True)
class CheckpointRef:
    """A complete checkpoint: where it is, its step and the metadata saved with it."""

    uri: str
    """The checkpoint's own directory, e.g. 's3://bucket/run/step-000120'."""
    step: int
    metadata: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    """A digest of the manifest's file list (paths, sizes, SHA-256): it changes when the step is
    saved again with other contents, so caches of a checkpoint can key on (uri, fingerprint)."""


def step_dir(step: int) -> str:
    """The directory name of a step's checkpoint: 'step-000120' (more digits past 999999)."""
    return f"step-{step:06d}"


def sha256_file(path: Path, block: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


class CheckpointStore:
    """Save, find and restore step checkpoints in one ObjectStore. Only one writer per URI."""

    def __init__(self, objects: ObjectStore, keep_last: int = 3):
        if keep_last < 0:
            raise UserError(f"keep_last={keep_last} must be >= 0 (0 keeps every checkpoint)")
        self.objects = objects
        self.keep_last = keep_last

    @property
    def uri(self) -> str:
        return self.objects.uri

    def save(self, step: int, local_dir: Path, metadata: dict[str, Any]) -> str:
        """Upload every file under `local_dir` as checkpoint `step`, manifest last; prune; return its URI.

        Saving a step that already exists replaces it: the old manifest is removed first, so
        the step is invisible until the new one is complete.
        """
        _check_metadata(step, metadata)  # before anything is written
        return self.commit(step, self.upload(step, local_dir), metadata)

    def upload(self, step: int, local_dir: Path) -> list[dict[str, Any]]:
        """Upload the files under `local_dir` into checkpoint `step` WITHOUT making it visible.

        Returns their manifest entries. Several writers (one per node, each with its own ZeRO
        shards) may upload into the same step; one of them then calls `commit` with all entries.
        """
        _check_step(step)
        local_dir = Path(local_dir)
        files = _files_under(local_dir)
        prefix = step_dir(step) + "/"
        if prefix + MANIFEST in self.objects.list(prefix):
            self.objects.delete([prefix + MANIFEST])
        entries = [{"path": rel, "size": (local_dir / rel).stat().st_size,
                    "sha256": sha256_file(local_dir / rel)} for rel in files]
        self.objects.put_files([(local_dir / rel, prefix + rel) for rel in files])
        return entries

    def commit(self, step: int, entries: list[dict[str, Any]], metadata: dict[str, Any]) -> str:
        """Write the manifest of checkpoint `step` (listing `entries`), which makes it visible; prune."""
        _check_step(step)
        _check_metadata(step, metadata)
        prefix = step_dir(step) + "/"
        wanted = {prefix + e["path"] for e in entries}
        existing = self.objects.list(prefix)
        self.objects.delete([k for k in existing if k not in wanted and k != prefix + MANIFEST])
        manifest = {
            "format": FORMAT,
            "step": step,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "total_bytes": sum(e["size"] for e in entries),
            "files": entries,
            "metadata": metadata,
        }
        with tempfile.TemporaryDirectory(prefix="stvg-manifest-") as tmp:
            path = Path(tmp, MANIFEST)
            path.write_text(json.dumps(manifest, indent=1, sort_keys=False))
            self.objects.put_files([(path, prefix + MANIFEST)])
        self._prune(just_saved=step)
        return self._step_uri(step)

    def latest(self) -> CheckpointRef | None:
        """The newest complete checkpoint, or None. Incomplete or unreadable ones are skipped."""
        listing = self.objects.list("")
        for step in sorted(_steps(listing), reverse=True):
            manifest = self._complete_manifest(step, listing)
            if manifest is not None:
                return self._ref(step, manifest)
        return None

    def get(self, step: int) -> CheckpointRef | None:
        """Checkpoint `step` if it is complete, else None."""
        manifest = self._complete_manifest(step, self.objects.list(step_dir(step) + "/"))
        return None if manifest is None else self._ref(step, manifest)

    def _ref(self, step: int, manifest: dict[str, Any]) -> CheckpointRef:
        files = sorted((e["path"], e["size"], e["sha256"]) for e in manifest["files"])
        fingerprint = hashlib.sha256(json.dumps(files).encode()).hexdigest()[:16]
        return CheckpointRef(self._step_uri(step), step, manifest["metadata"], fingerprint)

    def restore(self, ref: CheckpointRef, local_dir: Path, only: str = "") -> dict[str, Any]:
        """Download checkpoint `ref.step` into `local_dir`, verify sizes and SHA-256, return its metadata.
        `only`: download just the files under this relative folder (e.g. "hf/" for evaluation)."""
        local_dir = Path(local_dir)
        prefix = step_dir(ref.step) + "/"
        listing = self.objects.list(prefix)
        manifest = self._read_manifest(ref.step) if prefix + MANIFEST in listing else None
        if manifest is None:
            raise UserError(f"checkpoint {self._step_uri(ref.step)} has no valid {MANIFEST}; "
                            "it was never completed or was deleted")
        manifest["files"] = [e for e in manifest["files"] if e["path"].startswith(only)]
        for entry in manifest["files"]:
            if prefix + entry["path"] not in listing:
                raise UserError(f"checkpoint file {self._step_uri(ref.step)}/{entry['path']} is missing")
        self.objects.get_files([(prefix + e["path"], local_dir / e["path"]) for e in manifest["files"]])
        for entry in manifest["files"]:
            path = local_dir / entry["path"]
            size, digest = path.stat().st_size, sha256_file(path)
            if size != entry["size"] or digest != entry["sha256"]:
                raise ChecksumError(
                    f"checksum mismatch for checkpoint file {self._step_uri(ref.step)}/{entry['path']}: "
                    f"manifest says {entry['size']} bytes sha256 {entry['sha256'][:12]}..., "
                    f"downloaded {size} bytes sha256 {digest[:12]}...; the stored copy is corrupt")
        return manifest["metadata"]

    # --- internals ---------------------------------------------------------------------------

    def _step_uri(self, step: int) -> str:
        return f"{self.uri.rstrip('/')}/{step_dir(step)}"

    def _read_manifest(self, step: int) -> dict[str, Any] | None:
        """The parsed manifest of `step`, or None (with a warning) when it is not a valid one."""
        with tempfile.TemporaryDirectory(prefix="stvg-manifest-") as tmp:
            path = Path(tmp, MANIFEST)
            self.objects.get_files([(f"{step_dir(step)}/{MANIFEST}", path)])
            try:
                manifest = json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError) as err:
                log.warning("ignoring checkpoint %s: unreadable manifest (%s)", self._step_uri(step), err)
                return None
        if not _valid_manifest(manifest, step):
            log.warning("ignoring checkpoint %s: manifest does not match the %s schema",
                        self._step_uri(step), FORMAT)
            return None
        return manifest

    def _complete_manifest(self, step: int, listing: dict[str, int]) -> dict[str, Any] | None:
        prefix = step_dir(step) + "/"
        if prefix + MANIFEST not in listing:
            return None
        manifest = self._read_manifest(step)
        if manifest is None:
            return None
        for entry in manifest["files"]:
            if listing.get(prefix + entry["path"]) != entry["size"]:
                log.warning("ignoring checkpoint %s: %s is missing or has the wrong size",
                            self._step_uri(step), entry["path"])
                return None
        return manifest

    def _prune(self, just_saved: int) -> None:
        """Keep the `keep_last` newest complete checkpoints (always the one just saved).

        Incomplete checkpoints older than the one just saved are abandoned uploads: remove them.
        A checkpoint is deleted manifest first, so it never looks complete while half deleted.
        """
        if self.keep_last == 0:
            return
        listing = self.objects.list("")
        steps = sorted(_steps(listing), reverse=True)
        complete = [s for s in steps if s == just_saved or self._complete_manifest(s, listing) is not None]
        keep = set(complete[:self.keep_last]) | {just_saved}
        doomed = [s for s in complete if s not in keep]
        doomed += [s for s in steps if s not in complete and s < just_saved]
        for step in doomed:
            prefix = step_dir(step) + "/"
            self.objects.delete([prefix + MANIFEST])
            self.objects.delete([k for k in listing if k.startswith(prefix) and k != prefix + MANIFEST])
            log.info("pruned checkpoint %s", self._step_uri(step))


def open_checkpoints(uri: str, keep_last: int = 3, *, multipart_threshold_mb: float = 16,
                     multipart_chunk_mb: float = 16, max_concurrency: int = 8) -> CheckpointStore:
    """A CheckpointStore at `uri` (s3://bucket/prefix, file:///dir or a directory path).

    For S3 this makes one cheap LIST request so a missing bucket, missing credentials, denied
    access or an unreachable endpoint fail now, as a UserError naming the URI, not at the first save.
    """
    transfer = TransferSettings(multipart_threshold=int(multipart_threshold_mb * 1024 * 1024),
                                multipart_chunk=int(multipart_chunk_mb * 1024 * 1024),
                                max_concurrency=max_concurrency)
    objects = open_store(uri, transfer)
    check_access = getattr(objects, "check_access", None)
    if check_access is not None:
        check_access()
    return CheckpointStore(objects, keep_last=keep_last)


def open_checkpoint_uri(uri: str, **store_options) -> tuple[CheckpointStore, CheckpointRef]:
    """A checkpoint named by URI: `<root>/step-000120`, or a store root (its latest checkpoint)."""
    root, _, leaf = uri.rstrip("/").rpartition("/")
    if leaf.startswith("step-") and leaf[5:].isdigit():
        store = open_checkpoints(root, keep_last=0, **store_options)
        step = int(leaf[5:])
        ref = store.get(step)
        if ref is None:
            raise UserError(f"checkpoint {uri} is not complete (no valid manifest) or does not exist")
        return store, ref
    store = open_checkpoints(uri, keep_last=0, **store_options)
    ref = store.latest()
    if ref is None:
        raise UserError(f"no complete checkpoint under {uri} (expected {uri}/{step_dir(0)[:5]}NNNNNN/manifest.json)")
    return store, ref


def _check_step(step: Any) -> None:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise UserError(f"checkpoint step must be an integer >= 0, got {step!r}")


def _check_metadata(step: int, metadata: dict[str, Any]) -> None:
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as err:
        raise UserError(f"checkpoint metadata for step {step} is not JSON-serialisable: {err}") from None


def _files_under(local_dir: Path) -> list[str]:
    if not local_dir.is_dir():
        raise UserError(f"checkpoint source {str(local_dir)!r} is not a directory")
    files = sorted(p.relative_to(local_dir).as_posix() for p in local_dir.rglob("*") if p.is_file())
    if not files:
        raise UserError(f"checkpoint source {str(local_dir)!r} has no files to save")
    if MANIFEST in files:
        raise UserError(f"checkpoint source {str(local_dir)!r} has a top-level {MANIFEST}, a name the "
                        "checkpoint store reserves; rename it or save it in a subdirectory")
    return files


def _steps(listing: dict[str, int]) -> set[int]:
    steps = set()
    for key in listing:
        name = key.split("/", 1)[0]
        match = _STEP_DIR.match(name)
        # Only canonical names: 'step-120' next to 'step-000120' would be a second copy of a step.
        if match and "/" in key and step_dir(int(match.group(1))) == name:
            steps.add(int(match.group(1)))
    return steps


def _valid_manifest(manifest: Any, step: int) -> bool:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("step") != step:
        return False
    files = manifest.get("files")
    if not isinstance(files, list) or not isinstance(manifest.get("metadata"), dict):
        return False
    return all(isinstance(e, dict) and _safe_path(e.get("path")) and isinstance(e.get("size"), int)
               and isinstance(e.get("sha256"), str) for e in files)


def _safe_path(path: Any) -> bool:
    """A manifest path must stay inside the checkpoint (no '..', no absolute paths)."""
    try:
        return isinstance(path, str) and check_key(path) == path and path != MANIFEST
    except ValueError:
        return False
