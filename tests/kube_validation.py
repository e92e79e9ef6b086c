"""The `validate` fixture shared by the chart and kustomize tests: built-in kinds strictly
(Kubernetes 1.34, schemas from the kubernetes-validate package), custom kinds against the CRDs in
infra/k8s/crds/. An object whose kind has no schema fails the test: nothing is left unchecked."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from infra.k8s.validate import default_schema_dir, validate_object


@pytest.fixture(scope="session")
def validate() -> Callable[[list[dict[str, Any]]], None]:
    schema_dir = default_schema_dir()

    def _validate(objects: list[dict[str, Any]]) -> None:
        for obj in objects:
            validate_object(obj, schema_dir=schema_dir)

    return _validate
