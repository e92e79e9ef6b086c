"""Bad values fail `helm template` with a message naming the value: values.schema.json for types,
ranges and unknown keys; the stvg.validateConfig helper for rules across values."""

from __future__ import annotations

import json

import pytest


@pytest.mark.parametrize("sets,expected", [
    ({"train.learner.replicas": -1}, "replicas"),
    ({"rewards.replicas": 0}, "replicas"),
    ({"replicaCount": 3}, "replicaCount"),
    ({"train.learner.gpus": 8}, "gpus"),
    ({"securityContext.runAsUser": 0}, "runAsUser"),
    ({"image.pullPolicy": "Sometimes"}, "pullPolicy"),
    ({"train.learner.cpu": "lots"}, "cpu"),
    ({"train.learner.tolerations": [{"key": "x", "operator": "Maybe"}]}, "operator"),
    ({"train.overrides": ["grpo.group_size=8", "it's"]}, "overrides"),
    ({"train.jobName": "Has_Upper"}, "jobName"),
    ({"train.jobName": "a" * 48}, "jobName"),
    ({"train.rayAuth": "password"}, "rayAuth"),
    ({"networkPolicy.mlflow.fromCidrs": ["the office"]}, "fromCidrs"),
    ({"networkPolicy.rewards.fromNamespaces": ["Monitoring"]}, "fromNamespaces"),
    ({"networkPolicy.kuberayOperator.namespace": "ray_system"}, "namespace"),
    ({"networkPolicy.egress.open": True}, "open"),
])
def test_schema_rejects_bad_values(render_error, sets, expected):
    error = render_error(sets={key: json.dumps(value) for key, value in sets.items()})
    assert "values don't meet the specifications of the schema" in error
    assert expected in error


@pytest.mark.parametrize("sets,expected", [
    ({"kueue.enabled": True}, "kueue.queueName"),
    ({"kueue.priorityClass": "stvg-high"}, "kueue.priorityClass is set but kueue.enabled is false"),
    ({"kueue.enabled": True, "kueue.queueName": "q", "train.shutdownAfterJobFinishes": False},
     "train.shutdownAfterJobFinishes"),
    ({"train.learner.minReplicas": 2}, "train.learner: need minReplicas <= replicas <= maxReplicas, got 2 <= 1 <= 1"),
    ({"train.rollout.maxReplicas": 3}, "train.rollout.minReplicas/maxReplicas differ"),
    ({"fullnameOverride": "x" * 40, "train.jobName": ""}, None),
    ({"train.learner.shmGiB": 64}, "train.learner.shmGiB=64 must be smaller than train.learner.memory=64Gi"),
    ({"train.runConfig.learner.resources_per_worker.stvg_learner": None}, "learner.resources_per_worker.stvg_learner"),
    ({"train.runConfigYaml": "rollout: [unclosed"}, "train.runConfigYaml is not valid YAML"),
    ({"train.runConfig.learner.num_workers": 3},
     "train.learner: the run config asks for 3 learner workers x 1 stvg_learner but the group provides 1"),
    ({"rewards.pdb.minAvailable": 2}, "rewards.pdb.minAvailable=2 must be below the replica floor (2)"),
    ({"rewards.autoscaling.minReplicas": 5, "rewards.autoscaling.maxReplicas": 3}, "exceeds maxReplicas=3"),
    ({"mlflow.enabled": True, "mlflow.artifactsDestination": "s3://b/m"}, "mlflow.backendStore.existingSecret"),
    ({"mlflow.enabled": True, "mlflow.backendStore.existingSecret": "db"}, "mlflow.artifactsDestination"),
    ({"rbac.create": True}, "rbac.rules"),
    ({"train.checkpointUri": ""}, "train.checkpointUri: name where checkpoints go, e.g. s3://"),
    ({"train.checkpointUri": "/data/ckpt"},
     'train.checkpointUri="/data/ckpt" must be s3://bucket/prefix or a folder under a writable train.sharedVolumes'),
    ({"train.checkpointUri": "/models/ckpt",
      "train.sharedVolumes": [{"name": "models", "mountPath": "/models", "claimName": "w", "readOnly": True}]},
     'train.checkpointUri="/models/ckpt" must be'),
    ({"train.checkpointUri": "/shared/ckpt",
      "train.sharedVolumes": [{"name": "shared", "mountPath": "/shared", "claimName": "nfs"}]}, None),
])
def test_validate_config_fails_naming_the_value(render, render_error, sets, expected):
    sets = {key: json.dumps(value) for key, value in sets.items()}
    if expected is None:  # e.g. a long fullname that still fits KubeRay's 47 characters
        assert render(sets=sets)
        return
    error = render_error(sets=sets)
    assert expected in error, error


def test_a_release_name_that_is_no_dns_1035_label_is_refused(render_error):
    # Helm accepts release names starting with a digit; KubeRay does not accept such RayJob names.
    error = render_error(release="9lives")
    assert "train.jobName" in error and "DNS-1035" in error
