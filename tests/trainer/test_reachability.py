"""On a multi-node run the driver refuses, before any worker starts, every artifact another node
could not reach: one line naming the key and the fix."""

from __future__ import annotations

import dataclasses

import pytest

from infra.data.sample import GroundingSample
from infra.errors import UserError
from rollout.models.source import ModelSource
from trainer.config import load_run_config
from trainer.preparation import resolve_paths
from trainer.reachability import check_reachable, is_multi_node

TINY = ModelSource("tiny", "tiny", "/cache")


def _sample(video: str) -> GroundingSample:
    return GroundingSample(id="v", video=video, fps=5.0, frame_count=100, width=160, height=120, query="q",
                           span_frames=(0, 10), span_seconds=(0.0, 2.0))


def _cfg(tmp_path, monkeypatch, *overrides):
    monkeypatch.chdir(tmp_path)
    return resolve_paths(load_run_config(None, ["checkpoint.uri=s3://bucket/ckpt", *overrides]))


def test_multi_node_is_detected_from_an_existing_ray_cluster_or_said_explicitly(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert not is_multi_node(_cfg(tmp_path, monkeypatch))
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.2:6379")
    assert is_multi_node(_cfg(tmp_path, monkeypatch))
    assert not is_multi_node(_cfg(tmp_path, monkeypatch, "cluster.multi_node=false"))
    monkeypatch.delenv("RAY_ADDRESS")
    assert is_multi_node(_cfg(tmp_path, monkeypatch, "cluster.multi_node=true"))


def test_a_local_checkpoint_folder_is_refused_on_a_multi_node_run_only(tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    single = _cfg(tmp_path, monkeypatch, "checkpoint.uri=runs/x/ckpt")
    check_reachable(single, TINY, [])  # one machine: fine
    multi = dataclasses.replace(single, cluster=dataclasses.replace(single.cluster, multi_node="true"))
    with pytest.raises(UserError) as err:
        check_reachable(multi, TINY, [])
    message = str(err.value)
    assert message.startswith(f"checkpoint.uri={tmp_path}/runs/x/ckpt is a folder on the driver's node only")
    assert "s3://bucket/prefix" in message and "cluster.shared_paths" in message and "\n" not in message


def test_paths_under_a_declared_shared_mount_and_s3_uris_pass(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, monkeypatch, "cluster.multi_node=true", "cluster.shared_paths=[/mnt/shared]",
               "checkpoint.uri=/mnt/shared/runs/ckpt")
    model = ModelSource("folder", "/mnt/shared/models/qwen", "/cache")
    check_reachable(cfg, model, [_sample("/mnt/shared/videos/a.mp4"), _sample("s3://b/v.mp4"),
                                 _sample("synthetic://videos2-seed1-w160-h120-fps5/videos/a.mp4")])
    # a path that merely starts with the same letters is not under the mount
    with pytest.raises(UserError, match=r"^model.path=/mnt/shared-other/m is a folder on the driver's node only"):
        check_reachable(cfg, ModelSource("folder", "/mnt/shared-other/m", "/cache"), [])


def test_local_videos_and_resume_checkpoints_are_refused_naming_their_key(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, monkeypatch, "cluster.multi_node=true", "data.source=hcstvg-v2",
               "data.train_annotations=s3://b/train.json", "data.video_root=/data/videos")
    with pytest.raises(UserError, match=r"^data.video_root: video /data/videos/a.mp4 is on this node only"):
        check_reachable(cfg, TINY, [_sample("/data/videos/a.mp4")])
    (tmp_path / "old").mkdir()
    resumed = _cfg(tmp_path, monkeypatch, "cluster.multi_node=true", f"resume={tmp_path / 'old'}")
    with pytest.raises(UserError, match=r"^resume=.*/old is a folder on the driver's node only"):
        check_reachable(resumed, TINY, [])


def test_shared_paths_must_be_absolute(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="cluster.shared_paths entry 'mnt/x' must be an absolute path"):
        _cfg(tmp_path, monkeypatch, "cluster.shared_paths=[mnt/x]")
