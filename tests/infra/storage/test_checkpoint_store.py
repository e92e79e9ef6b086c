"""CheckpointStore on a local directory and on S3 (moto over HTTP), checked against the raw storage."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from infra.storage import ChecksumError, CheckpointRef, open_checkpoints
from infra.storage.objects import LocalStore


# --- independent access to what is actually stored (boto3 / os, not our store) ---------------

def _split_s3(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    return bucket, prefix


def raw_objects(kind: str, uri: str) -> dict[str, bytes]:
    """Every stored object under the root: relative key -> bytes."""
    if kind == "local":
        root = Path(uri)
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    import boto3

    s3 = boto3.client("s3")
    bucket, prefix = _split_s3(uri)
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", ()):
            out[obj["Key"][len(prefix) + 1:]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def raw_put(kind: str, uri: str, key: str, data: bytes) -> None:
    if kind == "local":
        path = Path(uri, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    import boto3

    bucket, prefix = _split_s3(uri)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=data)


def make_dir(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def hand_manifest(step: int, files: dict[str, bytes], metadata: dict) -> bytes:
    """A manifest written by the test, following the documented schema (docs/storage.md)."""
    return json.dumps({
        "format": "stvg-checkpoint/1", "step": step, "created": "2026-01-01T00:00:00+00:00",
        "total_bytes": sum(len(d) for d in files.values()),
        "files": [{"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files.items()],
        "metadata": metadata,
    }).encode()


FILES = {
    "model/weights.bin": os.urandom(300_000),
    "model/config.json": b'{"hidden": 64}',
    "optimizer/rank0.pt": os.urandom(70_001),
    "empty.txt": b"",
}


# --- round trip and layout ---------------------------------------------------------------------

def test_save_then_restore_gives_byte_identical_files_and_metadata(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri)
    src = make_dir(tmp_path / "src", FILES)
    meta = {"mlflow_run_id": "abc123", "epoch": 2, "nested": {"lr": 1e-5}}

    returned = store.save(12, src, meta)

    assert returned == f"{uri}/step-000012"
    ref = store.latest()
    assert (ref.step, ref.metadata) == (12, meta)
    out = tmp_path / "out"
    assert store.restore(ref, out) == meta
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert got == FILES


def test_layout_is_step_directory_with_files_and_a_manifest_of_sizes_and_sha256(backend, tmp_path):
    kind, uri = backend
    open_checkpoints(uri).save(7, make_dir(tmp_path / "src", FILES), {"k": 1})

    stored = raw_objects(kind, uri)
    assert set(stored) == {f"step-000007/{p}" for p in FILES} | {"step-000007/manifest.json"}
    manifest = json.loads(stored["step-000007/manifest.json"])
    assert manifest["step"] == 7 and manifest["metadata"] == {"k": 1}
    assert manifest["format"] == "stvg-checkpoint/1" and manifest["created"].startswith("20")
    assert manifest["total_bytes"] == 300_000 + 14 + 70_001
    assert {f["path"]: (f["size"], f["sha256"]) for f in manifest["files"]} == {
        p: (len(d), hashlib.sha256(d).hexdigest()) for p, d in FILES.items()}


def test_latest_is_none_for_an_empty_location(backend):
    _, uri = backend
    assert open_checkpoints(uri).latest() is None


def test_manifest_is_the_last_object_written(tmp_path):
    class RecordingStore(LocalStore):  # the real local backend, recording the order of writes
        def __init__(self, root):
            super().__init__(root)
            self.written: list[str] = []

        def put_files(self, items):
            super().put_files(items)
            self.written += [key for _, key in items]

    from infra.storage.checkpoints import CheckpointStore

    objects = RecordingStore(tmp_path / "store")
    CheckpointStore(objects).save(3, make_dir(tmp_path / "src", FILES), {})
    assert objects.written[-1] == "step-000003/manifest.json"
    assert sorted(objects.written[:-1]) == sorted(f"step-000003/{p}" for p in FILES)


# --- half-written checkpoints ----------------------------------------------------------------

def test_files_uploaded_without_manifest_are_not_a_checkpoint(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri)
    store.save(3, make_dir(tmp_path / "src", FILES), {"step": 3})
    for rel, data in FILES.items():  # an upload of step 5 interrupted before its manifest
        raw_put(kind, uri, f"step-000005/{rel}", data)

    assert store.latest().step == 3


def test_manifest_listing_a_missing_file_is_not_a_checkpoint(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri)
    store.save(3, make_dir(tmp_path / "src", FILES), {"step": 3})
    partial = dict(FILES)
    raw_put(kind, uri, "step-000009/manifest.json", hand_manifest(9, partial, {"step": 9}))
    for rel in list(FILES)[:-2]:  # the last two listed files never arrived
        raw_put(kind, uri, f"step-000009/{rel}", FILES[rel])

    assert store.latest().step == 3


def test_manifest_with_a_truncated_file_is_not_a_checkpoint(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri)
    store.save(3, make_dir(tmp_path / "src", FILES), {"step": 3})
    store.save(6, make_dir(tmp_path / "src", FILES), {"step": 6})
    raw_put(kind, uri, "step-000006/model/weights.bin", FILES["model/weights.bin"][:1000])

    assert store.latest().step == 3


def test_hand_written_manifest_with_all_files_is_picked_up(backend, tmp_path):
    # The other side of the two tests above: the schema in the docs is what latest() reads.
    kind, uri = backend
    files = {"a.bin": b"abc", "d/b.bin": b"0123456789"}
    for rel, data in files.items():
        raw_put(kind, uri, f"step-000004/{rel}", data)
    raw_put(kind, uri, "step-000004/manifest.json", hand_manifest(4, files, {"who": "test"}))

    store = open_checkpoints(uri)
    latest = store.latest()
    assert (latest.uri, latest.step, latest.metadata) == (f"{store.uri}/step-000004", 4, {"who": "test"})
    assert len(latest.fingerprint) == 16  # a digest of the listed files, for caches of the checkpoint


def test_local_manifest_temp_file_left_by_a_crash_is_not_a_checkpoint(tmp_path):
    root = make_dir(tmp_path / "store", {f"step-000002/{p}": d for p, d in FILES.items()})
    (root / "step-000002" / ".manifest.json.tmp-1a2b3c4d").write_bytes(hand_manifest(2, FILES, {}))
    assert open_checkpoints(str(root)).latest() is None


def test_saving_an_existing_step_again_replaces_it_cleanly(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri)
    store.save(5, make_dir(tmp_path / "v1", {"a.bin": b"old a", "b.bin": b"only in v1"}), {"v": 1})
    store.save(5, make_dir(tmp_path / "v2", {"a.bin": b"new a!", "c.bin": b"only in v2"}), {"v": 2})

    stored = raw_objects(kind, uri)
    assert set(stored) == {"step-000005/a.bin", "step-000005/c.bin", "step-000005/manifest.json"}
    assert stored["step-000005/a.bin"] == b"new a!"
    out = tmp_path / "out"
    assert store.restore(store.latest(), out) == {"v": 2}
    assert (out / "a.bin").read_bytes() == b"new a!" and not (out / "b.bin").exists()


# --- pruning -------------------------------------------------------------------------------------

def test_keep_last_prunes_the_oldest_complete_checkpoints(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri, keep_last=2)
    src = make_dir(tmp_path / "src", {"w.bin": b"weights"})
    for step in (10, 20, 30, 40):
        store.save(step, src, {"step": step})

    dirs = {key.split("/")[0] for key in raw_objects(kind, uri)}
    assert dirs == {"step-000030", "step-000040"}
    assert store.latest().step == 40


def test_prune_removes_older_half_written_checkpoints_but_keeps_newer_ones(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri, keep_last=5)
    src = make_dir(tmp_path / "src", {"w.bin": b"weights"})
    store.save(1, src, {})
    raw_put(kind, uri, "step-000002/w.bin", b"interrupted")  # abandoned before its manifest
    raw_put(kind, uri, "step-000009/w.bin", b"from a later crashed attempt")
    store.save(3, src, {})

    dirs = {key.split("/")[0] for key in raw_objects(kind, uri)}
    assert dirs == {"step-000001", "step-000003", "step-000009"}


def test_keep_last_zero_keeps_everything(tmp_path):
    store = open_checkpoints(str(tmp_path / "store"), keep_last=0)
    src = make_dir(tmp_path / "src", {"w.bin": b"w"})
    for step in range(5):
        store.save(step, src, {})
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == [f"step-00000{i}" for i in range(5)]


# --- corruption and bad input --------------------------------------------------------------------

def test_corrupted_object_fails_restore_with_an_error_naming_the_file(backend, tmp_path):
    kind, uri = backend
    store = open_checkpoints(uri)
    store.save(8, make_dir(tmp_path / "src", FILES), {})
    flipped = bytearray(FILES["optimizer/rank0.pt"])
    flipped[1234] ^= 0xFF  # same size, so only the checksum can tell
    raw_put(kind, uri, "step-000008/optimizer/rank0.pt", bytes(flipped))

    ref = store.latest()
    assert ref.step == 8  # sizes still match: latest() does not read file contents
    with pytest.raises(ChecksumError, match=r"step-000008/optimizer/rank0\.pt"):
        store.restore(ref, tmp_path / "out")


def test_restore_of_a_deleted_checkpoint_names_it(backend, tmp_path):
    _, uri = backend
    store = open_checkpoints(uri)
    with pytest.raises(Exception, match=r"step-000004.*manifest"):
        store.restore(CheckpointRef(f"{uri}/step-000004", 4, {}), tmp_path / "out")


def test_save_rejects_bad_sources_before_writing_anything(tmp_path):
    from infra.errors import UserError

    store = open_checkpoints(str(tmp_path / "store"))
    with pytest.raises(UserError, match="not a directory"):
        store.save(1, tmp_path / "missing", {})
    with pytest.raises(UserError, match="no files"):
        store.save(1, make_dir(tmp_path / "empty", {}), {})
    with pytest.raises(UserError, match="manifest.json"):
        store.save(1, make_dir(tmp_path / "clash", {"manifest.json": b"{}"}), {})
    with pytest.raises(UserError, match="JSON"):
        store.save(1, make_dir(tmp_path / "ok", {"a": b"1"}), {"path": Path("x")})
    assert not (tmp_path / "store").exists()
