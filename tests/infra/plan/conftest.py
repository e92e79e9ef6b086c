"""Servers for the plan tests: moto S3 (a model config under an s3:// prefix) and `mlflow server`
(the plan logged as params), each started once per session on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.infra._servers import aws_test_env, mlflow_server, s3_server


@pytest.fixture(scope="session")
def _moto_url():
    with s3_server(set_env=False) as endpoint:
        yield endpoint


@pytest.fixture
def s3_endpoint(_moto_url):
    """The moto endpoint, with AWS_* env pointing boto3 at it for this test only."""
    with aws_test_env(_moto_url):
        yield _moto_url


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url
