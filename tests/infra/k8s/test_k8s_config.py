"""ClusterConfig: Kubernetes quantities, names and group bounds are checked up front, with messages
that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from infra.config import load_config
from infra.errors import ConfigError
from infra.k8s.config import ClusterConfig, LearnerGroupConfig, RolloutGroupConfig, Toleration, parse_quantity


@dataclass
class Wrapper:
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


def load(*overrides: str) -> ClusterConfig:
    return load_config(Wrapper, None, list(overrides)).cluster


@pytest.mark.parametrize("text,value", [
    ("2", 2.0), ("500m", 0.5), ("1.5", 1.5), ("64Gi", 64 * 1024**3), ("512Mi", 512 * 1024**2),
    ("1G", 1e9), ("3k", 3000.0),
])
def test_parse_quantity(text, value):
    assert parse_quantity("x", text) == value


@pytest.mark.parametrize("text", ["lots", "64GB", "-1", "1.5.2", ""])
def test_parse_quantity_rejects_non_quantities(text):
    with pytest.raises(ConfigError, match="not a Kubernetes quantity"):
        parse_quantity("cluster.head.memory", text)


def test_defaults_describe_one_gpu_per_group_pod_tolerating_the_gpu_taint():
    cluster = ClusterConfig()
    assert cluster.learner.gpus_per_worker == cluster.rollout.gpus_per_worker == 1
    assert cluster.learner.bounds == (1, 1) and cluster.learner.ray_slots == 1
    assert cluster.learner.tolerations[0].to_k8s() == {"key": "nvidia.com/gpu", "operator": "Exists",
                                                       "effect": "NoSchedule"}
    assert cluster.head.tolerations == []


def test_slots_default_to_gpus_and_to_one_without_gpus():
    assert LearnerGroupConfig(gpus_per_worker=8).ray_slots == 8
    assert LearnerGroupConfig(gpus_per_worker=0).ray_slots == 1
    assert RolloutGroupConfig(gpus_per_worker=4, slots=2).ray_slots == 2


@pytest.mark.parametrize("override,message", [
    ("cluster.learner.replicas=-1", "cluster.learner.replicas=-1 is out of range"),
    ("cluster.rollout.min_replicas=2", "cluster.rollout: need 0 <= min_replicas <= replicas <= max_replicas, got 2 <= 1 <= 1"),
    ("cluster.learner.max_replicas=0", "got 1 <= 1 <= 0"),
    ("cluster.learner.shm_gib=64", "cluster.learner.shm_gib=64 must be smaller than cluster.learner.memory=64Gi"),
    ("cluster.head.cpu=four", "cluster.head.cpu='four' is not a Kubernetes quantity"),
    ("cluster.learner.ephemeral_storage=lots", "cluster.learner.ephemeral_storage='lots' is not a Kubernetes quantity"),
    ("cluster.namespace=ML_Team", "cluster.namespace='ML_Team' must be a DNS label"),
    ("cluster.image_pull_policy=Sometimes", "cluster.image_pull_policy='Sometimes' is not allowed"),
    ("cluster.priority_class=stvg-high", "cluster.priority_class needs cluster.queue"),
    ("cluster.submission_mode=SidecarMode", "cluster.submission_mode"),
    ("cluster.run_as_user=0", "cluster.run_as_user=0 is out of range"),
    ("cluster.ray_version=latest", "cluster.ray_version='latest'"),
    ("cluster.secrets.s3=My_Secret", "cluster.secrets.s3='My_Secret'"),
    ("cluster.gpu_count=8", "unknown config key 'cluster.gpu_count'"),
    ("cluster.learner.gpu_type=H100", "cluster.learner.gpu_type='H100' is not allowed; choose one of: a100-40gb"),
    ("cluster.rollout.gpu_memory_gib=-8", "cluster.rollout.gpu_memory_gib=-8"),
    ("cluster.kuberay_operator_namespace=Ray_System", "cluster.kuberay_operator_namespace='Ray_System' must be a DNS"),
    ("cluster.kuberay_operator_labels={}", "empty would let every pod reach the Ray job API"),
    ("cluster.kuberay_operator_labels={'bad key': x}", "cluster.kuberay_operator_labels: 'bad key' is not a label key"),
    ("cluster.kuberay_operator_labels={app: -op}", "cluster.kuberay_operator_labels: app='-op' is not a label value"),
    ("cluster.network_policy=maybe", "cluster.network_policy"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as caught:
        load(override)
    assert message in str(caught.value)


def test_bad_env_name_is_rejected():
    with pytest.raises(ConfigError, match="not a valid environment variable name"):
        ClusterConfig(env={"1BAD": "x"})


def test_toleration_rules():
    assert Toleration(key="dedicated", operator="Equal", value="ml").to_k8s() == {
        "key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    with pytest.raises(ConfigError, match="operator Exists takes no value"):
        Toleration(value="true")
    with pytest.raises(ConfigError, match="toleration.effect"):
        Toleration(effect="Sometimes")


def test_overrides_reach_nested_groups():
    cluster = load("cluster.learner.replicas=3", "cluster.learner.max_replicas=5", "cluster.queue=stvg",
                   "cluster.priority_class=stvg-low")
    assert cluster.learner.bounds == (3, 5)
    assert (cluster.queue, cluster.priority_class) == ("stvg", "stvg-low")


@pytest.mark.parametrize("version,auth,ok", [
    ("2.52.0", "token", True), ("2.60.0", "token", True), ("2.51.2", "token", False), ("1.99.0", "token", False),
    ("2.51.2", "disabled", True),
])
def test_token_auth_needs_ray_2_52_in_the_image(version, auth, ok):
    if ok:
        assert load(f"cluster.ray_version={version}", f"cluster.ray_auth={auth}").ray_auth == auth
    else:
        with pytest.raises(ConfigError, match=r"cluster.ray_auth=token needs Ray >= 2\.52\.0 .* cluster.ray_version="):
            load(f"cluster.ray_version={version}", f"cluster.ray_auth={auth}")


def test_unknown_ray_auth_mode_names_the_choices():
    with pytest.raises(ConfigError, match="cluster.ray_auth"):
        load("cluster.ray_auth=password")


def test_kuberay_operator_settings_default_to_the_charts_and_the_command_line_replaces_the_labels():
    from pathlib import Path

    import yaml

    values = Path(__file__).resolve().parents[3] / "charts" / "stvg" / "values.yaml"
    chart = yaml.safe_load(values.read_text())["networkPolicy"]["kuberayOperator"]
    cluster = load()
    assert cluster.network_policy is True
    assert cluster.kuberay_operator_namespace == chart["namespace"]
    assert cluster.kuberay_operator_labels == chart["podLabels"]
    assert load("cluster.kuberay_operator_labels={app: kuberay}").kuberay_operator_labels == {"app": "kuberay"}
