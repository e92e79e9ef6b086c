"""Fixtures for tracking tests: one real `mlflow server` (sqlite backend) for the whole session."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/infra, for _servers
from _servers import mlflow_server  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_url(tmp_path_factory) -> str:
    """URL of an `mlflow server` on 127.0.0.1 (about 10-15 s to start, once per session)."""
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture
def experiment() -> str:
    """A fresh experiment name, so tests sharing the server do not see each other's runs."""
    return f"test-{uuid.uuid4().hex[:10]}"
