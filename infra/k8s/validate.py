"""Offline validation of Kubernetes manifests.

Built-in kinds are checked with `kubernetes-validate` in strict mode (unknown fields are errors)
against a pinned Kubernetes version. Custom kinds (RayJob, RayCluster, Kueue, Karpenter) are
checked against the `openAPIV3Schema` of their upstream CRD files, kept in `infra/k8s/crds/` (upstream
project, commit and licence of each in its README.md), converted to JSON Schema:
- `x-kubernetes-int-or-string` -> integer or string; `nullable` -> also null;
- strict: objects without `x-kubernetes-preserve-unknown-fields` get `additionalProperties: false`
  (the API server would silently prune such fields; here they are errors);
- a required field with a `default` may be omitted (the API server defaults before validating);
- the top-level `metadata` is not described by CRDs and is checked as a plain object.
CEL rules (`x-kubernetes-validations`) and operator-side checks are not evaluated.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

DEFAULT_K8S_VERSION = "1.34"


class ManifestError(ValueError):
    """A manifest does not validate; the message names the object and the path of the bad field."""


class SchemaUnavailable(LookupError):
    """No schema is known for this kind (no CRD file for it in the schema folder)."""


MIN_KUBERAY_VERSION = "1.5.1"
"""The oldest KubeRay the rendered RayJobs are meant for (authOptions arrived in it)."""
MIN_KUBERAY_SCHEMAS = Path(__file__).resolve().parent / "crds" / f"kuberay-v{MIN_KUBERAY_VERSION}"
"""Its RayJob CRD, to validate against besides the current one (see the README.md there)."""


def default_schema_dir() -> Path:
    """`infra/k8s/crds/`: the upstream CRD files, copied into the repository (see its README.md)."""
    return Path(__file__).resolve().parent / "crds"


def object_name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', '?')}/{meta.get('name', '?')}"


# ---- CRD -> JSON Schema -------------------------------------------------------------------------

def convert_openapi(schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """One openAPIV3Schema node (recursively) as JSON Schema (draft 2020-12 keywords)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "description", "default", "example"):
            continue
        if key == "properties":
            out[key] = {name: convert_openapi(sub, strict) for name, sub in value.items()}
        elif key in ("items", "not") and isinstance(value, dict):
            out[key] = convert_openapi(value, strict)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = convert_openapi(value, strict)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [convert_openapi(sub, strict) for sub in value]
        else:
            out[key] = copy.deepcopy(value)
    if "required" in out and "properties" in schema:
        # The API server applies `default`s before validating, so a defaulted field may be omitted.
        out["required"] = [name for name in out["required"] if "default" not in schema["properties"].get(name, {})]
        if not out["required"]:
            del out["required"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        # CRDs often repeat int-or-string as an anyOf of the two types; one is enough.
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if schema.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    is_object = out.get("type") == "object" or (isinstance(out.get("type"), list) and "object" in out["type"])
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-embedded-resource")
    if strict and is_object and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class CrdSchema:
    group: str
    kind: str
    versions: dict[str, dict[str, Any]]  # version name -> JSON Schema


def load_crd(path: Path, strict: bool = True) -> CrdSchema:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as handle:
        crd = yaml.load(handle, Loader=loader)
    spec = crd["spec"]
    versions = {}
    for version in spec["versions"]:
        schema = convert_openapi(version["schema"]["openAPIV3Schema"], strict)
        schema.setdefault("properties", {})["metadata"] = {"type": "object"}
        versions[version["name"]] = schema
    return CrdSchema(group=spec["group"], kind=spec["names"]["kind"], versions=versions)


@functools.lru_cache(maxsize=8)
def crd_index(schema_dir: str, strict: bool = True) -> dict[tuple[str, str], CrdSchema]:
    """(group, kind) -> schema for every `*.yaml` CRD file in `schema_dir`."""
    folder = Path(schema_dir)
    if not folder.is_dir():
        raise SchemaUnavailable(f"CRD schema folder {folder} does not exist")
    index = {}
    for path in sorted(folder.glob("*.yaml")):
        crd = load_crd(path, strict)
        index[(crd.group, crd.kind)] = crd
    return index


@functools.lru_cache(maxsize=64)
def _validator(schema_dir: str, group: str, kind: str, version: str, strict: bool):
    import jsonschema

    crd = crd_index(schema_dir, strict).get((group, kind))
    if crd is None or version not in crd.versions:
        raise SchemaUnavailable(f"no CRD schema for {kind} in {group}/{version} under {schema_dir}")
    return jsonschema.Draft202012Validator(crd.versions[version])


# ---- validation ---------------------------------------------------------------------------------

def is_builtin(obj: dict[str, Any]) -> bool:
    """Core/built-in API groups (no dot in the group, or a *.k8s.io group other than Kueue's)."""
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." not in group or group.endswith(".k8s.io")


def validate_object(obj: dict[str, Any], k8s_version: str = DEFAULT_K8S_VERSION,
                    schema_dir: Path | None = None, strict: bool = True) -> None:
    """Raise ManifestError if `obj` does not validate, SchemaUnavailable if it cannot be checked."""
    for key in ("apiVersion", "kind", "metadata"):
        if key not in obj:
            raise ManifestError(f"{object_name(obj)}: missing {key}")
    if not (obj["metadata"] or {}).get("name"):
        raise ManifestError(f"{object_name(obj)}: missing metadata.name")
    if is_builtin(obj):
        _validate_builtin(obj, k8s_version, strict)
    else:
        _validate_custom(obj, schema_dir or default_schema_dir(), strict)


def _validate_builtin(obj: dict[str, Any], k8s_version: str, strict: bool) -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError

    try:
        kubernetes_validate.validate(obj, k8s_version, strict=strict)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        raise ManifestError(f"{object_name(obj)}: {path or '<root>'}: {err.message}") from None
    except SchemaNotFoundError as err:
        raise SchemaUnavailable(err.message) from None


def _validate_custom(obj: dict[str, Any], schema_dir: Path, strict: bool) -> None:
    group, _, version = obj["apiVersion"].rpartition("/")
    validator = _validator(str(schema_dir), group, obj["kind"], version, strict)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ManifestError(f"{object_name(obj)}: {path or '<root>'}: {first.message}{more}")


def validate_all(objects: Iterable[dict[str, Any]], k8s_version: str = DEFAULT_K8S_VERSION,
                 schema_dir: Path | None = None, strict: bool = True) -> list[str]:
    """Validate every object; return the names of those that could not be checked (no schema)."""
    unchecked = []
    for obj in objects:
        try:
            validate_object(obj, k8s_version, schema_dir, strict)
        except SchemaUnavailable:
            unchecked.append(object_name(obj))
    return unchecked


def load_manifests(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML stream."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc]
