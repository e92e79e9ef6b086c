"""The per-worker video cache against moto's S3 server on 127.0.0.1."""

from __future__ import annotations


import pytest

from infra.errors import DataError
from rollout.video_cache import VideoCache


def _put(bucket: str, key: str, data: bytes) -> str:
    import boto3

    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def test_s3_video_is_fetched_once_and_served_locally_after(bucket, tmp_path):
    uri = _put(bucket, "clips/a.mp4", b"A" * 1000)
    cache = VideoCache(tmp_path / "cache", max_bytes=10_000)
    first = cache.local_path(uri)
    second = cache.local_path(uri)
    assert first == second and first.endswith(".mp4")
    assert open(first, "rb").read() == b"A" * 1000
    assert cache.downloads == 1


def test_least_recently_used_video_is_evicted_past_the_byte_budget(bucket, tmp_path):
    a, b, c = (_put(bucket, f"{name}.mp4", name.encode() * 1000) for name in "abc")
    cache = VideoCache(tmp_path / "cache", max_bytes=2500)
    path_a = cache.local_path(a)
    path_b = cache.local_path(b)
    cache.local_path(a)  # a is now more recent than b
    cache.local_path(c)  # 3000 bytes > 2500: b goes
    assert cache.downloads == 3
    assert cache.size_bytes == 2000
    import os

    assert os.path.exists(path_a) and not os.path.exists(path_b)
    cache.local_path(a)
    assert cache.downloads == 3
    cache.local_path(b)
    assert cache.downloads == 4


def test_a_restarted_worker_reuses_files_already_in_its_cache_dir(bucket, tmp_path):
    uri = _put(bucket, "x.mp4", b"x" * 10)
    VideoCache(tmp_path / "cache").local_path(uri)
    again = VideoCache(tmp_path / "cache")
    again.local_path(uri)
    assert again.downloads == 0


def test_local_paths_pass_through_untouched(tmp_path):
    cache = VideoCache(tmp_path / "cache")
    assert cache.local_path("/data/videos/v.mp4") == "/data/videos/v.mp4"
    assert cache.downloads == 0


def test_missing_object_is_a_data_error_naming_the_uri(bucket, tmp_path):
    cache = VideoCache(tmp_path / "cache")
    uri = f"s3://{bucket}/missing.mp4"
    with pytest.raises(DataError, match="missing.mp4"):
        cache.local_path(uri)
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")] == []
