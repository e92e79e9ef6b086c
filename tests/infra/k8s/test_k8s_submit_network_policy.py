"""The NetworkPolicy `stvg submit` creates with a run, judged by what it lets through
(tests/charts/_netpol.py evaluates NetworkPolicies as Kubernetes does) between pods labelled as the
RayJob's templates label them: the run's Ray pods reach each other, its submitter and the KubeRay
operator reach the job API only, and nothing else in the namespace reaches the run. The chart's
release pods beside a submit run: tests/charts/test_chart_network_policies.py."""

from __future__ import annotations

from typing import Any

import pytest

from infra.k8s.config import ClusterConfig
from infra.k8s.rayjob import render_manifests
from tests.charts._netpol import Address, Pod, allowed

NAMESPACE = "ml"
RUN, OTHER_RUN = "grpo-7b-20260102-030405", "grpo-7b-20260102-040506"
GCS, DASHBOARD, CLIENT, SOME_WORKER_PORT = 6379, 8265, 10001, 40123
OPERATOR_LABELS = {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay"}
OPERATOR = Pod("ray-system", OPERATOR_LABELS)
STRANGER = Pod(NAMESPACE, {"app": "notebook"})


def submitted(name: str, cluster: ClusterConfig) -> tuple[list[dict[str, Any]], dict[str, Pod]]:
    """(policies, pods keyed head/learner/rollout/submitter) of one `stvg submit` run."""
    manifests = render_manifests(name, cluster, {"name": "demo"}, namespace=NAMESPACE)
    (rayjob,) = [obj for obj in manifests if obj["kind"] == "RayJob"]
    spec = rayjob["spec"]
    templates = {"head": spec["rayClusterSpec"]["headGroupSpec"]["template"],
                 **{g["groupName"]: g["template"] for g in spec["rayClusterSpec"]["workerGroupSpecs"]}}
    if "submitterPodTemplate" in spec:
        templates["submitter"] = spec["submitterPodTemplate"]
    # KubeRay (and the submitter's Job) add labels of their own beside the template's.
    extra = {"ray.io/cluster": f"{name}-raycluster-x7k2p", "batch.kubernetes.io/job-name": name}
    pods = {key: Pod(NAMESPACE, {**template["metadata"]["labels"], **extra}) for key, template in templates.items()}
    return [obj for obj in manifests if obj["kind"] == "NetworkPolicy"], pods


@pytest.fixture(scope="module")
def run():
    return submitted(RUN, ClusterConfig())


@pytest.fixture(scope="module")
def other_run():
    return submitted(OTHER_RUN, ClusterConfig())


def test_the_runs_ray_pods_reach_each_other_on_every_port(run):
    rules, p = run
    assert rules, "no NetworkPolicy rendered"
    for source, destination, port in [("learner", "head", GCS), ("rollout", "head", GCS), ("learner", "head", CLIENT),
                                      ("rollout", "head", DASHBOARD), ("head", "learner", SOME_WORKER_PORT),
                                      ("learner", "rollout", SOME_WORKER_PORT), ("rollout", "learner", 29500),
                                      ("learner", "learner", 29500)]:
        assert allowed(rules, p[source], p[destination], port), (source, destination, port)


def test_the_submitter_and_the_kuberay_operator_reach_the_job_api_only(run):
    rules, p = run
    for client in (p["submitter"], OPERATOR):
        assert allowed(rules, client, p["head"], DASHBOARD), client.labels
        for port in (GCS, CLIENT, SOME_WORKER_PORT):
            assert not allowed(rules, client, p["head"], port), (client.labels, port)
            assert not allowed(rules, client, p["learner"], port), (client.labels, port)


def test_strangers_and_other_runs_reach_nothing_of_the_run(run, other_run):
    rules, p = run
    other_rules, other = other_run
    both = rules + other_rules  # the other run's own policy opens nothing of this one
    namesake = Pod("team-b", p["learner"].labels)  # the same labels, another namespace
    operator_lookalike = Pod(NAMESPACE, {"app.kubernetes.io/name": "kuberay"})
    strangers = [STRANGER, namesake, operator_lookalike, *other.values()]
    for target in ("head", "learner", "rollout", "submitter"):
        for stranger in strangers:
            for port in (GCS, DASHBOARD, CLIENT, SOME_WORKER_PORT):
                assert not allowed(both, stranger, p[target], port), (stranger.labels, target, port)
    assert not allowed(both, Address("203.0.113.7"), p["head"], DASHBOARD)
    # and the other way round: this run reaches the other's head no more than a stranger does
    assert not allowed(both, p["learner"], other["head"], GCS)
    assert not allowed(both, p["submitter"], other["head"], DASHBOARD)


def test_a_pinned_operator_namespace_refuses_operator_labelled_pods_elsewhere(run):
    impostor = Pod("team-b", OPERATOR_LABELS)
    assert allowed(run[0], impostor, run[1]["head"], DASHBOARD)  # unpinned (the default): any namespace
    rules, p = submitted(RUN, ClusterConfig(kuberay_operator_namespace="ray-system"))
    assert allowed(rules, OPERATOR, p["head"], DASHBOARD)
    assert not allowed(rules, impostor, p["head"], DASHBOARD)


def test_the_operator_is_recognised_by_the_configured_labels():
    rules, p = submitted(RUN, ClusterConfig(kuberay_operator_labels={"app": "kuberay"}))
    assert allowed(rules, Pod("ray-system", {"app": "kuberay", "pod-template-hash": "abc"}), p["head"], DASHBOARD)
    assert not allowed(rules, OPERATOR, p["head"], DASHBOARD)


def test_http_mode_has_no_submitter_but_the_operator_still_reaches_the_job_api():
    rules, p = submitted(RUN, ClusterConfig(submission_mode="HTTPMode"))
    assert "submitter" not in p
    assert allowed(rules, OPERATOR, p["head"], DASHBOARD) and not allowed(rules, STRANGER, p["head"], DASHBOARD)


def test_egress_stays_open(run):
    rules, p = run
    for source in p.values():
        assert allowed(rules, source, Address("52.217.1.10"), 443)  # S3
        assert allowed(rules, source, Pod(NAMESPACE, {"app.kubernetes.io/component": "mlflow"}), 5000)


def test_without_the_policy_every_pod_of_the_namespace_reaches_the_head():
    rules, p = submitted(RUN, ClusterConfig(network_policy=False))
    assert rules == []
    assert allowed(rules, STRANGER, p["head"], GCS)  # the old behaviour: token authentication alone
