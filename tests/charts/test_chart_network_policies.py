"""The chart's NetworkPolicies, judged by what they let through (tests/charts/_netpol.py evaluates
them as Kubernetes does) between pods labelled as the chart and `stvg submit` label them: one test
per rule, for the default values and for ci/locked-down-values.yaml."""

from __future__ import annotations

import json

import pytest

from infra.k8s.config import ClusterConfig
from infra.k8s.rayjob import render_manifests, render_rayjob
from tests.charts._netpol import Address, Pod, allowed
from tests.charts.conftest import NAMESPACE
from tests.charts.test_chart_render import CI, one, pod_templates

KUBERAY = {"ray.io/node-type": "head"}  # KubeRay adds its own labels beside the template's
OPERATOR = Pod("ray-system", {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay"})
STRANGER = Pod(NAMESPACE, {"app": "notebook"})
ELSEWHERE = Pod("team-b", {"app.kubernetes.io/name": "stvg", "app.kubernetes.io/component": "ray-head"})
GCS, DASHBOARD, CLIENT, METRICS, SOME_WORKER_PORT = 6379, 8265, 10001, 8080, 40123


def pods(objects) -> dict[str, Pod]:
    """Every pod the release creates, keyed head/learner/rollout/submitter/rewards/mlflow."""
    found = {}
    for obj in objects:
        for label, template in pod_templates(obj):
            component = template["metadata"]["labels"]["app.kubernetes.io/component"]
            found[component.removeprefix("ray-")] = Pod(NAMESPACE, {**template["metadata"]["labels"], **KUBERAY})
    return found


def policies(objects) -> list[dict]:
    # The API server puts them in the release namespace; `helm template` leaves metadata.namespace out.
    return [{**obj, "metadata": {**obj["metadata"], "namespace": NAMESPACE}}
            for obj in objects if obj["kind"] == "NetworkPolicy"]


@pytest.fixture(scope="module")
def default(render):
    objects = render(sets={"mlflow.enabled": "true", "mlflow.backendStore.existingSecret": json.dumps("db"),
                           "mlflow.artifactsDestination": json.dumps("s3://b/mlflow")})
    return policies(objects), pods(objects)


@pytest.fixture(scope="module")
def locked(render):
    objects = render([CI["locked-down"]])
    return policies(objects), pods(objects)


@pytest.fixture(scope="module")
def other_release(render):
    return pods(render(release="t2"))


@pytest.fixture(scope="module")
def submit_run():
    """Pods of a run started by `stvg submit` in the same namespace (not part of any release)."""
    rayjob = render_rayjob("grpo-7b-20260102-030405", NAMESPACE, ClusterConfig(), "cm")
    return pods([rayjob])


@pytest.fixture(scope="module")
def submit_run_policy():
    """The NetworkPolicy `stvg submit` creates with that run."""
    manifests = render_manifests("grpo-7b-20260102-030405", ClusterConfig(), {"name": "demo"}, namespace=NAMESPACE)
    return [obj for obj in manifests if obj["kind"] == "NetworkPolicy"]


@pytest.mark.parametrize("values", ["default", "locked"])
def test_a_release_and_a_submit_run_in_one_namespace_keep_apart_and_share_the_services(request, values,
                                                                                         submit_run, submit_run_policy):
    rules, p = request.getfixturevalue(values)
    rules = rules + submit_run_policy
    assert submit_run_policy
    ray = ("head", "learner", "rollout", "submitter")
    for port in (GCS, DASHBOARD, CLIENT, SOME_WORKER_PORT):
        for target in ray:
            for source in (*ray, "rewards", "mlflow"):
                assert not allowed(rules, p[source], submit_run[target], port), ("release", source, target, port)
            for source in ray:
                assert not allowed(rules, submit_run[source], p[target], port), ("submit", source, target, port)
    # each keeps its own traffic, and the submit run still uses the release's reward servers and MLflow
    assert allowed(rules, submit_run["learner"], submit_run["head"], GCS)
    assert allowed(rules, submit_run["submitter"], submit_run["head"], DASHBOARD)
    assert allowed(rules, p["learner"], p["head"], GCS)
    assert allowed(rules, submit_run["learner"], p["rewards"], 8000)
    assert allowed(rules, submit_run["head"], p["mlflow"], 5000)


def test_one_policy_per_component_and_none_when_disabled(render):
    names = sorted(p["metadata"]["name"] for p in policies(render([CI["locked-down"]])))
    assert names == ["t1-stvg-mlflow", "t1-stvg-ray", "t1-stvg-rewards"]
    assert not policies(render(sets={"networkPolicy.enabled": "false"}))


@pytest.mark.parametrize("values", ["default", "locked"])
def test_the_release_ray_pods_reach_each_other_on_every_port(request, values):
    rules, p = request.getfixturevalue(values)
    for source, destination, port in [("learner", "head", GCS), ("rollout", "head", GCS),
                                      ("head", "learner", SOME_WORKER_PORT), ("learner", "rollout", SOME_WORKER_PORT),
                                      ("rollout", "learner", 29500)]:
        assert allowed(rules, p[source], p[destination], port), (source, destination, port)


@pytest.mark.parametrize("values", ["default", "locked"])
def test_the_head_is_closed_to_every_other_pod(request, values, other_release, submit_run):
    rules, p = request.getfixturevalue(values)
    for stranger in (STRANGER, ELSEWHERE, other_release["head"], other_release["learner"], submit_run["learner"],
                     p["rewards"], p["mlflow"]):
        for port in (GCS, DASHBOARD, CLIENT, SOME_WORKER_PORT):
            assert not allowed(rules, stranger, p["head"], port), (stranger.labels, port)
    assert not allowed(rules, Address("203.0.113.7"), p["head"], DASHBOARD)


@pytest.mark.parametrize("values", ["default", "locked"])
def test_the_submitter_reaches_the_job_api_only(request, values):
    rules, p = request.getfixturevalue(values)
    assert allowed(rules, p["submitter"], p["head"], DASHBOARD)
    assert not allowed(rules, p["submitter"], p["head"], GCS)
    assert not allowed(rules, p["submitter"], p["head"], CLIENT)


def test_the_kuberay_operator_reaches_the_job_api_only(default, locked):
    for rules, p in (default, locked):
        assert allowed(rules, OPERATOR, p["head"], DASHBOARD)
        assert not allowed(rules, OPERATOR, p["head"], GCS)
    impostor = Pod("team-b", OPERATOR.labels)  # kuberayOperator.namespace=ray-system pins it
    assert allowed(default[0], impostor, default[1]["head"], DASHBOARD)
    assert not allowed(locked[0], impostor, locked[1]["head"], DASHBOARD)


def test_extra_ingress_opens_what_it_names(default, locked):
    prometheus = Pod("monitoring", {"app": "prometheus"})
    assert allowed(locked[0], prometheus, locked[1]["head"], METRICS)
    assert not allowed(locked[0], prometheus, locked[1]["head"], GCS)
    assert not allowed(default[0], prometheus, default[1]["head"], METRICS)


@pytest.mark.parametrize("values", ["default", "locked"])
def test_reward_servers_serve_ray_pods_of_any_run_in_the_namespace(request, values, other_release, submit_run):
    rules, p = request.getfixturevalue(values)
    for client in (p["learner"], p["head"], other_release["learner"], submit_run["learner"]):
        assert allowed(rules, client, p["rewards"], 8000), client.labels
    for stranger in (STRANGER, ELSEWHERE, p["submitter"], p["mlflow"], OPERATOR):
        assert not allowed(rules, stranger, p["rewards"], 8000), stranger.labels
    assert not allowed(rules, p["learner"], p["rewards"], 9090)  # only the serving port


def test_reward_servers_accept_the_listed_namespaces(default, locked):
    prometheus = Pod("monitoring", {"app": "prometheus"})
    assert allowed(locked[0], prometheus, locked[1]["rewards"], 8000)
    assert not allowed(default[0], prometheus, default[1]["rewards"], 8000)


def test_mlflow_serves_ray_pods_and_the_listed_namespaces_and_address_ranges(default, locked, submit_run):
    ingress_controller = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    for rules, p in (default, locked):
        assert allowed(rules, p["head"], p["mlflow"], 5000)
        assert allowed(rules, submit_run["head"], p["mlflow"], 5000)
        assert not allowed(rules, STRANGER, p["mlflow"], 5000)
        assert not allowed(rules, p["rewards"], p["mlflow"], 5000)
    assert allowed(locked[0], ingress_controller, locked[1]["mlflow"], 5000)
    assert allowed(locked[0], Address("10.8.4.2"), locked[1]["mlflow"], 5000)
    assert not allowed(locked[0], Address("10.9.4.2"), locked[1]["mlflow"], 5000)
    assert not allowed(default[0], ingress_controller, default[1]["mlflow"], 5000)
    assert not allowed(default[0], Address("10.8.4.2"), default[1]["mlflow"], 5000)


def test_egress_is_open_by_default(default):
    rules, p = default
    for source in ("head", "learner", "submitter", "rewards", "mlflow"):
        assert allowed(rules, p[source], Address("198.51.100.20"), 443), source
    assert allowed(rules, p["learner"], Pod("other", {"app": "db"}), 5432)


def test_restricted_egress_allows_dns_the_runs_own_services_and_the_extra_rules_only(locked, other_release):
    rules, p = locked
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})
    s3, elsewhere = Address("52.217.1.10"), Address("198.51.100.20")
    for source in ("head", "learner", "rollout", "submitter", "rewards", "mlflow"):
        assert allowed(rules, p[source], dns, 53, "UDP") and allowed(rules, p[source], dns, 53, "TCP"), source
        assert allowed(rules, p[source], s3, 443), source
        assert not allowed(rules, p[source], elsewhere, 443), source
        assert not allowed(rules, p[source], s3, 80), source
    assert allowed(rules, p["learner"], p["rewards"], 8000) and allowed(rules, p["head"], p["mlflow"], 5000)
    assert allowed(rules, p["submitter"], p["head"], DASHBOARD) and allowed(rules, p["learner"], p["head"], GCS)
    assert not allowed(rules, p["learner"], other_release["head"], GCS)  # not even a namesake release's Ray
    assert not allowed(rules, p["rewards"], p["mlflow"], 5000)


def test_policies_name_no_component_the_release_does_not_deploy(render):
    objects = render([CI["kueue-off"]])  # no reward servers, no MLflow
    assert [p["metadata"]["name"] for p in policies(objects)] == ["t1-stvg-ray"]
    shared = render(sets={"train.enabled": "false"}, release="stvg")  # the shared-services release
    assert [p["metadata"]["name"] for p in policies(shared)] == ["stvg-rewards"]
    assert one(objects, "RayJob")
