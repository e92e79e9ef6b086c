"""The `cluster` section of a run config: how a run is laid out on Kubernetes.

`stvg submit` turns it into a KubeRay RayJob (infra/k8s/rayjob.py); the Helm chart
(charts/stvg) exposes the same knobs as values. The training loop itself never reads it.

Ray resources: every learner pod advertises the custom Ray resource `stvg_learner` and every
rollout pod `stvg_rollout` (`slots` units each), so the run config must ask for them with
`learner.resources_per_worker: {stvg_learner: 1}` and `rollout.resources_per_worker: {stvg_rollout: 1}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from infra.config import check_choice, check_range
from infra.errors import ConfigError

MIN_RAY_FOR_TOKEN_AUTH = (2, 52, 0)
"""Token authentication arrived in Ray 2.52; KubeRay refuses authOptions for an older rayVersion."""
LEARNER_RESOURCE = "stvg_learner"
ROLLOUT_RESOURCE = "stvg_rollout"

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_UNITS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def parse_quantity(key: str, value: str) -> float:
    """A Kubernetes quantity ("500m", "64Gi", "2") as a number (cores or bytes)."""
    match = _QUANTITY.match(str(value))
    if not match:
        raise ConfigError(f"{key}={value!r} is not a Kubernetes quantity; write e.g. '4', '500m', '64Gi'")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def check_dns_label(key: str, value: str, max_len: int = 63, allow_empty: bool = False) -> None:
    if allow_empty and value == "":
        return
    if len(value) > max_len or not _DNS_LABEL.match(value):
        raise ConfigError(f"{key}={value!r} must be a DNS label: lowercase letters, digits and '-', "
                          f"starting and ending alphanumeric, at most {max_len} characters")


def check_dns_subdomain(key: str, value: str, allow_empty: bool = False) -> None:
    if allow_empty and value == "":
        return
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ConfigError(f"{key}={value!r} must be a DNS subdomain name: lowercase letters, digits, "
                          f"'-' and '.', at most 253 characters")


def check_labels(key: str, labels: dict[str, str]) -> None:
    """Kubernetes label keys (`[prefix/]name`, prefix a DNS subdomain) and values (at most 63 characters
    of letters, digits, '-', '_', '.', alphanumeric at both ends; may be empty)."""
    for name, value in labels.items():
        prefix, _, short = str(name).rpartition("/")
        if (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) \
                or len(short) > 63 or not _LABEL_NAME.match(short):
            raise ConfigError(f"{key}: {name!r} is not a label key: [DNS subdomain/]name, the name at most 63 "
                              f"characters of letters, digits, '-', '_' and '.'")
        value = str(value)
        if value and (len(value) > 63 or not _LABEL_NAME.match(value)):
            raise ConfigError(f"{key}: {name}={value!r} is not a label value: at most 63 characters of "
                              f"letters, digits, '-', '_' and '.', starting and ending alphanumeric")


@dataclass
class Toleration:
    """One pod toleration (Kubernetes `tolerations[]`)."""

    key: str = "nvidia.com/gpu"
    """Taint key to tolerate; empty with operator Exists tolerates every taint."""
    operator: str = "Exists"
    """Exists (any value) or Equal (value must match)."""
    value: str = ""
    """Taint value, for operator Equal only."""
    effect: str = "NoSchedule"
    """NoSchedule, PreferNoSchedule, NoExecute, or empty for all effects."""

    def __post_init__(self) -> None:
        check_choice("toleration.operator", self.operator, ["Exists", "Equal"])
        check_choice("toleration.effect", self.effect, ["", "NoSchedule", "PreferNoSchedule", "NoExecute"])
        if self.operator == "Exists" and self.value:
            raise ConfigError(f"toleration {self.key!r}: operator Exists takes no value (got {self.value!r})")

    def to_k8s(self) -> dict[str, str]:
        out = {"key": self.key, "operator": self.operator}
        if self.value:
            out["value"] = self.value
        if self.effect:
            out["effect"] = self.effect
        return out


def _gpu_tolerations() -> list[Toleration]:
    return [Toleration()]


def _kuberay_operator_labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": "kuberay-operator"}  # what the KubeRay Helm chart puts on its pods


@dataclass
class HeadConfig:
    """The Ray head pod: runs GCS, the dashboard and the `stvg train` driver. No GPU."""

    cpu: str = "4"
    """CPU request and limit (Kubernetes quantity)."""
    memory: str = "16Gi"
    """Memory request and limit; includes the /dev/shm tmpfs below."""
    ephemeral_storage: str = "16Gi"
    """Local disk requested ($HOME and /tmp: Ray logs, the driver's caches); a request, not a limit."""
    shm_gib: int = 2
    """Size of /dev/shm (a memory-backed emptyDir) in GiB; the Ray object store gets 80% of it."""
    node_selector: dict[str, str] = field(default_factory=dict)
    """Node labels the head must land on (e.g. a CPU pool)."""
    tolerations: list[Toleration] = field(default_factory=list)
    """Taints the head tolerates (none by default: keep it off GPU nodes)."""

    def validate(self, key: str) -> None:
        memory = parse_quantity(f"{key}.memory", self.memory)
        parse_quantity(f"{key}.cpu", self.cpu)
        parse_quantity(f"{key}.ephemeral_storage", self.ephemeral_storage)
        check_range(f"{key}.shm_gib", self.shm_gib, low=1)
        if self.shm_gib * 2**30 >= memory:
            raise ConfigError(f"{key}.shm_gib={self.shm_gib} must be smaller than {key}.memory={self.memory}: "
                              f"/dev/shm counts against the pod's memory limit")

    def __post_init__(self) -> None:
        self.validate("cluster.head")


@dataclass
class WorkerGroupConfig:
    """A Ray worker group (learner or rollout): identical GPU pods."""

    replicas: int = 1
    """Pods in the group at start (and always, without autoscaling)."""
    min_replicas: Optional[int] = None
    """Lower bound for the Ray autoscaler; None = replicas."""
    max_replicas: Optional[int] = None
    """Upper bound for the Ray autoscaler; None = replicas."""
    gpus_per_worker: int = 1
    """GPUs per pod (requests = limits of the GPU resource); 0 for CPU-only pods."""
    slots: int = 0
    """Units of the group's Ray resource (stvg_learner / stvg_rollout) each pod advertises, i.e. how
    many learner workers or rollout actors it hosts; 0 = one per GPU, or 1 on CPU-only pods."""
    cpu: str = "8"
    """CPU request and limit per pod."""
    memory: str = "64Gi"
    """Memory request and limit per pod; includes /dev/shm."""
    ephemeral_storage: str = "48Gi"
    """Local disk requested per pod ($HOME and /tmp): the model, checkpoint staging (a learner pod's
    ZeRO-3 shards, and the consolidated HF model on rank 0's), the video cache, Ray's logs. A
    request (the scheduler reserves it), not a limit: 8 pods of 48Gi fit a 500Gi GPU node."""
    shm_gib: int = 16
    """Size of /dev/shm in GiB (NCCL, the Ray object store at 80% of it, data loaders)."""
    node_selector: dict[str, str] = field(default_factory=dict)
    """Node labels the group must land on (e.g. {karpenter.sh/nodepool: gpu})."""
    tolerations: list[Toleration] = field(default_factory=_gpu_tolerations)
    """Taints the group tolerates; by default the nvidia.com/gpu taint of GPU node pools."""
    gpu_type: str = "a100-80gb"
    """GPU model of the group's nodes, for `stvg plan` and the check in `stvg submit` (docs/plan.md):
    a100-40gb, a100-80gb, h100-80gb, h200-141gb, l40s-48gb or l4-24gb. The pods do not
    read it: select those nodes with node_selector."""
    gpu_memory_gib: float = 0.0
    """Memory of one GPU in GiB for the plan, when it differs from gpu_type's; 0 = gpu_type's."""

    @property
    def ray_slots(self) -> int:
        return self.slots or self.gpus_per_worker or 1

    @property
    def bounds(self) -> tuple[int, int]:
        low = self.replicas if self.min_replicas is None else self.min_replicas
        high = self.replicas if self.max_replicas is None else self.max_replicas
        return low, high

    def validate(self, key: str) -> None:
        check_range(f"{key}.replicas", self.replicas, low=0)
        check_range(f"{key}.gpus_per_worker", self.gpus_per_worker, low=0)
        check_range(f"{key}.slots", self.slots, low=0)
        check_range(f"{key}.shm_gib", self.shm_gib, low=1)
        low, high = self.bounds
        if not 0 <= low <= self.replicas <= high:
            raise ConfigError(f"{key}: need 0 <= min_replicas <= replicas <= max_replicas, "
                              f"got {low} <= {self.replicas} <= {high}")
        parse_quantity(f"{key}.cpu", self.cpu)
        parse_quantity(f"{key}.ephemeral_storage", self.ephemeral_storage)
        from infra.plan.gpus import GPU_TYPES  # a table of plain numbers: no heavy import

        check_choice(f"{key}.gpu_type", self.gpu_type, GPU_TYPES)
        check_range(f"{key}.gpu_memory_gib", self.gpu_memory_gib, low=0)
        if self.shm_gib * 2**30 >= parse_quantity(f"{key}.memory", self.memory):
            raise ConfigError(f"{key}.shm_gib={self.shm_gib} must be smaller than {key}.memory={self.memory}: "
                              f"/dev/shm counts against the pod's memory limit")


@dataclass
class LearnerGroupConfig(WorkerGroupConfig):
    """Pods of the Ray Train learner workers (DeepSpeed ZeRO-3 ranks)."""

    def __post_init__(self) -> None:
        self.validate("cluster.learner")


@dataclass
class RolloutGroupConfig(WorkerGroupConfig):
    """Pods of the rollout actors (vLLM engines on GPU)."""

    def __post_init__(self) -> None:
        self.validate("cluster.rollout")


@dataclass
class SecretsConfig:
    """Names of existing Secrets in the run's namespace (never values)."""

    s3: str = ""
    """Secret whose keys become env vars (envFrom), e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY;
    leave empty with workload identity (IRSA, GKE WI) on the service account."""
    reward_token: str = ""
    """Secret holding the reward server's bearer token under key `token` (env STVG_REWARD_TOKEN)."""
    extra_env_from: list[str] = field(default_factory=list)
    """More Secrets exposed as env vars (e.g. HF_TOKEN, MLFLOW_TRACKING_PASSWORD)."""

    def __post_init__(self) -> None:
        for key, name in [("s3", self.s3), ("reward_token", self.reward_token)]:
            check_dns_subdomain(f"cluster.secrets.{key}", name, allow_empty=True)
        for name in self.extra_env_from:
            check_dns_subdomain("cluster.secrets.extra_env_from[]", name)


@dataclass
class SharedVolume:
    """A volume mounted at the same path on every Ray pod (head, learner, rollout): its path is then
    valid on every node, so model folders, datasets or checkpoints may live there (cluster.shared_paths)."""

    name: str = ""
    """Volume name in the pod spec (a DNS label)."""
    mount_path: str = ""
    """Absolute path it is mounted at, the same on every pod."""
    claim_name: str = ""
    """The PersistentVolumeClaim (e.g. ReadOnlyMany with model weights, ReadWriteMany for NFS)."""
    read_only: bool = True
    """Mount read-only (model weights, datasets); false for shared checkpoints."""

    def __post_init__(self) -> None:
        check_dns_label("cluster.volumes[].name", self.name)
        check_dns_subdomain("cluster.volumes[].claim_name", self.claim_name)
        if not self.mount_path.startswith("/"):
            raise ConfigError(f"cluster.volumes[{self.name}].mount_path={self.mount_path!r} must be an absolute path")


@dataclass
class ClusterConfig:
    """How a run is laid out on Kubernetes as a KubeRay RayJob (see docs/kubernetes.md), and which
    of its paths every node shares."""

    multi_node: str = "auto"
    """Whether learner ranks and rollout actors may run on other nodes than the driver, so that
    everything they read or write must be named by s3:// or lie under shared_paths. auto: yes when
    the driver joins an existing Ray cluster (RAY_ADDRESS is set, as in a RayJob); true / false."""
    shared_paths: list[str] = field(default_factory=list)
    """Folders mounted at the same path on every node (a PVC, NFS, a host path on one machine).
    Local paths under them may be handed to other nodes; cluster.volumes' mount paths count too."""
    volumes: list[SharedVolume] = field(default_factory=list)
    """PersistentVolumeClaims `stvg submit` mounts on every Ray pod at the same path."""

    image: str = "ghcr.io/stvg-rl/stvg-train:0.1.0"
    """Training image (docker/Dockerfile.train) for the head, learner and rollout pods."""
    image_pull_policy: str = "IfNotPresent"
    """Always, IfNotPresent or Never."""
    image_pull_secrets: list[str] = field(default_factory=list)
    """Secrets for a private registry."""
    namespace: str = "default"
    """Namespace of the RayJob and its ConfigMap (`stvg submit --namespace` wins)."""
    service_account: str = ""
    """ServiceAccount of the Ray pods (e.g. one annotated for IRSA); empty = the namespace default."""
    queue: str = ""
    """Kueue LocalQueue (label kueue.x-k8s.io/queue-name); empty = not queued by Kueue."""
    priority_class: str = ""
    """Kueue WorkloadPriorityClass (label kueue.x-k8s.io/priority-class); needs `queue`."""
    ray_version: str = "2.60.0"
    """Ray version inside the image (spec.rayClusterSpec.rayVersion)."""
    ray_auth: str = "token"
    """Ray token authentication: token (KubeRay >= 1.5.1 makes a random token Secret per RayCluster and
    sets RAY_AUTH_MODE/RAY_AUTH_TOKEN on every Ray container and the submitter; needs Ray >= 2.52) or
    disabled (UNSAFE: whoever reaches the head's GCS or dashboard port runs code on every node)."""
    submission_mode: str = "K8sJobMode"
    """How KubeRay submits the entrypoint: K8sJobMode (a submitter Job) or HTTPMode."""
    gpu_resource: str = "nvidia.com/gpu"
    """Extended resource name of a GPU on the nodes."""
    head: HeadConfig = field(default_factory=HeadConfig)
    """The Ray head pod."""
    learner: LearnerGroupConfig = field(default_factory=LearnerGroupConfig)
    """The learner worker group (Ray resource stvg_learner)."""
    rollout: RolloutGroupConfig = field(default_factory=RolloutGroupConfig)
    """The rollout worker group (Ray resource stvg_rollout)."""
    enable_autoscaling: bool = False
    """Ray in-tree autoscaler between min/max replicas. With Kueue it needs the ElasticJobsViaWorkloadSlices
    feature gate (the RayJob gets the kueue.x-k8s.io/elastic-job annotation)."""
    ttl_seconds_after_finished: int = 600
    """Seconds the finished RayCluster is kept (logs) before deletion."""
    active_deadline_seconds: int = 0
    """Fail the RayJob after this many seconds; 0 = no deadline."""
    backoff_limit: int = 0
    """Retries of a failed job; each retry is a NEW RayCluster resuming from the last S3 checkpoint."""
    mlflow_tracking_uri: str = ""
    """MLFLOW_TRACKING_URI in the pods (e.g. http://stvg-mlflow.ml.svc:5000)."""
    s3_endpoint_url: str = ""
    """AWS_ENDPOINT_URL (and MLFLOW_S3_ENDPOINT_URL) for S3-compatible stores; empty = AWS."""
    aws_region: str = ""
    """AWS_REGION in the pods; empty = not set."""
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    """Existing Secrets the pods read."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra env vars for every Ray pod (e.g. NCCL_SOCKET_IFNAME)."""
    run_as_user: int = 1000
    """Numeric UID of every container (the images' non-root user)."""
    do_not_disrupt: bool = True
    """Annotate pods karpenter.sh/do-not-disrupt so consolidation never evicts a running job."""
    network_policy: bool = True
    """Create a NetworkPolicy `<job name>-ray` with the RayJob (as the chart's networkPolicy.enabled):
    the run's pods accept connections on any port only from the run's own Ray pods, and on the job
    API (8265) also from its submitter and the KubeRay operator; false = reachable from every pod
    (Ray token authentication alone protects them). Needs a CNI that enforces NetworkPolicy."""
    kuberay_operator_namespace: str = ""
    """Namespace of the KubeRay operator, which polls the head's job API (8265) for the job's status;
    empty = any namespace (its pods are then recognised by kuberay_operator_labels alone)."""
    kuberay_operator_labels: dict[str, str] = field(default_factory=_kuberay_operator_labels)
    """Labels of the KubeRay operator's pods. A config file's mapping is merged into this default
    (change the value of app.kubernetes.io/name to replace it); `key={...}` on the command line replaces it."""

    @property
    def all_shared_paths(self) -> list[str]:
        return [*self.shared_paths, *(volume.mount_path for volume in self.volumes)]

    def __post_init__(self) -> None:
        check_choice("cluster.multi_node", str(self.multi_node).lower(), ["auto", "true", "false"])
        for path in self.shared_paths:
            if not str(path).startswith("/"):
                raise ConfigError(f"cluster.shared_paths entry {path!r} must be an absolute path")
        if not self.image.strip():
            raise ConfigError("cluster.image must name the training image (docker/Dockerfile.train)")
        check_choice("cluster.image_pull_policy", self.image_pull_policy, ["Always", "IfNotPresent", "Never"])
        check_choice("cluster.submission_mode", self.submission_mode, ["K8sJobMode", "HTTPMode"])
        check_dns_label("cluster.namespace", self.namespace)
        check_dns_subdomain("cluster.service_account", self.service_account, allow_empty=True)
        check_dns_subdomain("cluster.queue", self.queue, allow_empty=True)
        check_dns_subdomain("cluster.priority_class", self.priority_class, allow_empty=True)
        for name in self.image_pull_secrets:
            check_dns_subdomain("cluster.image_pull_secrets[]", name)
        if self.priority_class and not self.queue:
            raise ConfigError("cluster.priority_class needs cluster.queue: Kueue priorities apply to queued jobs only")
        if not re.match(r"^\d+\.\d+\.\d+", self.ray_version):
            raise ConfigError(f"cluster.ray_version={self.ray_version!r} must look like 2.60.0")
        check_choice("cluster.ray_auth", self.ray_auth, ["token", "disabled"])
        if self.ray_auth == "token" and _version(self.ray_version) < MIN_RAY_FOR_TOKEN_AUTH:
            raise ConfigError(f"cluster.ray_auth=token needs Ray >= {'.'.join(map(str, MIN_RAY_FOR_TOKEN_AUTH))} in "
                              f"the image, but cluster.ray_version={self.ray_version}; use a newer image "
                              f"(or cluster.ray_auth=disabled, which lets anyone who reaches the head run code)")
        check_range("cluster.ttl_seconds_after_finished", self.ttl_seconds_after_finished, low=0)
        check_range("cluster.active_deadline_seconds", self.active_deadline_seconds, low=0)
        check_range("cluster.backoff_limit", self.backoff_limit, low=0)
        check_range("cluster.run_as_user", self.run_as_user, low=1)
        for name in self.env:
            if not _ENV_NAME.match(name):
                raise ConfigError(f"cluster.env: {name!r} is not a valid environment variable name")
        check_dns_label("cluster.kuberay_operator_namespace", self.kuberay_operator_namespace, allow_empty=True)
        if not self.kuberay_operator_labels:
            raise ConfigError("cluster.kuberay_operator_labels must name the KubeRay operator's pod labels: "
                              "empty would let every pod reach the Ray job API")
        check_labels("cluster.kuberay_operator_labels", self.kuberay_operator_labels)
        if (self.learner.gpus_per_worker or self.rollout.gpus_per_worker) and not self.gpu_resource:
            raise ConfigError("cluster.gpu_resource must be set when a group asks for GPUs")
