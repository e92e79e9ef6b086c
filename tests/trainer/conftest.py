"""Fixtures for learner tests: the tiny Qwen2.5-VL checkpoint (rollout.models.tiny) and its items."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # _learner_helpers, also imported by Ray workers


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    from rollout.models.tiny import tiny_model_dir

    return tiny_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def items(tiny_model):
    from _learner_helpers import make_items

    return make_items(tiny_model)
