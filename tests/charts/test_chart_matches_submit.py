"""The chart and `stvg submit` (infra/k8s/rayjob.py) are two renderings of the same RayJob and of the
NetworkPolicy around its pods: for equivalent inputs their specs must be identical, so a fix in one
cannot silently miss the other."""

from __future__ import annotations

import dataclasses
import json

from infra.k8s.config import (ClusterConfig, HeadConfig, LearnerGroupConfig, RolloutGroupConfig, SecretsConfig,
                              SharedVolume, Toleration)
import pytest

from infra.k8s.rayjob import render_network_policy, render_rayjob_spec

GPU_TAINT = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def chart_values() -> dict:
    group = {"nodeSelector": {"stvg.io/node-pool": "gpu"}, "tolerations": GPU_TAINT}
    return {
        "serviceAccount.create": False, "serviceAccount.name": "trainer",
        "rewards.enabled": False,
        "mlflow.externalUri": "http://mlflow.mlops.svc:5000",
        "s3.endpointUrl": "http://minio:9000", "s3.region": "eu-west-1", "s3.existingSecret": "s3-keys",
        "train.extraEnvFromSecrets": ["hf-token"],
        "train.env": {"NCCL_SOCKET_IFNAME": "eth0", "A_FLAG": "1"},
        "train.backoffLimit": 2, "train.activeDeadlineSeconds": 7200, "train.ttlSecondsAfterFinished": 300,
        "train.autoscaling.enabled": True,
        "imagePullSecrets": ["regcred"],
        "image.repository": "registry.example.com/stvg-train", "image.tag": "1.2.3", "image.pullPolicy": "Always",
        "train.head": {"cpu": "6", "memory": "24Gi", "ephemeralStorage": "20Gi", "shmGiB": 3, "nodeSelector": {},
                       "tolerations": []},
        "train.learner": {"replicas": 2, "minReplicas": 1, "maxReplicas": 3, "gpusPerWorker": 8, "slots": 0,
                          "cpu": "64", "memory": "512Gi", "ephemeralStorage": "400Gi", "shmGiB": 64, **group},
        "train.rollout": {"replicas": 1, "minReplicas": 1, "maxReplicas": 2, "gpusPerWorker": 4, "slots": 8,
                          "cpu": "32", "memory": "256Gi", "ephemeralStorage": "100Gi", "shmGiB": 32, **group},
        "train.runConfig": {"learner": {"resources_per_worker": {"stvg_learner": 1}},
                            "rollout": {"resources_per_worker": {"stvg_rollout": 1}}},
        "train.checkpointUri": "/shared/runs",
        "train.sharedVolumes": [{"name": "models", "mountPath": "/models", "claimName": "weights", "readOnly": True},
                                {"name": "shared", "mountPath": "/shared", "claimName": "nfs"}],
    }


# What the chart adds to the entrypoint; `stvg submit` has both in the run config it mounts instead.
CHART_OVERRIDES = ["checkpoint.uri=/shared/runs", "cluster.shared_paths=[/models,/shared]"]


def cluster_config() -> ClusterConfig:
    toleration = [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
    pool = {"stvg.io/node-pool": "gpu"}
    return ClusterConfig(
        image="registry.example.com/stvg-train:1.2.3", image_pull_policy="Always", image_pull_secrets=["regcred"],
        service_account="trainer", mlflow_tracking_uri="http://mlflow.mlops.svc:5000",
        s3_endpoint_url="http://minio:9000", aws_region="eu-west-1",
        secrets=SecretsConfig(s3="s3-keys", extra_env_from=["hf-token"]),
        volumes=[SharedVolume(name="models", mount_path="/models", claim_name="weights", read_only=True),
                 SharedVolume(name="shared", mount_path="/shared", claim_name="nfs", read_only=False)],
        env={"NCCL_SOCKET_IFNAME": "eth0", "A_FLAG": "1"},
        backoff_limit=2, active_deadline_seconds=7200, ttl_seconds_after_finished=300, enable_autoscaling=True,
        head=HeadConfig(cpu="6", memory="24Gi", ephemeral_storage="20Gi", shm_gib=3),
        learner=LearnerGroupConfig(replicas=2, min_replicas=1, max_replicas=3, gpus_per_worker=8, cpu="64",
                                   memory="512Gi", ephemeral_storage="400Gi", shm_gib=64, node_selector=pool,
                                   tolerations=toleration),
        rollout=RolloutGroupConfig(replicas=1, min_replicas=1, max_replicas=2, gpus_per_worker=4, slots=8,
                                   cpu="32", memory="256Gi", ephemeral_storage="100Gi", shm_gib=32, node_selector=pool,
                                   tolerations=toleration),
    )


def test_chart_and_submit_render_the_same_rayjob_spec(render):
    sets = {key: json.dumps(value) for key, value in chart_values().items()}
    # fullnameOverride makes the chart's object names and app.kubernetes.io/instance both "stvg-parity".
    objects = render(sets={**sets, "fullnameOverride": json.dumps("stvg-parity")}, release="stvg-parity")
    (rayjob,) = [obj for obj in objects if obj["kind"] == "RayJob"]
    ours = render_rayjob_spec(cluster_config(), "stvg-parity", "stvg-parity-run-config", CHART_OVERRIDES)
    assert rayjob["spec"] == ours


def test_the_parity_inputs_are_not_all_defaults():
    # Guard against a vacuous comparison: the settings above differ from both tools' defaults.
    default = render_rayjob_spec(ClusterConfig(), "stvg-parity", "stvg-parity-run-config")
    assert default != render_rayjob_spec(cluster_config(), "stvg-parity", "stvg-parity-run-config")


def test_chart_and_submit_agree_with_ray_auth_disabled(render):
    sets = {key: json.dumps(value) for key, value in chart_values().items()}
    sets.update({"fullnameOverride": json.dumps("stvg-parity"), "train.rayAuth": json.dumps("disabled")})
    (rayjob,) = [obj for obj in render(sets=sets, release="stvg-parity") if obj["kind"] == "RayJob"]
    ours = render_rayjob_spec(dataclasses.replace(cluster_config(), ray_auth="disabled"), "stvg-parity",
                              "stvg-parity-run-config", CHART_OVERRIDES)
    assert rayjob["spec"] == ours and "authOptions" not in ours["rayClusterSpec"]


@pytest.mark.parametrize("namespace,labels", [("", {}), ("ray-system", {"app.kubernetes.io/name": "my-kuberay"})])
def test_chart_and_submit_render_the_same_ray_network_policy(render, namespace, labels):
    sets = {key: json.dumps(value) for key, value in chart_values().items()}
    sets.update({"fullnameOverride": json.dumps("stvg-parity"),
                 "networkPolicy.kuberayOperator.namespace": json.dumps(namespace)})
    cluster = cluster_config()
    if labels:
        sets["networkPolicy.kuberayOperator.podLabels"] = json.dumps(labels)
        cluster = dataclasses.replace(cluster, kuberay_operator_labels=labels)
    cluster = dataclasses.replace(cluster, kuberay_operator_namespace=namespace)
    (policy,) = [obj for obj in render(sets=sets, release="stvg-parity")
                 if obj["kind"] == "NetworkPolicy" and obj["metadata"]["name"] == "stvg-parity-ray"]
    ours = render_network_policy("stvg-parity", "ml", cluster)
    assert policy["spec"] == ours["spec"]
    assert ours["metadata"]["name"] == "stvg-parity-ray"
