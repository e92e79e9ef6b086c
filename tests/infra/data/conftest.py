"""Fixtures for the data tests: a small synthetic set and a real H.264 video with B-frames and
a keyframe every second, so frame sampling has to seek."""

from __future__ import annotations

from pathlib import Path

import pytest
from _data_helpers import write_gradient_video


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    from infra.data.synth import generate

    out = tmp_path_factory.mktemp("synth")
    generate(out, 6, seed=7)
    return out


@pytest.fixture(scope="session")
def gradient_video(tmp_path_factory) -> Path:
    return write_gradient_video(tmp_path_factory.mktemp("video") / "gradient.mp4")


@pytest.fixture
def s3_endpoint():
    """moto's S3 server on 127.0.0.1 with fake credentials in the environment (this test only)."""
    from tests.infra._servers import s3_server

    with s3_server() as endpoint:
        yield endpoint
