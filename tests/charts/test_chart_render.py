"""`helm lint --strict` and `helm template` of charts/stvg for every ci/ values file, offline
validation of every rendered object, and what matters in the rendered objects."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.charts.conftest import CHECKPOINT_URI

CHART = Path(__file__).resolve().parents[2] / "charts" / "stvg"
CI = {path.name.removesuffix("-values.yaml"): path for path in sorted((CHART / "ci").glob("*-values.yaml"))}
VARIANTS = ["default", *CI]


def values_for(variant: str) -> list[Path]:
    return [] if variant == "default" else [CI[variant]]


def kind(objects: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == name]


def one(objects: list[dict[str, Any]], name: str, suffix: str = "") -> dict[str, Any]:
    found = [obj for obj in kind(objects, name) if obj["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, [obj["metadata"]["name"] for obj in found]
    return found[0]


def pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, pod template) of every pod an object creates (Deployments, the RayJob's groups)."""
    spec = obj.get("spec") or {}
    if obj["kind"] == "Deployment":
        yield obj["metadata"]["name"], spec["template"]
    if obj["kind"] == "RayJob":
        if "submitterPodTemplate" in spec:
            yield "submitter", spec["submitterPodTemplate"]
        cluster = spec["rayClusterSpec"]
        yield "head", cluster["headGroupSpec"]["template"]
        for group in cluster["workerGroupSpecs"]:
            yield group["groupName"], group["template"]


