"""Render a run as Kubernetes objects: a ConfigMap with the resolved run config and a KubeRay RayJob.

The shape is the one charts/stvg/templates/rayjob.yaml renders (tests/charts checks the two agree):
a head group (driver, no GPU), a `learner` and a `rollout` worker group on GPU nodes, each group
advertising its own Ray resource (stvg_learner / stvg_rollout) so that Ray Train workers and rollout
actors land on their own pods; /dev/shm sized per group; the run config mounted at /etc/stvg/run.yaml;
cluster.volumes (PersistentVolumeClaims) mounted at the same path on every Ray pod; non-root,
read-only containers with writable emptyDirs for /tmp and $HOME; Ray token authentication
(`authOptions: {mode: token}`) unless cluster.ray_auth=disabled; and, unless
cluster.network_policy=false, a NetworkPolicy that admits to the run's pods only the run's own Ray
pods, and to the job API its submitter and the KubeRay operator (as charts/stvg/templates/networkpolicy-ray.yaml).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Sequence

from infra.errors import UserError
from infra.k8s.config import (LEARNER_RESOURCE, ROLLOUT_RESOURCE, ClusterConfig, HeadConfig,
                              WorkerGroupConfig)

CONFIG_DIR = "/etc/stvg"
CONFIG_FILE = "run.yaml"
HOME_DIR = "/home/stvg"
MAX_RAYJOB_NAME = 47  # KubeRay rejects longer RayJob names (the operator appends suffixes)
OBJECT_STORE_SHARE = (8, 10)  # the Ray object store gets 80% of /dev/shm; NCCL and loaders need the rest
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
ELASTIC_ANNOTATION = "kueue.x-k8s.io/elastic-job"
RAY_COMPONENTS = ("ray-head", "ray-learner", "ray-rollout")  # app.kubernetes.io/component of the Ray pods
SUBMITTER_COMPONENT = "submitter"
JOB_API_PORT = 8265  # the head's dashboard / job API

_RAYJOB_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def auth_secret_name(ray_cluster: str) -> str:
    """The Secret holding a RayCluster's token (key `auth_token`) with authOptions.mode=token: KubeRay
    names it after the cluster, cut to its last 50 characters and starting with a letter (CheckName)."""
    name = ray_cluster[-50:]
    return name if name[:1].isalpha() else "r" + name[1:]


def check_job_name(name: str) -> str:
    """RayJob names are DNS-1035 labels of at most 47 characters (KubeRay's limit)."""
    if len(name) > MAX_RAYJOB_NAME or not _RAYJOB_NAME.match(name):
        raise UserError(f"run name {name!r} is not allowed: use lowercase letters, digits and '-', "
                        f"start with a letter, at most {MAX_RAYJOB_NAME} characters")
    return name


def default_job_name(run_name: str, now: datetime | None = None) -> str:
    """`<run name>-<UTC yyyymmdd-hhmmss>`, sanitised (DNS-1035) and cut to fit KubeRay's limit."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    stem = re.sub(r"[^a-z0-9-]+", "-", run_name.lower()).strip("-")
    if not stem or not stem[0].isalpha():
        stem = f"run-{stem}".rstrip("-")
    stem = stem[: MAX_RAYJOB_NAME - len(stamp) - 1].rstrip("-")
    return check_job_name(f"{stem}-{stamp}")


def quote_arg(arg: str) -> str:
    """Single-quote one shell word (the entrypoint runs through a shell)."""
    return "'" + arg.replace("'", "'\"'\"'") + "'"


def entrypoint(overrides: Sequence[str] = ()) -> str:
    return " ".join([f"stvg train {CONFIG_DIR}/{CONFIG_FILE}", *map(quote_arg, overrides)])


def object_store_bytes(shm_gib: int) -> int:
    num, den = OBJECT_STORE_SHARE
    return shm_gib * 2**30 * num // den


def ray_resources_param(resource: str, units: int) -> str:
    """rayStartParams `resources`: a JSON object, double-quoted for the shell `ray start` runs in."""
    return '"' + json.dumps({resource: units}).replace('"', '\\"') + '"'


def pod_security_context(cluster: ClusterConfig) -> dict[str, Any]:
    uid = cluster.run_as_user
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]}}


def pod_env(cluster: ClusterConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(env, envFrom) of every Ray pod. Values come from the config; secrets only by reference."""
    env: list[dict[str, Any]] = []
    plain = [("MLFLOW_TRACKING_URI", cluster.mlflow_tracking_uri),
             ("AWS_ENDPOINT_URL", cluster.s3_endpoint_url),
             ("MLFLOW_S3_ENDPOINT_URL", cluster.s3_endpoint_url),
             ("AWS_REGION", cluster.aws_region)]
    env += [{"name": name, "value": value} for name, value in plain if value]
    if cluster.secrets.reward_token:
        env.append({"name": "STVG_REWARD_TOKEN",
                    "valueFrom": {"secretKeyRef": {"name": cluster.secrets.reward_token, "key": "token"}}})
    env += [{"name": name, "value": str(cluster.env[name])} for name in sorted(cluster.env)]
    secrets = ([cluster.secrets.s3] if cluster.secrets.s3 else []) + list(cluster.secrets.extra_env_from)
    return env, [{"secretRef": {"name": name}} for name in secrets]


def _labels(instance: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "stvg", "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/component": component}


def _object_labels(name: str, component: str) -> dict[str, str]:
    """Labels of an object `stvg submit` creates itself (not a pod template)."""
    return {**_labels(name, component), "app.kubernetes.io/managed-by": "stvg-submit"}


def _ray_pod(cluster: ClusterConfig, instance: str, component: str, container: str,
             group: HeadConfig | WorkerGroupConfig, config_map: str, gpus: int,
             automount: bool) -> dict[str, Any]:
    """Pod template shared by the head and the worker groups."""
    requests: dict[str, Any] = {"cpu": group.cpu, "memory": group.memory}
    if gpus:
        requests[cluster.gpu_resource] = gpus
    env, env_from = pod_env(cluster)
    main: dict[str, Any] = {
        "name": container, "image": cluster.image, "imagePullPolicy": cluster.image_pull_policy,
        # $HOME is a writable emptyDir: relative run paths (runs/<name>) must not hit the read-only root.
        "workingDir": HOME_DIR,
        # local disk is requested so the scheduler reserves it, but not limited: exceeding it evicts
        # nothing unless the node runs short, where a limit would kill a run on a big checkpoint
        "resources": {"requests": {**requests, "ephemeral-storage": group.ephemeral_storage}, "limits": dict(requests)},
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "run-config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "dshm", "mountPath": "/dev/shm"},
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "home", "mountPath": HOME_DIR},
        ],
    }
    for volume in cluster.volumes:  # the same path on every Ray pod: cluster.shared_paths may name it
        main["volumeMounts"].append({"name": volume.name, "mountPath": volume.mount_path, "readOnly": volume.read_only})
    if env:
        main["env"] = env
    if env_from:
        main["envFrom"] = env_from
    if container == "ray-head":
        main["ports"] = [{"name": "gcs-server", "containerPort": 6379},
                         {"name": "dashboard", "containerPort": 8265},
                         {"name": "client", "containerPort": 10001}]
    metadata: dict[str, Any] = {"labels": _labels(instance, component)}
    if cluster.do_not_disrupt:
        metadata["annotations"] = {"karpenter.sh/do-not-disrupt": "true"}
    spec: dict[str, Any] = {
        "automountServiceAccountToken": automount,
        "securityContext": pod_security_context(cluster),
        "containers": [main],
        "volumes": [
            {"name": "run-config", "configMap": {"name": config_map}},
            {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": f"{group.shm_gib}Gi"}},
            {"name": "tmp", "emptyDir": {}},
            {"name": "home", "emptyDir": {}},
            *({"name": v.name, "persistentVolumeClaim": {"claimName": v.claim_name, "readOnly": v.read_only}}
              for v in cluster.volumes),
        ],
    }
    if cluster.service_account:
        spec["serviceAccountName"] = cluster.service_account
    if cluster.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in cluster.image_pull_secrets]
    if group.node_selector:
        spec["nodeSelector"] = dict(group.node_selector)
    if group.tolerations:
        spec["tolerations"] = [t.to_k8s() for t in group.tolerations]
    return {"metadata": metadata, "spec": spec}


