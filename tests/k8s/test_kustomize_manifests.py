"""`kubectl kustomize` builds every kustomization under k8s/, the results validate offline, and
the cluster-side objects agree with each other and with what the chart and `stvg submit` ask for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "k8s"
CHART_CI = Path(__file__).resolve().parents[2] / "charts" / "stvg" / "ci"
KUSTOMIZATIONS = sorted(path.parent for path in K8S.rglob("kustomization.yaml"))


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_the_expected_kustomizations_exist():
    relative = {str(path.relative_to(K8S)) for path in KUSTOMIZATIONS}
    assert {"base", "karpenter", "overlays/karpenter-aws", "overlays/cluster-autoscaler",
            "examples/grpo-7b"} <= relative


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(K8S)))
def test_every_kustomization_builds_and_validates(build, validate, folder):
    objects = build(folder)
    assert objects
    validate(objects)


def test_gpu_flavor_selects_the_karpenter_gpu_nodes_and_their_taint(build):
    objects = build(K8S / "overlays" / "karpenter-aws")
    flavor = named(objects, "ResourceFlavor", "gpu")["spec"]
    pool = named(objects, "NodePool", "stvg-gpu")["spec"]["template"]
    assert flavor["nodeLabels"].items() <= pool["metadata"]["labels"].items()
    assert flavor["nodeTaints"] == pool["spec"]["taints"]
    node_class = named(objects, "EC2NodeClass", "stvg-gpu")
    assert pool["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                            "name": node_class["metadata"]["name"]}
    assert "CLUSTER_NAME" not in yaml.safe_dump(node_class)


def test_gpu_quota_does_not_exceed_what_the_node_pool_may_launch(build):
    objects = build(K8S / "overlays" / "karpenter-aws")
    queue = named(objects, "ClusterQueue", "stvg")["spec"]
    (gpu_flavor,) = [f for f in queue["resourceGroups"][0]["flavors"] if f["name"] == "gpu"]
    quota = {r["name"]: r["nominalQuota"] for r in gpu_flavor["resources"]}
    limit = named(objects, "NodePool", "stvg-gpu")["spec"]["limits"]["nvidia.com/gpu"]
    assert quota["nvidia.com/gpu"] == 32 and quota["nvidia.com/gpu"] <= limit


def test_clusterqueue_lists_every_covered_resource_in_every_flavor(build):
    objects = build(K8S / "base")
    queue = named(objects, "ClusterQueue", "stvg")["spec"]
    flavors = {o["metadata"]["name"] for o in objects if o["kind"] == "ResourceFlavor"}
    for group in queue["resourceGroups"]:
        assert "nvidia.com/gpu" in group["coveredResources"]
        for flavor in group["flavors"]:
            assert flavor["name"] in flavors
            assert [r["name"] for r in flavor["resources"]] == group["coveredResources"]
            # CEL rule of the CRD (not checked by the JSON schema): borrowingLimit needs a cohort.
            if any("borrowingLimit" in r for r in flavor["resources"]):
                assert queue.get("cohortName")
    # GPU-less pods (head, submitter) must never be charged to the GPU flavor: it is tainted.
    assert named(objects, "ResourceFlavor", "gpu")["spec"]["nodeTaints"]
    assert "nodeTaints" not in (named(objects, "ResourceFlavor", "cpu").get("spec") or {})


def test_eight_one_gpu_pods_with_the_default_local_disk_fit_a_shipped_gpu_node(build):
    from infra.k8s.config import LearnerGroupConfig, RolloutGroupConfig, parse_quantity

    objects = build(K8S / "karpenter")
    (node_class,) = [o for o in objects if o["kind"] == "EC2NodeClass"]
    disk = parse_quantity("volumeSize", node_class["spec"]["blockDeviceMappings"][0]["ebs"]["volumeSize"])
    chart = yaml.safe_load((K8S.parent / "charts" / "stvg" / "values.yaml").read_text())["train"]
    per_pod = max(parse_quantity("default", q) for q in (
        LearnerGroupConfig().ephemeral_storage, RolloutGroupConfig().ephemeral_storage,
        chart["learner"]["ephemeralStorage"], chart["rollout"]["ephemeralStorage"]))
    # kubelet's default hard eviction threshold keeps 10 % of the disk free; the image takes ~20 GB
    assert 8 * per_pod + 20 * 2**30 <= 0.9 * disk


def test_local_queue_and_priorities_are_the_ones_the_chart_and_examples_use(build):
    objects = build(K8S / "base")
    local = named(objects, "LocalQueue", "stvg")
    assert local["metadata"]["namespace"] == "stvg"
    assert local["spec"]["clusterQueue"] == "stvg"
    queue = named(objects, "ClusterQueue", "stvg")["spec"]
    assert queue["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "stvg"}
    priorities = {o["metadata"]["name"]: o["value"] for o in objects if o["kind"] == "WorkloadPriorityClass"}
    assert priorities["stvg-high"] > priorities["stvg-default"] > priorities["stvg-low"]
    kueue_values = yaml.safe_load((CHART_CI / "kueue-on-values.yaml").read_text())["kueue"]
    assert kueue_values["queueName"] == "stvg" and kueue_values["priorityClass"] in priorities


def test_namespace_enforces_the_restricted_pod_security_standard(build):
    labels = named(build(K8S / "base"), "Namespace", "stvg")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_cluster_autoscaler_overlay_selects_the_node_group_by_label(build):
    objects = build(K8S / "overlays" / "cluster-autoscaler")
    assert named(objects, "ResourceFlavor", "gpu")["spec"]["nodeLabels"] == {
        "stvg.io/node-pool": "gpu", "eks.amazonaws.com/nodegroup": "gpu-a100"}
    assert not [o for o in objects if o["kind"] in ("NodePool", "EC2NodeClass")]


def _gpu_group_selectors() -> dict[str, dict[str, str]]:
    """Every nodeSelector we ship for the GPU groups: the chart's defaults and ci/ values, the presets'."""
    from trainer.presets import PRESET_DIR

    chart = Path(__file__).resolve().parents[2] / "charts" / "stvg"
    found = {}
    for source in [chart / "values.yaml", *sorted(CHART_CI.glob("*-values.yaml"))]:
        train = (yaml.safe_load(source.read_text()) or {}).get("train") or {}
        for group in ("learner", "rollout"):
            selector = (train.get(group) or {}).get("nodeSelector")
            if selector:
                found[f"{source.name}:{group}"] = selector
    for preset in sorted(PRESET_DIR.glob("*.yaml")):
        cluster = (yaml.safe_load(preset.read_text()) or {}).get("cluster") or {}
        for group in ("learner", "rollout"):
            selector = (cluster.get(group) or {}).get("node_selector")
            if selector:
                found[f"{preset.name}:{group}"] = selector
    return found


def test_gpu_groups_select_labels_that_the_shipped_gpu_nodes_carry(build):
    """A selector naming a label no node carries leaves the pods Pending forever: every GPU-group
    selector we ship must hold on the Karpenter pool's nodes and on the cluster-autoscaler node group
    (whose labels the overlay's flavor names)."""
    karpenter = build(K8S / "overlays" / "karpenter-aws")
    pool = named(karpenter, "NodePool", "stvg-gpu")
    carried = {"karpenter": {**pool["spec"]["template"]["metadata"]["labels"],
                             "karpenter.sh/nodepool": pool["metadata"]["name"]},  # Karpenter adds this one
               "cluster-autoscaler": named(build(K8S / "overlays" / "cluster-autoscaler"), "ResourceFlavor",
                                           "gpu")["spec"]["nodeLabels"]}
    selectors = _gpu_group_selectors()
    assert "values.yaml:learner" in selectors and "values.yaml:rollout" in selectors
    for where, selector in selectors.items():
        for cluster, labels in carried.items():
            assert selector.items() <= labels.items(), f"{where} selects {selector}, {cluster} nodes carry {labels}"


def test_example_rayjob_and_network_policy_are_what_submit_renders_from_its_run_config(build):
    from infra.k8s.rayjob import render_network_policy, render_rayjob
    from trainer.config import load_run_config

    folder = K8S / "examples" / "grpo-7b"
    config = load_run_config(folder / "run.yaml")
    expected = render_rayjob("grpo-7b", config.cluster.namespace, config.cluster, "grpo-7b-run-config")
    objects = build(folder)
    rayjob = named(objects, "RayJob", "grpo-7b")
    assert rayjob["spec"] == expected["spec"]
    policy = named(objects, "NetworkPolicy", "grpo-7b-ray")
    assert policy["spec"] == render_network_policy("grpo-7b", config.cluster.namespace, config.cluster)["spec"]
    assert policy["metadata"]["namespace"] == "stvg"
    assert rayjob["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "stvg"
    config_map = named(objects, "ConfigMap", "grpo-7b-run-config")
    assert config_map["metadata"]["namespace"] == "stvg"
    assert yaml.safe_load(config_map["data"]["run.yaml"]) == yaml.safe_load((folder / "run.yaml").read_text())


def test_example_fits_the_base_queue_flavors(build):
    base = build(K8S / "base")
    flavor = named(base, "ResourceFlavor", "gpu")["spec"]
    rayjob = named(build(K8S / "examples" / "grpo-7b"), "RayJob", "grpo-7b")
    priorities = {o["metadata"]["name"] for o in base if o["kind"] == "WorkloadPriorityClass"}
    assert rayjob["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] in priorities
    for group in rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        spec = group["template"]["spec"]
        assert spec["nodeSelector"].items() >= flavor["nodeLabels"].items()
        tolerated = {(t["key"], t.get("effect")) for t in spec["tolerations"]}
        assert {(t["key"], t["effect"]) for t in flavor["nodeTaints"]} <= tolerated


def test_the_7b_example_runs_the_7b_preset_unchanged():
    from trainer.presets import resolve

    example = yaml.safe_load((K8S / "examples/grpo-7b/run.yaml").read_text())
    assert example == yaml.safe_load(resolve("qwen25vl-7b-stvg-o1").read_text())
