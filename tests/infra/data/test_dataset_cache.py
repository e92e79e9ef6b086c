"""Cache files beside a dataset, in the dataset's own storage: S3 datasets keep them in S3, so
"computed once" holds across pods and reruns (moto's S3 server on 127.0.0.1)."""

from __future__ import annotations

import uuid

import boto3
import pytest

from infra.data.dataset_cache import AnnotationFile, beside, fetch_annotations


@pytest.fixture
def bucket(s3_endpoint) -> str:
    name = f"data-{uuid.uuid4().hex[:10]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def test_a_cache_beside_s3_annotations_is_stored_in_s3_and_read_back_on_another_node(bucket, tmp_path):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="hcstvg/train.json", Body=b"{}")
    first = fetch_annotations(f"s3://{bucket}/hcstvg/train.json", tmp_path / "node-a")
    cache = beside(first, "train.tracks-yolo.json", tmp_path / "node-a")
    assert cache.remote == f"s3://{bucket}/hcstvg/train.tracks-yolo.json"
    with cache.synced() as path:
        assert not path.exists()
        path.write_text('{"v": 1}')
    assert s3.get_object(Bucket=bucket, Key="hcstvg/train.tracks-yolo.json")["Body"].read() == b'{"v": 1}'

    second = fetch_annotations(f"s3://{bucket}/hcstvg/train.json", tmp_path / "node-b")  # a fresh pod
    again = beside(second, "train.tracks-yolo.json", tmp_path / "node-b")
    with again.synced() as path:
        assert path.read_text() == '{"v": 1}'
    reflection = again.sibling("train.reflection.json")
    assert reflection.remote == f"s3://{bucket}/hcstvg/train.reflection.json"


def test_an_unchanged_cache_is_not_uploaded_again(bucket, tmp_path):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="d/train.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="d/train.difficulty.json", Body=b"scores")
    cache = beside(fetch_annotations(f"s3://{bucket}/d/train.json", tmp_path), "train.difficulty.json", tmp_path)
    s3.delete_object(Bucket=bucket, Key="d/train.difficulty.json")
    with cache.synced() as path:  # pulled nothing (deleted), local copy absent: nothing to push
        assert not path.exists()
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="d/train.difficulty.json")


def test_local_annotations_keep_caches_beside_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.json").write_text("{}")
    local = AnnotationFile(str(data / "train.json"), data / "train.json")
    cache = beside(local, "x.json", tmp_path / "cache")
    assert (cache.path, cache.remote) == (data / "x.json", "")


def test_what_a_failed_pass_wrote_is_stored_for_a_rerun_on_another_node(bucket, tmp_path):
    """Tracking or curation scores part of a split, then fails: the part it wrote is in S3, so the
    rerun, on whatever pod, goes on from there instead of starting over."""
    s3 = boto3.client("s3")
    s3.put_object(Bucket=bucket, Key="hcstvg/train.json", Body=b"{}")
    cache = beside(fetch_annotations(f"s3://{bucket}/hcstvg/train.json", tmp_path / "node-a"),
                   "train.difficulty.json", tmp_path / "node-a")
    with pytest.raises(RuntimeError, match="worker lost"):
        with cache.synced() as path:
            path.write_text('{"s0": 0.5}')
            raise RuntimeError("worker lost")
    assert s3.get_object(Bucket=bucket, Key="hcstvg/train.difficulty.json")["Body"].read() == b'{"s0": 0.5}'