def _worker_group(cluster: ClusterConfig, instance: str, name: str, group: WorkerGroupConfig,
                  resource: str, config_map: str) -> dict[str, Any]:
    low, high = group.bounds
    return {
        "groupName": name,
        "replicas": group.replicas,
        "minReplicas": low,
        "maxReplicas": high,
        "rayStartParams": {
            "object-store-memory": str(object_store_bytes(group.shm_gib)),
            "resources": ray_resources_param(resource, group.ray_slots),
        },
        "template": _ray_pod(cluster, instance, f"ray-{name}", "ray-worker", group, config_map,
                             group.gpus_per_worker, automount=False),
    }


def _submitter(cluster: ClusterConfig, instance: str) -> dict[str, Any]:
    """Pod of the K8sJobMode submitter Job; KubeRay fills in the `ray job submit` command."""
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(cluster),
        "containers": [{
            "name": "ray-job-submitter", "image": cluster.image, "imagePullPolicy": cluster.image_pull_policy,
            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}},
            "securityContext": container_security_context(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "home", "mountPath": HOME_DIR}],
        }],
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "home", "emptyDir": {}}],
    }
    if cluster.service_account:
        spec["serviceAccountName"] = cluster.service_account
    if cluster.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in cluster.image_pull_secrets]
    return {"metadata": {"labels": _labels(instance, SUBMITTER_COMPONENT)}, "spec": spec}


