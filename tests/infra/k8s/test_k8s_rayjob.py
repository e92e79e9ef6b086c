"""The RayJob, ConfigMap and NetworkPolicy `stvg submit` creates (infra/k8s/rayjob.py); what the
policy lets through is tested in test_k8s_submit_network_policy.py."""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timezone

import pytest
import yaml

from infra.errors import UserError
from infra.k8s.config import ClusterConfig, LearnerGroupConfig, RolloutGroupConfig, SecretsConfig
from infra.k8s.rayjob import (auth_secret_name, check_job_name, default_job_name, dump_yaml, entrypoint,
                              render_manifests, render_rayjob)
from infra.k8s.validate import MIN_KUBERAY_SCHEMAS, validate_object

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_default_job_name_is_the_run_name_and_utc_time():
    assert default_job_name("stvg-o1-7b", WHEN) == "stvg-o1-7b-20260102-030405"
    assert default_job_name("Qwen2.5 VL / GRPO", WHEN) == "qwen2-5-vl-grpo-20260102-030405"
    assert default_job_name("7b", WHEN) == "run-7b-20260102-030405"


def test_default_job_name_fits_kuberays_47_characters():
    name = default_job_name("a-very-long-experiment-name-that-goes-on-and-on", WHEN)
    assert len(name) == 47 and name.endswith("-20260102-030405")
    assert name == "a-very-long-experiment-name-tha-20260102-030405"


@pytest.mark.parametrize("name", ["Upper", "9lives", "a" * 48, "trailing-", "under_score", ""])
def test_bad_job_names_are_refused(name):
    with pytest.raises(UserError, match="is not allowed"):
        check_job_name(name)


def test_entrypoint_survives_the_shell_with_awkward_overrides():
    overrides = ["grpo.group_size=8", "name=it's a run", "data.video_root=s3://b/p q", "x=$HOME;rm -rf /"]
    assert shlex.split(entrypoint(overrides)) == ["stvg", "train", "/etc/stvg/run.yaml", *overrides]


def groups(rayjob: dict) -> dict:
    cluster = rayjob["spec"]["rayClusterSpec"]
    return {"head": cluster["headGroupSpec"], **{g["groupName"]: g for g in cluster["workerGroupSpecs"]}}


def big() -> ClusterConfig:
    return ClusterConfig(
        learner=LearnerGroupConfig(replicas=2, gpus_per_worker=8, cpu="90", memory="1000Gi", shm_gib=100),
        rollout=RolloutGroupConfig(replicas=1, max_replicas=4, gpus_per_worker=4, slots=2, cpu="40",
                                   memory="400Gi", shm_gib=40),
        enable_autoscaling=True)


