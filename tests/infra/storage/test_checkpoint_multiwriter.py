"""Several writers (one per node, each with its own ZeRO shards) fill one checkpoint; rank 0 commits."""

from __future__ import annotations

from pathlib import Path

from infra.storage import open_checkpoints


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_uploads_stay_invisible_until_commit_and_then_restore_every_writers_files(backend, tmp_path):
    _, uri = backend
    store = open_checkpoints(uri)
    node0 = _write(tmp_path / "node0", {"shards/rank0.pt": b"zero" * 100, "state.json": b"{}"})
    node1 = _write(tmp_path / "node1", {"shards/rank1.pt": b"one" * 100})

    entries = store.upload(4, node0) + store.upload(4, node1)
    assert store.latest() is None  # uploaded but not committed: a crash here loses nothing visible

    store.commit(4, entries, {"step": 4})
    ref = store.latest()
    assert (ref.step, ref.metadata) == (4, {"step": 4})
    out = tmp_path / "restored"
    store.restore(ref, out)
    assert (out / "shards/rank0.pt").read_bytes() == b"zero" * 100
    assert (out / "shards/rank1.pt").read_bytes() == b"one" * 100
    assert (out / "state.json").read_bytes() == b"{}"


def test_get_finds_only_complete_steps_and_restore_can_fetch_one_folder(backend, tmp_path):
    _, uri = backend
    store = open_checkpoints(uri)
    src = _write(tmp_path / "src", {"hf/model.safetensors": b"w" * 64, "shards/rank0.pt": b"s" * 64})
    store.save(2, src, {"step": 2})
    store.upload(3, src)  # never committed
    assert store.get(2).step == 2 and store.get(3) is None and store.get(9) is None

    out = tmp_path / "hf-only"
    store.restore(store.get(2), out, only="hf/")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == ["hf/model.safetensors"]