def groups(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    cluster = one(objects, "RayJob")["spec"]["rayClusterSpec"]
    return {"head": cluster["headGroupSpec"], **{g["groupName"]: g for g in cluster["workerGroupSpecs"]}}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


# ---- lint, render, validate ---------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_strict_passes(helm, variant):
    cmd = [str(helm), "lint", "--strict", str(CHART)] + [a for p in values_for(variant) for a in ("-f", str(p))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_rendered_object_validates(render, validate, variant):
    objects = render(values_for(variant))
    assert kind(objects, "RayJob"), "the training RayJob is rendered in every variant"
    validate(objects)


def test_ci_values_cover_the_required_variants():
    assert {"cpu-only", "gpu", "external-mlflow", "kueue-on", "kueue-off"} <= set(CI)


# ---- RayJob: groups, GPUs, Ray resources, shm, config ------------------------------------------------

def test_gpu_groups_request_and_limit_their_gpus_and_the_head_none(render):
    g = groups(render(values_for("gpu")))
    for name, gpus in (("learner", 8), ("rollout", 4)):
        resources = g[name]["template"]["spec"]["containers"][0]["resources"]
        assert resources["limits"]["nvidia.com/gpu"] == gpus
        assert resources["requests"]["nvidia.com/gpu"] == gpus
    head = g["head"]["template"]["spec"]["containers"][0]["resources"]
    assert "nvidia.com/gpu" not in head["limits"] and "nvidia.com/gpu" not in head["requests"]


def test_cpu_only_values_request_no_gpu_and_tolerate_no_gpu_taint(render):
    for name, group in groups(render(values_for("cpu-only"))).items():
        spec = group["template"]["spec"]
        assert not any("gpu" in key for key in spec["containers"][0]["resources"]["limits"]), name
        assert "tolerations" not in spec, name


def test_gpu_groups_tolerate_the_gpu_taint_and_select_the_gpu_pool(render):
    g = groups(render(values_for("gpu")))
    taint = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    for name in ("learner", "rollout"):
        spec = g[name]["template"]["spec"]
        assert taint in spec["tolerations"]
        assert spec["nodeSelector"] == {"stvg.io/node-pool": "gpu"}
    assert "tolerations" not in g["head"]["template"]["spec"]  # the head stays off GPU nodes


def _ray_resources(param: str) -> dict[str, int]:
    """What `ray start --resources=<param>` receives after the shell KubeRay runs it in."""
    (word,) = shlex.split(param)
    return json.loads(word)


@pytest.mark.parametrize("variant,expected", [
    ("gpu", {"learner": {"stvg_learner": 8}, "rollout": {"stvg_rollout": 4}}),
    ("cpu-only", {"learner": {"stvg_learner": 2}, "rollout": {"stvg_rollout": 1}}),
    ("default", {"learner": {"stvg_learner": 1}, "rollout": {"stvg_rollout": 1}}),
])
def test_learner_and_rollout_advertise_distinct_ray_resources(render, variant, expected):
    g = groups(render(values_for(variant)))
    for name, resources in expected.items():
        assert _ray_resources(g[name]["rayStartParams"]["resources"]) == resources
    assert "resources" not in g["head"]["rayStartParams"]


def test_shm_is_a_memory_emptydir_per_group_and_the_object_store_takes_80_percent(render):
    g = groups(render(values_for("gpu")))
    # shmGiB 64 / 32 / 2 (head default): 0.8 * N GiB, worked by hand.
    expected = {"learner": ("64Gi", "54975581388"), "rollout": ("32Gi", "27487790694"),
                "head": ("2Gi", "1717986918")}
    for name, (size, store) in expected.items():
        spec = g[name]["template"]["spec"]
        (dshm,) = [v for v in spec["volumes"] if v["name"] == "dshm"]
        assert dshm["emptyDir"] == {"medium": "Memory", "sizeLimit": size}
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["/dev/shm"] == "dshm"
        assert g[name]["rayStartParams"]["object-store-memory"] == store


def test_worker_groups_carry_min_and_max_replicas(render):
    g = groups(render(values_for("gpu")))
    assert (g["learner"]["replicas"], g["learner"]["minReplicas"], g["learner"]["maxReplicas"]) == (2, 2, 2)
    assert (g["rollout"]["replicas"], g["rollout"]["minReplicas"], g["rollout"]["maxReplicas"]) == (2, 2, 3)


def test_run_config_is_mounted_on_every_ray_pod_and_the_entrypoint_reads_it(render):
    objects = render(values_for("gpu"))
    config_map = one(objects, "ConfigMap", "-run-config")
    rayjob = one(objects, "RayJob")
    assert shlex.split(rayjob["spec"]["entrypoint"]) == [
        "stvg", "train", "/etc/stvg/run.yaml", "checkpoint.uri=s3://stvg-runs/grpo-7b/checkpoints",
        "cluster.shared_paths=[/models]", "grpo.group_size=8"]
    assert set(config_map["data"]) == {"run.yaml"}
    given = yaml.safe_load(yaml.safe_load(CI["gpu"].read_text())["train"]["runConfigYaml"])
    assert yaml.safe_load(config_map["data"]["run.yaml"]) == given
    for name, group in groups(objects).items():
        spec = group["template"]["spec"]
        (volume,) = [v for v in spec["volumes"] if v["name"] == "run-config"]
        assert volume["configMap"]["name"] == config_map["metadata"]["name"], name
        mount = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "run-config"][0]
        assert mount == {"name": "run-config", "mountPath": "/etc/stvg", "readOnly": True}


def test_rayjob_cleans_up_and_never_sets_suspend(render):
    for variant in VARIANTS:
        spec = one(render(values_for(variant)), "RayJob")["spec"]
        assert spec["shutdownAfterJobFinishes"] is True
        assert spec["ttlSecondsAfterFinished"] == 600
        assert "suspend" not in spec, variant  # Kueue's webhook owns it


def test_run_configs_of_the_ci_values_load_with_the_trainer(render, tmp_path):
    from trainer.config import load_run_config

    for variant in VARIANTS:
        objects = render(values_for(variant))
        path = tmp_path / f"{variant}.yaml"
        path.write_text(one(objects, "ConfigMap", "-run-config")["data"]["run.yaml"])
        overrides = shlex.split(one(objects, "RayJob")["spec"]["entrypoint"])[3:]
        config = load_run_config(path, overrides)
        assert config.learner.resources_per_worker["stvg_learner"] > 0
        assert config.rollout.resources_per_worker["stvg_rollout"] > 0
        given = {} if variant == "default" else yaml.safe_load(CI[variant].read_text())["train"]
        assert config.checkpoint.uri == given.get("checkpointUri", CHECKPOINT_URI), variant
        assert config.cluster.shared_paths == [v["mountPath"] for v in given.get("sharedVolumes", [])], variant


# ---- Kueue -------------------------------------------------------------------------------------

def test_kueue_labels_only_when_kueue_is_enabled(render):
    on = one(render(values_for("kueue-on")), "RayJob")["metadata"]
    assert on["labels"]["kueue.x-k8s.io/queue-name"] == "stvg"
    assert on["labels"]["kueue.x-k8s.io/priority-class"] == "stvg-high"
    for variant in ("kueue-off", "gpu", "default"):
        labels = one(render(values_for(variant)), "RayJob")["metadata"]["labels"]
        assert not any(key.startswith("kueue.x-k8s.io/") for key in labels), variant


def test_kueue_with_autoscaling_marks_the_job_elastic(render):
    objects = render(values_for("kueue-on"), sets={"train.autoscaling.enabled": "true"})
    rayjob = one(objects, "RayJob")
    assert rayjob["metadata"]["annotations"] == {"kueue.x-k8s.io/elastic-job": "true"}
    assert rayjob["spec"]["rayClusterSpec"]["enableInTreeAutoscaling"] is True
    assert "annotations" not in one(render(values_for("kueue-on")), "RayJob")["metadata"]


# ---- security ----------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_runs_non_root_read_only_without_capabilities(render, variant):
    objects = render(values_for(variant))
    seen = 0
    for obj in objects:
        for label, template in pod_templates(obj):
            pod = template["spec"]["securityContext"]
            assert pod["runAsNonRoot"] is True, label
            assert isinstance(pod["runAsUser"], int) and pod["runAsUser"] > 0, label
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, label
            for container in template["spec"]["containers"]:
                sc = container["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False, label
                assert sc["readOnlyRootFilesystem"] is True, label
                assert sc["capabilities"] == {"drop": ["ALL"]}, label
                # A read-only root needs writable scratch space.
                assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}, label
                seen += 1
    assert seen >= 3


def test_autoscaler_sidecar_gets_the_same_security_context(render):
    cluster = one(render(values_for("gpu")), "RayJob")["spec"]["rayClusterSpec"]
    sc = cluster["autoscalerOptions"]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    # The autoscaler talks to the API server: only then does the head mount a token.
    assert cluster["headGroupSpec"]["template"]["spec"]["automountServiceAccountToken"] is True
    for group in cluster["workerGroupSpecs"]:
        assert group["template"]["spec"]["automountServiceAccountToken"] is False


def test_no_pod_mounts_an_api_token_without_autoscaling(render):
    for obj in render(values_for("kueue-on")):
        for label, template in pod_templates(obj):
            assert template["spec"]["automountServiceAccountToken"] is False, label


def test_reward_servers_run_under_their_own_service_account(render):
    objects = render(values_for("gpu"))
    rewards = one(objects, "Deployment", "-rewards")["spec"]["template"]["spec"]
    head = groups(objects)["head"]["template"]["spec"]
    assert rewards["serviceAccountName"] == "grpo-7b-rewards"
    assert head["serviceAccountName"] == "grpo-7b-train"
    train_sa = one(objects, "ServiceAccount", "-train")
    assert train_sa["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/stvg-train"}
    assert "annotations" not in one(objects, "ServiceAccount", "-rewards")["metadata"]


def test_rbac_objects_only_when_requested(render):
    assert not kind(render(values_for("default")), "Role")
    assert not kind(render(values_for("default")), "RoleBinding")
    objects = render(values_for("external-mlflow"))
    role, binding = one(objects, "Role"), one(objects, "RoleBinding")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "t1-stvg-train", "namespace": "ml"}]


