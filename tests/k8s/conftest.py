"""Fixtures for the kustomize tests: a pinned `kubectl` (from the aws-cdk kubectl layer wheel),
`kubectl kustomize` builds parsed into objects, and offline validation of what is built."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from infra.k8s.validate import load_manifests
from tests.kube_validation import validate  # noqa: F401  (fixture)


@pytest.fixture(scope="session")
def kubectl() -> Path:
    from infra.k8s.tools import ToolNotFound, tool_path

    try:
        return tool_path("kubectl")
    except ToolNotFound as err:
        pytest.skip(f"kubectl is not available: {err}")


@pytest.fixture(scope="session")
def build(kubectl) -> Callable[[Path], list[dict[str, Any]]]:
    """build(kustomization dir) -> objects; fails the test if kustomize fails."""
    cache: dict[Path, list[dict[str, Any]]] = {}

    def _build(folder: Path) -> list[dict[str, Any]]:
        if folder not in cache:
            done = subprocess.run([str(kubectl), "kustomize", str(folder)], capture_output=True, text=True,
                                  timeout=60)
            assert done.returncode == 0, f"kubectl kustomize {folder} failed:\n{done.stderr}"
            cache[folder] = load_manifests(done.stdout)
        return cache[folder]

    return _build
