"""`stvg submit`: the dry run renders valid manifests holding the resolved run config; against a
stand-in server it creates ConfigMap, NetworkPolicy, RayJob in that order (cleaning up after a
failure), and API failures come back as one clear line (exit code 2)."""

from __future__ import annotations

import yaml

from infra.cli import main
from infra.k8s.validate import load_manifests, validate_object

RAYJOBS = "/apis/ray.io/v1/namespaces/ml/rayjobs"
CONFIGMAPS = "/api/v1/namespaces/ml/configmaps"
POLICIES = "/apis/networking.k8s.io/v1/namespaces/ml/networkpolicies"


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    """A Kubernetes `Status` object as the API server sends with errors."""
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "details": details or {}, "code": code}


def submit(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["submit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def dry_run(capsys, *args: str) -> list[dict]:
    code, out, err = submit(capsys, *args, "--dry-run")
    assert code == 0, err
    return load_manifests(out)


def by_kind(manifests: list[dict]) -> dict[str, dict]:
    found = {obj["kind"]: obj for obj in manifests}
    assert len(found) == len(manifests), [obj["kind"] for obj in manifests]
    return found


def test_a_checkpoint_folder_no_other_pod_reaches_is_refused_in_one_line(capsys, run_config_file):
    code, out, err = submit(capsys, str(run_config_file), "checkpoint.uri=''", "--dry-run")
    assert code == 2 and out == ""
    assert err.startswith("stvg submit: error: checkpoint.uri=runs/<name>/checkpoints is a folder on the driver's")
    assert "s3://bucket/prefix" in err and err.count("\n") == 1
    code, _, err = submit(capsys, str(run_config_file), "checkpoint.uri=/mnt/ckpt", "--dry-run")
    assert code == 2 and "checkpoint.uri=/mnt/ckpt" in err
    # a path on a writable claim mounted on every pod is fine
    code, out, err = submit(capsys, str(run_config_file), "checkpoint.uri=/mnt/ckpt/run1", "--dry-run",
                            "cluster.volumes=[{name: ckpt, mount_path: /mnt/ckpt, claim_name: nfs, read_only: false}]")
    assert code == 0, err
    rayjob = by_kind(load_manifests(out))["RayJob"]
    head = rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert {"name": "ckpt", "persistentVolumeClaim": {"claimName": "nfs", "readOnly": False}} in head["volumes"]


def test_dry_run_prints_a_valid_configmap_network_policy_and_rayjob(capsys, run_config_file):
    manifests = dry_run(capsys, str(run_config_file), "--name", "tiny-1")
    assert [obj["kind"] for obj in manifests] == ["ConfigMap", "NetworkPolicy", "RayJob"]
    for obj in manifests:
        assert obj["metadata"]["namespace"] == "ml"
        validate_object(obj)
    _, policy, rayjob = manifests
    assert rayjob["metadata"]["name"] == "tiny-1" and policy["metadata"]["name"] == "tiny-1-ray"
    learner = rayjob["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert learner["replicas"] == 2
    assert learner["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 2


def test_dry_run_configmap_holds_the_resolved_config_with_overrides(capsys, run_config_file, tmp_path):
    from infra.config import to_dict
    from trainer.config import load_run_config

    config_map = by_kind(dry_run(capsys, str(run_config_file), "--name", "tiny-1", "grpo.group_size=4",
                                 "seed=7"))["ConfigMap"]
    stored = yaml.safe_load(config_map["data"]["run.yaml"])
    assert stored["grpo"]["group_size"] == 4 and stored["seed"] == 7
    # What the pod will load is exactly what was validated here.
    copy = tmp_path / "stored.yaml"
    copy.write_text(config_map["data"]["run.yaml"])
    assert to_dict(load_run_config(copy)) == stored


def test_queue_priority_and_namespace_flags_win_over_the_config(capsys, run_config_file):
    found = by_kind(dry_run(capsys, str(run_config_file), "--name", "tiny-1", "--namespace", "team-b",
                            "--queue", "stvg", "--priority", "stvg-high"))
    config_map, policy, rayjob = found["ConfigMap"], found["NetworkPolicy"], found["RayJob"]
    labels = rayjob["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "stvg"
    assert labels["kueue.x-k8s.io/priority-class"] == "stvg-high"
    assert rayjob["metadata"]["namespace"] == config_map["metadata"]["namespace"] == "team-b"
    assert policy["metadata"]["namespace"] == "team-b"
    assert yaml.safe_load(config_map["data"]["run.yaml"])["cluster"]["queue"] == "stvg"


def test_an_empty_queue_flag_turns_queueing_off(capsys, run_config_file):
    rayjob = by_kind(dry_run(capsys, str(run_config_file), "--name", "tiny-1", "cluster.queue=stvg",
                             "--queue", ""))["RayJob"]
    assert not any(key.startswith("kueue.x-k8s.io/") for key in rayjob["metadata"]["labels"])


def test_default_name_comes_from_the_run_name(capsys, run_config_file):
    rayjob = by_kind(dry_run(capsys, str(run_config_file)))["RayJob"]
    name = rayjob["metadata"]["name"]
    assert name.startswith("tiny-run-") and len(name) == len("tiny-run-") + len("20260101-000000")


def test_missing_ray_resource_request_is_a_clear_error(capsys, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"rollout": {"resources_per_worker": {"stvg_rollout": 1}}}))
    code, out, err = submit(capsys, str(path), "--dry-run")
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert "learner.resources_per_worker.stvg_learner" in err


def test_more_workers_than_the_group_provides_is_a_clear_error(capsys, run_config_file):
    code, _, err = submit(capsys, str(run_config_file), "--dry-run", "learner.num_workers=5")
    assert code == 2
    assert "learner.num_workers=5 x stvg_learner=1 needs 5 units but cluster.learner provides 4" in err


def test_bad_cluster_value_and_bad_name_are_user_errors(capsys, run_config_file):
    code, _, err = submit(capsys, str(run_config_file), "--dry-run", "cluster.learner.replicas=-1")
    assert code == 2 and "cluster.learner.replicas=-1" in err
    code, _, err = submit(capsys, str(run_config_file), "--dry-run", "--name", "Not_A_Name")
    assert code == 2 and "run name 'Not_A_Name' is not allowed" in err


def test_unreachable_api_server_is_one_line(capsys, caplog, run_config_file, closed_port_kubeconfig):
    code, out, err = submit(capsys, str(run_config_file), "--name", "tiny-1", "--kubeconfig", str(closed_port_kubeconfig))
    assert code == 2 and out == ""
    assert not [r for r in caplog.records if r.levelno >= 30]  # no retry warnings around the one line
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "unreachable (connection refused)" in err and "ConfigMap ml/tiny-1-run-config" in err


def test_missing_kubeconfig_is_one_line(capsys, run_config_file, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    code, _, err = submit(capsys, str(run_config_file), "--kubeconfig", str(tmp_path / "nope"))
    assert code == 2 and "no Kubernetes cluster configured" in err and err.count("\n") == 1


def test_submit_creates_configmap_then_network_policy_then_rayjob_and_links_them(capsys, run_config_file,
                                                                                   stub_api):
    stub_api.route("POST", CONFIGMAPS, 201, "echo")
    stub_api.route("POST", POLICIES, 201, "echo")
    stub_api.route("POST", RAYJOBS, 201, "echo")
    stub_api.route("PATCH", f"{CONFIGMAPS}/tiny-1-run-config", 200, {"kind": "ConfigMap", "metadata": {}})
    stub_api.route("PATCH", f"{POLICIES}/tiny-1-ray", 200, {"kind": "NetworkPolicy", "metadata": {}})
    code, out, err = submit(capsys, str(run_config_file), "--name", "tiny-1", "--kubeconfig", str(stub_api.kubeconfig))
    assert code == 0, err
    assert "submitted RayJob ml/tiny-1" in out
    methods = [(method, path) for method, path, _ in stub_api.requests]
    # the policy exists before the RayJob, so no pod of the run is ever open to the namespace
    assert methods == [("POST", CONFIGMAPS), ("POST", POLICIES), ("POST", RAYJOBS),
                       ("PATCH", f"{CONFIGMAPS}/tiny-1-run-config"), ("PATCH", f"{POLICIES}/tiny-1-ray")]
    assert [body for _, _, body in stub_api.requests[:3]] == dry_run(capsys, str(run_config_file), "--name", "tiny-1")
    owner = {"apiVersion": "ray.io/v1", "kind": "RayJob", "name": "tiny-1", "uid": "uid-tiny-1"}
    for _, _, patch in stub_api.requests[3:]:
        assert patch["metadata"]["ownerReferences"] == [owner]


def test_without_network_policy_submit_creates_the_configmap_and_rayjob_only(capsys, run_config_file, stub_api):
    stub_api.route("POST", CONFIGMAPS, 201, "echo")
    stub_api.route("POST", RAYJOBS, 201, "echo")
    stub_api.route("PATCH", f"{CONFIGMAPS}/tiny-1-run-config", 200, {"kind": "ConfigMap", "metadata": {}})
    code, _, err = submit(capsys, str(run_config_file), "--name", "tiny-1", "cluster.network_policy=false",
                          "--kubeconfig", str(stub_api.kubeconfig))
    assert code == 0, err
    assert [(m, p) for m, p, _ in stub_api.requests] == [("POST", CONFIGMAPS), ("POST", RAYJOBS),
                                                         ("PATCH", f"{CONFIGMAPS}/tiny-1-run-config")]
    manifests = dry_run(capsys, str(run_config_file), "--name", "tiny-1", "cluster.network_policy=false")
    assert [obj["kind"] for obj in manifests] == ["ConfigMap", "RayJob"]


def test_missing_kuberay_crd_says_install_kuberay_and_removes_the_configmap_and_policy(capsys, run_config_file,
                                                                                       stub_api):
    stub_api.route("POST", CONFIGMAPS, 201, "echo")
    stub_api.route("POST", POLICIES, 201, "echo")
    stub_api.route("DELETE", f"{CONFIGMAPS}/tiny-1-run-config", 200, {"kind": "Status", "status": "Success"})
    stub_api.route("DELETE", f"{POLICIES}/tiny-1-ray", 200, {"kind": "Status", "status": "Success"})
    # No route for rayjobs: the real API server answers "404 page not found" for an unknown group.
    code, _, err = submit(capsys, str(run_config_file), "--name", "tiny-1", "--kubeconfig", str(stub_api.kubeconfig))
    assert code == 2 and err.count("\n") == 1
    assert "install the KubeRay operator" in err
    deleted = [p for m, p, _ in stub_api.requests if m == "DELETE"]
    assert sorted(deleted) == sorted([f"{CONFIGMAPS}/tiny-1-run-config", f"{POLICIES}/tiny-1-ray"])


def test_no_right_to_create_network_policies_is_one_line_and_removes_the_configmap(capsys, run_config_file,
                                                                                   stub_api):
    forbidden = ('networkpolicies.networking.k8s.io is forbidden: User "alice" cannot create resource '
                 '"networkpolicies" in API group "networking.k8s.io" in the namespace "ml"')
    stub_api.route("POST", CONFIGMAPS, 201, "echo")
    stub_api.route("POST", POLICIES, 403, status_body(403, "Forbidden", forbidden))
    stub_api.route("DELETE", f"{CONFIGMAPS}/tiny-1-run-config", 200, {"kind": "Status", "status": "Success"})
    code, out, err = submit(capsys, str(run_config_file), "--name", "tiny-1", "--kubeconfig", str(stub_api.kubeconfig))
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "NetworkPolicy ml/tiny-1-ray" in err and "forbidden (403)" in err
    assert 'cannot create resource "networkpolicies"' in err
    assert [(m, p) for m, p, _ in stub_api.requests] == [("POST", CONFIGMAPS), ("POST", POLICIES),
                                                         ("DELETE", f"{CONFIGMAPS}/tiny-1-run-config")]


def _submit_against(capsys, run_config_file, stub_api, status: int, body) -> str:
    stub_api.route("POST", CONFIGMAPS, status, body)
    code, out, err = submit(capsys, str(run_config_file), "--name", "tiny-1", "--kubeconfig", str(stub_api.kubeconfig))
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    return err


def test_unauthorized_forbidden_missing_namespace_and_conflict_are_one_line_each(capsys, run_config_file, stub_api):
    err = _submit_against(capsys, run_config_file, stub_api, 401, status_body(401, "Unauthorized", "Unauthorized"))
    assert "rejected the credentials (401 Unauthorized)" in err
    forbidden = ('configmaps is forbidden: User "alice" cannot create resource "configmaps" in API group "" '
                 'in the namespace "ml"')
    err = _submit_against(capsys, run_config_file, stub_api, 403, status_body(403, "Forbidden", forbidden))
    assert "forbidden (403)" in err and 'User "alice" cannot create' in err
    err = _submit_against(capsys, run_config_file, stub_api, 404,
                          status_body(404, "NotFound", 'namespaces "ml" not found', {"name": "ml", "kind": "namespaces"}))
    assert "the namespace does not exist" in err
    err = _submit_against(capsys, run_config_file, stub_api, 409,
                          status_body(409, "AlreadyExists", 'configmaps "tiny-1-run-config" already exists'))
    assert "ConfigMap ml/tiny-1-run-config" in err and "already exists (409)" in err


def test_the_7b_preset_passes_the_plan_check(capsys, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="stvg.submit"):
        manifests = dry_run(capsys, "qwen25vl-7b-stvg-o1", "--name", "grpo-7b")
    assert [m["kind"] for m in manifests] == ["ConfigMap", "NetworkPolicy", "RayJob"]
    assert any(r.getMessage().startswith("stvg plan: fits:") for r in caplog.records)


def test_a_run_that_does_not_fit_is_refused_in_one_line_unless_forced(capsys):
    oversized = ("qwen25vl-7b-stvg-o1", "--name", "grpo-7b", "learner.gradient_checkpointing=false")
    code, out, err = submit(capsys, *oversized, "--dry-run")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "the run does not fit: a learner GPU needs" in err and "a100-40gb" in err
    assert "fix: learner.gradient_checkpointing=true" in err and "--force submits anyway" in err
    config_map = by_kind(dry_run(capsys, *oversized, "--force"))["ConfigMap"]
    assert yaml.safe_load(config_map["data"]["run.yaml"])["learner"]["gradient_checkpointing"] is False


def test_a_model_the_plan_cannot_read_needs_model_config_or_force(capsys):
    unknown = ("qwen25vl-7b-stvg-o1", "--name", "grpo-7b", "model.path=/models/my-finetune")
    code, _, err = submit(capsys, *unknown, "--dry-run")
    assert code == 2 and err.count("\n") == 1
    assert "cannot plan the run: model.path='/models/my-finetune' cannot be read here" in err
    assert len(dry_run(capsys, *unknown, "--model-config", "qwen2.5-vl-7b")) == 3
    assert len(dry_run(capsys, *unknown, "--force")) == 3