def render_rayjob_spec(cluster: ClusterConfig, instance: str, config_map: str,
                       overrides: Sequence[str] = ()) -> dict[str, Any]:
    """`spec` of the RayJob (the part the chart renders identically)."""
    head = _ray_pod(cluster, instance, "ray-head", "ray-head", cluster.head, config_map, gpus=0,
                    automount=cluster.enable_autoscaling)
    cluster_spec: dict[str, Any] = {
        "rayVersion": cluster.ray_version,
        **({"authOptions": {"mode": "token"}} if cluster.ray_auth == "token" else {}),
        "enableInTreeAutoscaling": cluster.enable_autoscaling,
        "headGroupSpec": {
            "rayStartParams": {"object-store-memory": str(object_store_bytes(cluster.head.shm_gib))},
            "template": head,
        },
        "workerGroupSpecs": [
            _worker_group(cluster, instance, "learner", cluster.learner, LEARNER_RESOURCE, config_map),
            _worker_group(cluster, instance, "rollout", cluster.rollout, ROLLOUT_RESOURCE, config_map),
        ],
    }
    if cluster.enable_autoscaling:
        cluster_spec["autoscalerOptions"] = {
            "upscalingMode": "Default", "idleTimeoutSeconds": 60,
            "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                          "limits": {"cpu": "1", "memory": "1Gi"}},
            "securityContext": container_security_context(),
            "volumeMounts": [{"name": "home", "mountPath": HOME_DIR}],
        }
    spec: dict[str, Any] = {
        "entrypoint": entrypoint(overrides),
        "submissionMode": cluster.submission_mode,
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": cluster.ttl_seconds_after_finished,
        "backoffLimit": cluster.backoff_limit,
    }
    if cluster.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = cluster.active_deadline_seconds
    if cluster.submission_mode == "K8sJobMode":
        spec["submitterPodTemplate"] = _submitter(cluster, instance)
    spec["rayClusterSpec"] = cluster_spec
    return spec


