"""Fixtures for storage tests: one moto S3 server per session, a fresh bucket per test."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/infra, for _servers
from _servers import aws_test_env, s3_server  # noqa: E402


@pytest.fixture(scope="session")
def _moto_url():
    """moto S3 on 127.0.0.1, started once for the session (the environment is left alone)."""
    with s3_server(set_env=False) as endpoint:
        yield endpoint


@pytest.fixture
def s3_endpoint(_moto_url):
    """The moto endpoint, with AWS_* env pointing boto3 at it for this test only."""
    with aws_test_env(_moto_url):
        yield _moto_url


@pytest.fixture
def bucket(s3_endpoint) -> str:
    """A new empty bucket (moto keeps buckets for the whole session, so names are unique)."""
    import boto3

    name = f"ckpt-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> tuple[str, str]:
    """(kind, checkpoint root URI) for each backend: a local directory and an S3 prefix."""
    if request.param == "local":
        return "local", str(tmp_path / "store")
    return "s3", f"s3://{request.getfixturevalue('bucket')}/runs/exp1"
