"""Fixtures for tracking tests, on the session's `mlflow server` (mlflow_url, tests/infra/conftest.py)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/infra: the tests import _servers


@pytest.fixture
def experiment() -> str:
    """A fresh experiment name, so tests sharing the server do not see each other's runs."""
    return f"test-{uuid.uuid4().hex[:10]}"