def render_rayjob(name: str, namespace: str, cluster: ClusterConfig, config_map: str,
                  overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The RayJob object. With `cluster.queue` it carries Kueue's labels; Kueue's webhook then
    sets spec.suspend itself (we never write it, so re-applying never re-suspends a running job)."""
    check_job_name(name)
    labels = _object_labels(name, "training")
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if cluster.queue:
        labels[QUEUE_LABEL] = cluster.queue
        if cluster.priority_class:
            labels[PRIORITY_LABEL] = cluster.priority_class
        if cluster.enable_autoscaling:
            metadata["annotations"] = {ELASTIC_ANNOTATION: "true"}
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": metadata,
            "spec": render_rayjob_spec(cluster, name, config_map, overrides)}


def _run_pod_selector(instance: str, components: Sequence[str]) -> dict[str, Any]:
    """The given pods of this run only (the chart's stvg.releaseRayPodSelector, with the job name as instance)."""
    return {"matchLabels": {"app.kubernetes.io/name": "stvg", "app.kubernetes.io/instance": instance},
            "matchExpressions": [{"key": "app.kubernetes.io/component", "operator": "In",
                                  "values": list(components)}]}


def render_network_policy(name: str, namespace: str, cluster: ClusterConfig) -> dict[str, Any]:
    """The NetworkPolicy `<name>-ray` over the run's pods, with the ingress rules of the chart's
    `<release>-ray` policy; egress stays open (the run reaches S3, MLflow, the reward servers)."""
    labels = _object_labels(name, "training")
    namespaces = ({"matchLabels": {"kubernetes.io/metadata.name": cluster.kuberay_operator_namespace}}
                  if cluster.kuberay_operator_namespace else {})
    spec: dict[str, Any] = {
        "podSelector": _run_pod_selector(name, [*RAY_COMPONENTS, SUBMITTER_COMPONENT]),
        "policyTypes": ["Ingress"],
        "ingress": [
            # Ray among its own pods: GCS (6379), raylets, object transfer, worker ports, NCCL/gloo.
            {"from": [{"podSelector": _run_pod_selector(name, RAY_COMPONENTS)}]},
            # The job API: the submitter runs `ray job submit`; the KubeRay operator polls job status.
            {"from": [{"podSelector": _run_pod_selector(name, [SUBMITTER_COMPONENT])},
                      {"podSelector": {"matchLabels": dict(cluster.kuberay_operator_labels)},
                       "namespaceSelector": namespaces}],
             "ports": [{"port": JOB_API_PORT, "protocol": "TCP"}]},
        ],
    }
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"{name}-ray", "namespace": namespace, "labels": labels}, "spec": spec}


def render_configmap(name: str, namespace: str, run_config_yaml: str) -> dict[str, Any]:
    labels = _object_labels(name, "run-config")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{name}-run-config", "namespace": namespace, "labels": labels},
            "data": {CONFIG_FILE: run_config_yaml}}


def dump_yaml(objects: Sequence[dict[str, Any]]) -> str:
    """Multi-document YAML, multi-line strings (the run config) as readable `|` blocks."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper: yaml.SafeDumper, value: str):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    return yaml.dump_all(list(objects), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def render_manifests(name: str, cluster: ClusterConfig, run_config: dict[str, Any],
                     namespace: str | None = None) -> list[dict[str, Any]]:
    """[ConfigMap, NetworkPolicy, RayJob] for one run, in the order they are created (no NetworkPolicy
    with cluster.network_policy=false); `run_config` is the resolved config as plain data."""
    import yaml

    namespace = namespace or cluster.namespace
    text = yaml.safe_dump(run_config, sort_keys=False, default_flow_style=False)
    config_map = render_configmap(name, namespace, text)
    policy = [render_network_policy(name, namespace, cluster)] if cluster.network_policy else []
    return [config_map, *policy, render_rayjob(name, namespace, cluster, config_map["metadata"]["name"])]
