"""The `validate` fixture shared by the chart and kustomize tests: built-in kinds strictly
(Kubernetes 1.34), custom kinds against the CRDs in ../shared/k8s-schemas, skipping (after the
built-in kinds are checked) when that folder is missing."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from infra.k8s.validate import SchemaUnavailable, default_schema_dir, validate_object


@pytest.fixture(scope="session")
def validate() -> Callable[[list[dict[str, Any]]], None]:
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