def test_groups_get_gpus_shm_and_their_own_ray_resource():
    g = groups(render_rayjob("r1", "ml", big(), "r1-run-config"))
    learner, rollout = g["learner"], g["rollout"]
    assert learner["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 8
    assert rollout["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] == 4
    # What `ray start --resources=...` receives once the shell has removed KubeRay's quoting.
    assert json.loads(shlex.split(learner["rayStartParams"]["resources"])[0]) == {"stvg_learner": 8}
    assert json.loads(shlex.split(rollout["rayStartParams"]["resources"])[0]) == {"stvg_rollout": 2}
    # 80% of /dev/shm, by hand: 100 GiB -> 85899345920 bytes; 40 GiB -> 34359738368.
    assert learner["rayStartParams"]["object-store-memory"] == "85899345920"
    assert rollout["rayStartParams"]["object-store-memory"] == "34359738368"
    assert (rollout["replicas"], rollout["minReplicas"], rollout["maxReplicas"]) == (1, 1, 4)
    sizes = {name: [v for v in group["template"]["spec"]["volumes"] if v["name"] == "dshm"][0]["emptyDir"]
             for name, group in g.items()}
    assert sizes == {"head": {"medium": "Memory", "sizeLimit": "2Gi"},
                     "learner": {"medium": "Memory", "sizeLimit": "100Gi"},
                     "rollout": {"medium": "Memory", "sizeLimit": "40Gi"}}


def test_every_pod_requests_local_disk_for_caches_and_staging_but_is_not_limited_by_it():
    cluster = ClusterConfig(learner=LearnerGroupConfig(ephemeral_storage="200Gi"))
    for name, group in groups(render_rayjob("r1", "ml", cluster, "cm")).items():
        resources = group["template"]["spec"]["containers"][0]["resources"]
        assert resources["requests"]["ephemeral-storage"] == {"head": "16Gi", "learner": "200Gi",
                                                              "rollout": "48Gi"}[name]
        assert "ephemeral-storage" not in resources["limits"], name


def test_cpu_only_groups_request_no_gpu():
    cluster = ClusterConfig(learner=LearnerGroupConfig(gpus_per_worker=0, tolerations=[]),
                            rollout=RolloutGroupConfig(gpus_per_worker=0, tolerations=[]))
    for name, group in groups(render_rayjob("r1", "ml", cluster, "cm")).items():
        assert set(group["template"]["spec"]["containers"][0]["resources"]["limits"]) == {"cpu", "memory"}, name
        assert "tolerations" not in group["template"]["spec"]


def test_kueue_labels_only_with_a_queue_and_elastic_only_with_autoscaling():
    plain = render_rayjob("r1", "ml", ClusterConfig(), "cm")["metadata"]
    assert not any(key.startswith("kueue.x-k8s.io/") for key in plain["labels"]) and "annotations" not in plain
    queued = render_rayjob("r1", "ml", ClusterConfig(queue="stvg", priority_class="stvg-low"), "cm")
    assert queued["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "stvg"
    assert queued["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "stvg-low"
    assert "suspend" not in queued["spec"]
    elastic = render_rayjob("r1", "ml", ClusterConfig(queue="stvg", enable_autoscaling=True), "cm")
    assert elastic["metadata"]["annotations"] == {"kueue.x-k8s.io/elastic-job": "true"}


def test_env_carries_settings_and_secrets_only_by_reference():
    cluster = ClusterConfig(mlflow_tracking_uri="http://mlflow:5000", s3_endpoint_url="http://minio:9000",
                            aws_region="us-east-1", env={"NCCL_SOCKET_IFNAME": "eth0"},
                            secrets=SecretsConfig(s3="s3-keys", reward_token="reward-token", extra_env_from=["hf"]))
    container = groups(render_rayjob("r1", "ml", cluster, "cm"))["learner"]["template"]["spec"]["containers"][0]
    assert container["env"] == [
        {"name": "MLFLOW_TRACKING_URI", "value": "http://mlflow:5000"},
        {"name": "AWS_ENDPOINT_URL", "value": "http://minio:9000"},
        {"name": "MLFLOW_S3_ENDPOINT_URL", "value": "http://minio:9000"},
        {"name": "AWS_REGION", "value": "us-east-1"},
        {"name": "STVG_REWARD_TOKEN", "valueFrom": {"secretKeyRef": {"name": "reward-token", "key": "token"}}},
        {"name": "NCCL_SOCKET_IFNAME", "value": "eth0"},
    ]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-keys"}}, {"secretRef": {"name": "hf"}}]


def test_every_pod_is_non_root_and_mounts_the_run_config_on_ray_nodes():
    rayjob = render_rayjob("r1", "ml", ClusterConfig(run_as_user=4242, service_account="trainer"), "r1-run-config")
    templates = [("submitter", rayjob["spec"]["submitterPodTemplate"])] + [
        (name, group["template"]) for name, group in groups(rayjob).items()]
    for name, template in templates:
        spec = template["spec"]
        assert spec["securityContext"]["runAsUser"] == 4242 and spec["securityContext"]["runAsNonRoot"] is True
        assert spec["serviceAccountName"] == "trainer"
        container = spec["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert "/tmp" in mounts and "/home/stvg" in mounts
        if name != "submitter":
            assert mounts["/etc/stvg"] == {"name": "run-config", "mountPath": "/etc/stvg", "readOnly": True}
            (volume,) = [v for v in spec["volumes"] if v["name"] == "run-config"]
            assert volume["configMap"]["name"] == "r1-run-config"
    assert rayjob["spec"]["entrypoint"] == "stvg train /etc/stvg/run.yaml"


def test_http_mode_has_no_submitter_pod():
    spec = render_rayjob("r1", "ml", ClusterConfig(submission_mode="HTTPMode"), "cm")["spec"]
    assert spec["submissionMode"] == "HTTPMode" and "submitterPodTemplate" not in spec


@pytest.mark.parametrize("cluster", [ClusterConfig(), big(), ClusterConfig(queue="q", priority_class="p",
                                                                         submission_mode="HTTPMode"),
                                     ClusterConfig(kuberay_operator_namespace="ray-system",
                                                   kuberay_operator_labels={"app": "kuberay", "tier": "ops"})])
def test_rendered_manifests_validate(cluster):
    manifests = render_manifests("r1", cluster, {"name": "demo"}, namespace="ml")
    assert [obj["kind"] for obj in manifests] == ["ConfigMap", "NetworkPolicy", "RayJob"]  # the creation order
    for obj in manifests:
        validate_object(obj)


def test_network_policy_false_renders_the_configmap_and_rayjob_only():
    manifests = render_manifests("r1", ClusterConfig(network_policy=False), {"name": "demo"}, namespace="ml")
    assert [obj["kind"] for obj in manifests] == ["ConfigMap", "RayJob"]


def test_configmap_round_trips_the_run_config_through_yaml():
    run_config = {"name": "demo", "data": {"video_root": "s3://b/v"}, "learner": {"resources_per_worker": {"stvg_learner": 1.0}},
                  "note": "line one\nline two"}
    config_map, _, rayjob = render_manifests("r1", ClusterConfig(), run_config, namespace="ml")
    assert config_map["metadata"]["name"] == "r1-run-config"
    assert yaml.safe_load(config_map["data"]["run.yaml"]) == run_config
    text = dump_yaml([config_map, rayjob])
    assert "run.yaml: |" in text  # readable block, not one escaped line
    assert list(yaml.safe_load_all(text)) == [config_map, rayjob]


# ---- Ray token authentication ---------------------------------------------------------------------

@pytest.mark.parametrize("cluster", [ClusterConfig(), big(), ClusterConfig(submission_mode="HTTPMode")])
def test_token_auth_is_on_by_default_and_validates_against_the_oldest_supported_kuberay(cluster):
    rayjob = render_rayjob("r1", "ml", cluster, "cm")
    assert rayjob["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token"}
    validate_object(rayjob, schema_dir=MIN_KUBERAY_SCHEMAS)  # KubeRay v1.5.1's RayJob CRD, in the repository


def test_auth_disabled_renders_no_auth_options():
    rayjob = render_rayjob("r1", "ml", ClusterConfig(ray_auth="disabled"), "cm")
    assert "authOptions" not in rayjob["spec"]["rayClusterSpec"]


@pytest.mark.parametrize("ray_cluster,secret", [
    ("run-a-raycluster-x7k2p", "run-a-raycluster-x7k2p"),  # short names are kept
    ("xxx-" + "y" * 49, "r" + "y" * 49),  # 53 characters: the last 50 start with '-', which becomes 'r'
    ("ab" + "1" * 50, "r" + "1" * 49),  # the last 50 start with a digit, which becomes 'r'
])
def test_auth_secret_is_named_as_kuberay_names_it(ray_cluster, secret):
    assert auth_secret_name(ray_cluster) == secret
