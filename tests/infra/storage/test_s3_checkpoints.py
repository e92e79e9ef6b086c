"""S3-only behaviour: multipart uploads, parallel ranged downloads, and one clear error per failure."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import boto3
import pytest

from infra.errors import UserError
from infra.storage import open_checkpoints

MIB = 1024 * 1024


def _etag(bucket: str, key: str) -> str:
    return boto3.client("s3").head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


def test_file_over_the_threshold_goes_up_in_parts_and_comes_back_identical(bucket, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    big = os.urandom(11 * MIB)
    (src / "big.bin").write_bytes(big)
    (src / "small.json").write_bytes(b"{}")
    store = open_checkpoints(f"s3://{bucket}/run", multipart_threshold_mb=1, multipart_chunk_mb=5,
                             max_concurrency=4)
    store.save(1, src, {})

    # 11 MiB in 5 MiB parts is 3 parts; S3 marks a multipart object's ETag with "-<parts>".
    assert _etag(bucket, "run/step-000001/big.bin").endswith("-3")
    assert "-" not in _etag(bucket, "run/step-000001/small.json")
    out = tmp_path / "out"
    store.restore(store.latest(), out)
    assert (out / "big.bin").read_bytes() == big


def test_file_under_the_threshold_goes_up_in_one_request(bucket, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "big.bin").write_bytes(os.urandom(11 * MIB))
    open_checkpoints(f"s3://{bucket}/run", multipart_threshold_mb=16).save(1, src, {})
    assert "-" not in _etag(bucket, "run/step-000001/big.bin")


def test_missing_bucket_is_one_clear_error_naming_the_uri(s3_endpoint):
    with pytest.raises(UserError, match=r"bucket 'no-such-bucket' does not exist .*s3://no-such-bucket/x"):
        open_checkpoints("s3://no-such-bucket/x")


def test_missing_credentials_are_one_clear_error_naming_the_uri(bucket, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(UserError, match=rf"no usable AWS credentials for s3://{bucket}/run"):
        open_checkpoints(f"s3://{bucket}/run")


def test_unreachable_endpoint_is_one_clear_error_naming_the_uri(s3_endpoint, monkeypatch):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _servers import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(UserError, match=r"cannot reach the S3 endpoint for s3://somebucket/run"):
        open_checkpoints("s3://somebucket/run")


@pytest.mark.slow
def test_rejected_credentials_are_one_clear_access_denied_error():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _servers import s3_server

    with s3_server(enforce_auth=True):  # moto checks keys: the fake test keys are unknown
        with pytest.raises(UserError, match=r"access denied to s3://secure-bucket/run"):
            open_checkpoints("s3://secure-bucket/run")


def test_unsupported_scheme_is_rejected_with_the_allowed_ones():
    with pytest.raises(UserError, match=r"unsupported scheme 'gs'.*s3"):
        open_checkpoints("gs://bucket/x")
