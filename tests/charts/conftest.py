"""Fixtures for the Helm chart tests: a pinned `helm` (from the aws-cdk kubectl layer wheel),
`helm template` renders parsed into objects, and offline validation of what is rendered."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from infra.k8s.validate import load_manifests
from tests.kube_validation import validate  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "stvg"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
CHECKPOINT_URI = "s3://stvg-test/runs"
"""train.checkpointUri given to every render unless a test sets its own (the chart requires one)."""
NAMESPACE = "ml"


@pytest.fixture(scope="session")
def helm() -> Path:
    from infra.k8s.tools import ToolNotFound, tool_path

    try:
        return tool_path("helm")
    except ToolNotFound as err:
        pytest.skip(f"helm is not available: {err}")


def _command(helm: Path, release: str, values: list[Path], sets: dict[str, Any], set_strings: dict[str, str]):
    cmd = [str(helm), "template", release, str(CHART), "--namespace", NAMESPACE]
    for path in values:
        cmd += ["-f", str(path)]
    for key, value in sets.items():
        cmd += ["--set-json", f"{key}={value}"]
    for key, value in set_strings.items():
        cmd += ["--set-string", f"{key}={value}"]
    return cmd


def _with_checkpoint_uri(values, sets: dict[str, Any] | None) -> dict[str, Any]:
    """The one value a release must always give, unless a values file (every ci/ file names its own)
    or the test sets it."""
    return dict(sets or {}) if values else {"train.checkpointUri": json.dumps(CHECKPOINT_URI), **(sets or {})}


@pytest.fixture(scope="session")
def render(helm) -> Callable[..., list[dict[str, Any]]]:
    """render(values=[paths], sets={key: json}, release='t1') -> rendered objects; fails the test on error."""
    cache: dict[tuple, list[dict[str, Any]]] = {}

    def _render(values: list[Path] = (), sets: dict[str, Any] | None = None, release: str = "t1",
                set_strings: dict[str, str] | None = None) -> list[dict[str, Any]]:
        sets = _with_checkpoint_uri(values, sets)
        key = (tuple(map(str, values)), tuple(sorted((sets or {}).items())), release,
               tuple(sorted((set_strings or {}).items())))
        if key not in cache:
            done = subprocess.run(_command(helm, release, list(values), sets or {}, set_strings or {}),
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"helm template failed:\n{done.stderr}"
            cache[key] = load_manifests(done.stdout)
        return cache[key]

    return _render


@pytest.fixture(scope="session")
def render_error(helm) -> Callable[..., str]:
    """render_error(values=[...], sets={...}) -> helm's stderr; fails the test if the render succeeds."""

    def _render_error(values: list[Path] = (), sets: dict[str, Any] | None = None, release: str = "t1",
                      set_strings: dict[str, str] | None = None) -> str:
        sets = _with_checkpoint_uri(values, sets)
        done = subprocess.run(_command(helm, release, list(values), sets, set_strings or {}),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0, "helm template accepted values it should reject"
        return done.stderr

    return _render_error
