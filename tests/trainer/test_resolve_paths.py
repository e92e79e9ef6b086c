"""The driver fixes every relative path of a run config: learner ranks run in Ray Train's own
working folder, where a relative path names another file (or none)."""

from __future__ import annotations

from trainer.config import load_run_config
from trainer.preparation import resolve_paths


def test_relative_paths_become_absolute_against_the_drivers_folder_uris_stay(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = resolve_paths(load_run_config(None, [
        "data.source=hcstvg-v2", "data.train_annotations=data/train.json",
        "data.video_root=data/videos", "data.tracks=s3://bucket/tracks.json", "model.path=models/m",
        "model.cache_dir=cache", "output_dir=runs/x", "checkpoint.uri=s3://bucket/ckpt"]))
    assert cfg.data.train_annotations == f"{tmp_path}/data/train.json"
    assert cfg.data.video_root == f"{tmp_path}/data/videos"
    assert cfg.data.heldout_annotations == ""  # unset stays unset
    assert cfg.data.tracks == "s3://bucket/tracks.json"
    assert cfg.model.path == f"{tmp_path}/models/m" and cfg.model.cache_dir == f"{tmp_path}/cache"
    assert cfg.output_dir == f"{tmp_path}/runs/x" and cfg.checkpoint.uri == "s3://bucket/ckpt"


def test_the_tiny_model_and_the_default_checkpoint_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = resolve_paths(load_run_config(None, ["output_dir=runs/x"]))
    assert cfg.model.path == "tiny"
    assert cfg.checkpoint.uri == f"{tmp_path}/runs/x/checkpoints"
