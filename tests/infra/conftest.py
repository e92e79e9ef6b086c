"""Real servers shared by the infra tests, each started once per session on 127.0.0.1: moto's S3
(storage, plan) and `mlflow server` (tracking, plan)."""

from __future__ import annotations

import pytest

from tests.infra._servers import aws_test_env, mlflow_server, s3_server


@pytest.fixture(scope="session")
def _moto_url():
    """moto S3, started once for the session (the environment is left alone)."""
    with s3_server(set_env=False) as endpoint:
        yield endpoint


@pytest.fixture
def s3_endpoint(_moto_url):
    """The moto endpoint, with AWS_* env pointing boto3 at it for this test only."""
    with aws_test_env(_moto_url):
        yield _moto_url


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory) -> str:
    """URL of an `mlflow server` (sqlite backend; about 10-15 s to start, once per session)."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url
