"""Servers and caches shared by the end-to-end tests (started once per session)."""

from __future__ import annotations

import pytest

from tests.e2e._logged_names import LoggedNames
from tests.infra._servers import mlflow_server, s3_server
from tests.rewards._reward_servers import reward_server


def pytest_collection_modifyitems(items):
    """The docs check needs every run of the session: it goes last."""
    last = [item for item in items if item.module.__name__.endswith("test_tracking_docs")]
    items[:] = [item for item in items if item not in last] + last


@pytest.fixture(scope="session")
def logged_names() -> LoggedNames:
    """Every MLflow run an end-to-end test starts is checked against docs/tracking.md here."""
    return LoggedNames()


@pytest.fixture(scope="session")
def e2e_cache(tmp_path_factory):
    """model.cache_dir shared by every job of the session: the tiny model and synthetic videos are
    built once."""
    return tmp_path_factory.mktemp("stvg-cache")


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint():
    with s3_server(set_env=False) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def reward_url():
    with reward_server("--workers", "1") as server:
        yield server.url