# ---- environment: MLflow, S3, secrets ---------------------------------------------------------------

def test_training_pods_get_tracking_uri_s3_endpoint_and_secrets_by_reference(render):
    objects = render(values_for("external-mlflow"))
    container = groups(objects)["learner"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow.mlops.svc:5000"
    assert env["AWS_ENDPOINT_URL"] == env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.storage.svc:9000"
    assert env["STVG_REWARD_TOKEN"] == {"secretKeyRef": {"name": "stvg-reward-token", "key": "token"}}
    assert env["STVG_REWARD_URL"] == "http://t1-stvg-rewards.ml.svc:8000"
    assert container["envFrom"] == [{"secretRef": {"name": "stvg-s3-credentials"}},
                                    {"secretRef": {"name": "stvg-hf-token"}}]


def test_in_chart_mlflow_is_the_tracking_uri_of_training_pods(render):
    env = env_of(groups(render(values_for("gpu")))["head"]["template"]["spec"]["containers"][0])
    assert env["MLFLOW_TRACKING_URI"] == "http://grpo-7b-mlflow.ml.svc:5000"
    assert env["NCCL_SOCKET_IFNAME"] == "eth0"


def test_mlflow_server_proxies_s3_artifacts_and_allows_in_cluster_hosts(render):
    objects = render(values_for("gpu"))
    container = one(objects, "Deployment", "-mlflow")["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert "--serve-artifacts" in args
    assert args[args.index("--artifacts-destination") + 1] == "s3://stvg-mlflow/artifacts"
    hosts = args[args.index("--allowed-hosts") + 1].split(",")
    for host in ("grpo-7b-mlflow", "grpo-7b-mlflow.ml.svc", "grpo-7b-mlflow.ml.svc.cluster.local",
                 "grpo-7b-mlflow.ml.svc:*", "mlflow.example.com"):
        assert host in hosts
    # The database URI (with its password) comes from the Secret, never from the arguments.
    assert env_of(container)["MLFLOW_BACKEND_STORE_URI"] == {"secretKeyRef": {"name": "stvg-mlflow-db", "key": "uri"}}
    assert not any("postgresql" in arg for arg in args)
    service = one(objects, "Service", "-mlflow")
    assert service["spec"]["ports"][0]["port"] == 5000


def test_mlflow_is_absent_when_an_external_server_is_used(render):
    objects = render(values_for("external-mlflow"))
    assert not [obj for obj in objects if obj["metadata"]["name"].endswith("-mlflow")]


# ---- reward servers ----------------------------------------------------------------------------

def test_reward_server_command_probes_and_service_agree_on_the_port(render):
    objects = render(values_for("gpu"))
    deployment = one(objects, "Deployment", "-rewards")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:2] == ["stvg", "serve-rewards"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    port = int(command[command.index("--port") + 1])
    assert command[command.index("--workers") + 1] == "2"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["http"] == port == 8000
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = one(objects, "Service", "-rewards")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_reward_pods_are_annotated_for_prometheus(render):
    template = one(render(values_for("gpu")), "Deployment", "-rewards")["spec"]["template"]
    assert template["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "8000", "prometheus.io/path": "/metrics"}


def test_reward_token_from_env_or_mounted_file(render):
    env_mode = one(render(values_for("gpu")), "Deployment", "-rewards")["spec"]["template"]["spec"]
    command = env_mode["containers"][0]["command"]
    assert command[command.index("--token-env") + 1] == "STVG_REWARD_TOKEN"
    assert env_of(env_mode["containers"][0])["STVG_REWARD_TOKEN"] == {
        "secretKeyRef": {"name": "stvg-reward-token", "key": "token"}}
    file_mode = one(render(values_for("external-mlflow")), "Deployment", "-rewards")["spec"]["template"]["spec"]
    command = file_mode["containers"][0]["command"]
    assert command[command.index("--token-file") + 1] == "/etc/stvg-secrets/reward-token"
    (volume,) = [v for v in file_mode["volumes"] if v["name"] == "reward-token"]
    assert volume["secret"]["secretName"] == "stvg-reward-token"
    assert volume["secret"]["items"] == [{"key": "token", "path": "reward-token"}]
    no_token = one(render(values_for("default")), "Deployment", "-rewards")["spec"]["template"]["spec"]
    assert not {"--token-env", "--token-file"} & set(no_token["containers"][0]["command"])


def test_hpa_scales_the_reward_deployment_which_leaves_replicas_to_it(render):
    objects = render(values_for("default"))
    hpa = one(objects, "HorizontalPodAutoscaler")
    deployment = one(objects, "Deployment", "-rewards")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": deployment["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    assert "replicas" not in deployment["spec"]
    fixed = render(values_for("cpu-only"))
    assert not kind(fixed, "HorizontalPodAutoscaler")
    assert one(fixed, "Deployment", "-rewards")["spec"]["replicas"] == 2


def test_pdb_protects_the_reward_pods(render):
    objects = render(values_for("default"))
    pdb = one(objects, "PodDisruptionBudget")
    pods = one(objects, "Deployment", "-rewards")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pods.items()


def test_disabling_rewards_removes_their_objects_and_url(render):
    objects = render(values_for("kueue-off"))
    assert not [obj for obj in objects if "-rewards" in obj["metadata"]["name"]]
    assert "STVG_REWARD_URL" not in env_of(groups(objects)["head"]["template"]["spec"]["containers"][0])


def test_the_default_release_trains_against_its_reward_deployment(render, tmp_path, monkeypatch):
    from rewards.client import resolve_reward_mode
    from trainer.config import load_run_config

    objects = render()
    service = one(objects, "Service", "-rewards")
    url = f"http://{service['metadata']['name']}.ml.svc:{service['spec']['ports'][0]['port']}"
    for name, group in groups(objects).items():
        assert env_of(group["template"]["spec"]["containers"][0])["STVG_REWARD_URL"] == url, name
    path = tmp_path / "run.yaml"
    path.write_text(one(objects, "ConfigMap", "-run-config")["data"]["run.yaml"])
    reward = load_run_config(path).reward
    assert reward.mode == "auto"  # the chart's run config leaves the choice to the environment
    monkeypatch.setenv("STVG_REWARD_URL", url)
    resolved = resolve_reward_mode(reward)
    assert (resolved.mode, resolved.urls) == ("http", [url])


def test_shared_volumes_mount_at_the_same_path_on_every_ray_pod_and_group_extras_only_on_theirs(render):
    sets = {"train.sharedVolumes": [{"name": "models", "mountPath": "/models", "claimName": "weights", "readOnly": True}],
            "train.learner.env": {"STAGING": "/scratch"},
            "train.learner.volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "100Gi"}}],
            "train.learner.volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}
    objects = render(sets={k: json.dumps(v) for k, v in sets.items()})
    for name, group in groups(objects).items():
        spec = group["template"]["spec"]
        container = spec["containers"][0]
        assert {"name": "models", "mountPath": "/models", "readOnly": True} in container["volumeMounts"], name
        assert {"name": "models", "persistentVolumeClaim": {"claimName": "weights", "readOnly": True}} in spec["volumes"]
        has_scratch = any(v["name"] == "scratch" for v in spec["volumes"])
        assert has_scratch == (name == "learner") and ("STAGING" in env_of(container)) == (name == "learner"), name
    learner = groups(objects)["learner"]["template"]["spec"]
    assert {"name": "scratch", "mountPath": "/scratch"} in learner["containers"][0]["volumeMounts"]
    assert "'cluster.shared_paths=[/models]'" in one(objects, "RayJob")["spec"]["entrypoint"]


# ---- NOTES.txt ---------------------------------------------------------------------------------

def _notes(helm, tmp_path, values: list[Path]) -> str:
    """NOTES.txt rendered by `helm template`: a copy of the chart exposes it as a ConfigMap."""
    import shutil

    chart = tmp_path / "stvg"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "NOTES.txt").unlink()
    (chart / "templates" / "zz-notes.yaml").write_text(
        '{{- define "test.notes" }}' + notes + "{{- end }}\n"
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
        '{{ include "test.notes" . | indent 4 }}\n')
    cmd = [str(helm), "template", "stvg", str(chart), "--namespace", "ml", "--show-only", "templates/zz-notes.yaml"]
    cmd += [a for p in values for a in ("-f", str(p))]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    return yaml.safe_load(done.stdout)["data"]["notes"]


def test_notes_say_how_to_follow_the_run_and_reach_the_services(helm, tmp_path):
    notes = _notes(helm, tmp_path, [CI["gpu"]])
    assert "stvg status --namespace ml grpo-7b" in notes
    assert "Reward servers: http://grpo-7b-rewards.ml.svc:8000" in notes
    assert "MLflow tracking: http://grpo-7b-mlflow.ml.svc:5000" in notes
    assert "port-forward svc/grpo-7b-mlflow 5000" in notes
    queued = _notes(tmp_path=tmp_path / "q", helm=helm, values=[CI["kueue-on"]])
    assert "Queued in Kueue LocalQueue stvg with priority stvg-high" in queued
    assert "No MLflow tracking server is configured" in queued


def test_shared_services_release_without_a_run(render, validate):
    # `helm install stvg charts/stvg --set train.enabled=false`: reward servers and the training
    # ServiceAccount that `stvg submit` runs use, but no RayJob.
    objects = render(sets={"train.enabled": "false"}, release="stvg")
    assert not kind(objects, "RayJob") and not kind(objects, "ConfigMap")
    assert {o["metadata"]["name"] for o in kind(objects, "ServiceAccount")} == {"stvg-train", "stvg-rewards"}
    assert one(objects, "Service", "-rewards")["metadata"]["name"] == "stvg-rewards"
    validate(objects)
