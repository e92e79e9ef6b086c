"""Fixtures for storage tests: a fresh bucket per test on the session's moto S3 server
(tests/infra/conftest.py)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/infra: the tests import _servers


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
