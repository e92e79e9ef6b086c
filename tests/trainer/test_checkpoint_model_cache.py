"""`model.path=<checkpoint>` downloads the checkpoint's hf/ model once into model.cache_dir; the
cache follows the checkpoint's contents, not only its URI."""

from __future__ import annotations

import json

from infra.storage import open_checkpoints
from rollout.models.source import checkpoint_model


def _save(store, step: int, tmp_path, version: int) -> str:
    src = tmp_path / f"src-{version}"
    (src / "hf").mkdir(parents=True)
    (src / "hf" / "config.json").write_text(json.dumps({"version": version}))
    (src / "hf" / "model.safetensors").write_bytes(bytes([version]) * 64)
    (src / "zero").mkdir()
    (src / "zero" / "shard.pt").write_bytes(b"optimizer state")
    return store.save(step, src, {"step": step})


def test_the_same_checkpoint_is_downloaded_once(tmp_path):
    store = open_checkpoints(str(tmp_path / "ckpt"))
    uri = _save(store, 2, tmp_path, version=1)
    first = checkpoint_model(uri, tmp_path / "cache")
    marker = first / "touched"
    marker.write_text("x")  # a second call must not rebuild the folder
    second = checkpoint_model(uri, tmp_path / "cache")
    assert second == first and marker.is_file()
    assert json.loads((first / "config.json").read_text()) == {"version": 1}
    assert not (first.parent / "zero").exists()  # only hf/ is fetched


def test_a_step_saved_again_is_fetched_anew(tmp_path):
    store = open_checkpoints(str(tmp_path / "ckpt"))
    uri = _save(store, 2, tmp_path, version=1)
    old = checkpoint_model(uri, tmp_path / "cache")
    assert _save(store, 2, tmp_path, version=2) == uri  # e.g. the step re-run after a resume
    new = checkpoint_model(uri, tmp_path / "cache")
    assert new != old
    assert json.loads((new / "config.json").read_text()) == {"version": 2}
    assert (new / "model.safetensors").read_bytes() == bytes([2]) * 64
