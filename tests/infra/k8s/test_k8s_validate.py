"""Offline manifest validation: CRD openAPIV3Schema -> JSON Schema conversion, and that both the
built-in and the custom-kind checks catch real mistakes."""

from __future__ import annotations

import copy

import pytest
import jsonschema

from infra.k8s.validate import (ManifestError, SchemaUnavailable, convert_openapi, crd_index, default_schema_dir,
                                validate_object)


def check(schema: dict, value) -> bool:
    return jsonschema.Draft202012Validator(convert_openapi(schema)).is_valid(value)


def test_int_or_string_accepts_both_and_nothing_else():
    schema = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert check(schema, 5) and check(schema, "50%")
    assert not check(schema, 1.5) and not check(schema, [1])


def test_nullable_adds_null():
    assert check({"type": "string", "nullable": True}, None)
    assert not check({"type": "string"}, None)


def test_strict_objects_reject_unknown_fields_unless_preserved():
    closed = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert check(closed, {"a": 1}) and not check(closed, {"a": 1, "b": 2})
    open_ = {"type": "object", "properties": {"a": {"type": "integer"}}, "x-kubernetes-preserve-unknown-fields": True}
    assert check(open_, {"a": 1, "b": 2})
    mapping = {"type": "object", "additionalProperties": {"type": "string"}}
    assert check(mapping, {"any": "thing"}) and not check(mapping, {"any": 1})
    nested = {"type": "object", "properties": {"spec": closed}}
    assert not check(nested, {"spec": {"a": 1, "typo": 1}})
    assert convert_openapi(closed, strict=False).get("additionalProperties") is None


def test_required_fields_with_a_default_may_be_omitted():
    schema = {"type": "object", "required": ["a", "b"],
              "properties": {"a": {"type": "integer", "default": 0}, "b": {"type": "string"}}}
    assert check(schema, {"b": "x"})
    assert not check(schema, {"a": 1})


def test_core_kinds_are_checked_strictly():
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    validate_object(deployment)
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(ManifestError, match=r"Deployment/d: spec.template.spec.containers.0: .*imagePullPolcy"):
        validate_object(typo)
    with pytest.raises(ManifestError, match="missing metadata.name"):
        validate_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})


def test_unknown_custom_kind_is_unavailable_not_valid(tmp_path):
    with pytest.raises(SchemaUnavailable):
        validate_object({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}},
                        schema_dir=tmp_path)


def rayjob() -> dict:
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "r"},
            "spec": {"entrypoint": "stvg train", "shutdownAfterJobFinishes": True,
                     "rayClusterSpec": {"headGroupSpec": {"rayStartParams": {}, "template": {"spec": {
                         "containers": [{"name": "ray-head", "image": "i",
                                         "resources": {"limits": {"cpu": 2, "memory": "8Gi"}}}]}}},
                         "workerGroupSpecs": [{"groupName": "learner", "replicas": 1, "rayStartParams": {},
                                               "template": {"spec": {"containers": [{"name": "w", "image": "i"}]}}}]}}}


def test_crd_index_has_every_kind_we_render():
    kinds = {kind for _, kind in crd_index(str(default_schema_dir()))}
    assert {"RayJob", "RayCluster", "ClusterQueue", "LocalQueue", "ResourceFlavor", "WorkloadPriorityClass",
            "NodePool", "EC2NodeClass"} <= kinds


def test_every_crd_file_in_the_repository_names_its_upstream_commit_and_licence():
    folder = default_schema_dir()
    files = sorted(path.name for path in folder.glob("*.yaml"))
    assert len(files) == 8
    rows = {line.split("|")[1].strip().strip("`"): line for line in (folder / "README.md").read_text().splitlines()
            if line.startswith("| `")}
    assert sorted(rows) == files
    for name, row in rows.items():
        assert "Apache-2.0" in row, name
    commits = [cell for row in rows.values() for cell in row.split("`") if len(cell) == 40]
    assert len(set(commits)) == 3 and all(int(c, 16) >= 0 for c in commits)


@pytest.mark.parametrize("mutate,where", [
    (lambda j: j["spec"].update(entrypointt="x"), "spec: Additional properties"),
    (lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].update(replicas="two"), "replicas: 'two'"),
    (lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
     .update(imagee="x"), "containers.0: Additional properties"),
    (lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].pop("groupName"), "'groupName' is a required"),
    (lambda j: j["spec"]["rayClusterSpec"].update(autoscalerOptions={"upscalingMode": "Fast"}), "'Fast' is not one of"),
])
def test_rayjob_mistakes_are_caught_against_the_crd(mutate, where):
    validate_object(rayjob())
    job = rayjob()
    mutate(job)
    with pytest.raises(ManifestError) as caught:
        validate_object(job)
    assert where in str(caught.value)


def test_kueue_and_karpenter_objects_are_checked():
    flavor = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "gpu"},
              "spec": {"nodeLabels": {"a": "b"}}}
    validate_object(flavor)
    flavor["spec"]["nodeLabel"] = {"a": "b"}
    with pytest.raises(ManifestError, match="nodeLabel"):
        validate_object(flavor)
    old_field = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "q"},
                 "spec": {"cohort": "ml"}}  # v1beta1 spelling; v1beta2 calls it cohortName
    with pytest.raises(ManifestError, match="cohort"):
        validate_object(old_field)
    pool = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "p"},
            "spec": {"template": {"spec": {"requirements": []}}}}
    with pytest.raises(ManifestError, match="nodeClassRef"):
        validate_object(pool)
