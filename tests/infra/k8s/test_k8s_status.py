"""RayJob state from KubeRay status + Kueue Workload conditions, and `stvg status` output."""

from __future__ import annotations

import pytest

from infra.cli import main
from infra.k8s.state import job_state, workload_for

NS = "ml"


def rayjob(name="run-a", uid="u-1", suspend=False, deployment="", job="", labels=None, **status) -> dict:
    return {"apiVersion": "ray.io/v1", "kind": "RayJob",
            "metadata": {"name": name, "namespace": NS, "uid": uid, "labels": labels or {},
                         "creationTimestamp": "2026-01-02T03:04:05Z"},
            "spec": {"suspend": suspend, "entrypoint": "stvg train /etc/stvg/run.yaml"},
            "status": {"jobDeploymentStatus": deployment, "jobStatus": job, **status}}


def workload(owner="run-a", uid="u-1", **conditions: tuple[str, str]) -> dict:
    return {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "Workload",
            "metadata": {"name": f"rayjob-{owner}-abc12", "namespace": NS,
                         "ownerReferences": [{"apiVersion": "ray.io/v1", "kind": "RayJob", "name": owner, "uid": uid}]},
            "status": {"conditions": [{"type": kind, "status": status, "message": message, "reason": kind}
                                      for kind, (status, message) in conditions.items()]}}


QUEUED = "couldn't assign flavors to pod set learner: insufficient unused quota for nvidia.com/gpu in flavor gpu, 8 more needed"
KUEUE = {"kueue.x-k8s.io/queue-name": "stvg", "kueue.x-k8s.io/priority-class": "stvg-high"}


def test_suspended_job_without_admission_is_queued_with_kueues_reason():
    state = job_state(rayjob(suspend=True, deployment="Suspended", labels=KUEUE),
                      workload(QuotaReserved=("False", QUEUED), Admitted=("False", "")))
    assert (state.phase, state.admitted, state.suspended) == ("queued", False, True)
    assert state.message == QUEUED
    assert (state.queue, state.priority) == ("stvg", "stvg-high")


def test_preempted_job_is_evicted():
    state = job_state(rayjob(suspend=True, deployment="Suspended"),
                      workload(Admitted=("False", ""), Evicted=("True", "Preempted to accommodate a higher priority Workload")))
    assert state.phase == "evicted" and "higher priority" in state.message


def test_admitted_running_job_is_running():
    state = job_state(rayjob(deployment="Running", job="RUNNING", rayClusterName="run-a-raycluster-x"),
                      workload(QuotaReserved=("True", ""), Admitted=("True", "")))
    assert (state.phase, state.admitted, state.ray_cluster) == ("running", True, "run-a-raycluster-x")


@pytest.mark.parametrize("deployment,job,phase", [
    ("Complete", "SUCCEEDED", "succeeded"), ("Complete", "STOPPED", "stopped"), ("Failed", "FAILED", "failed"),
    ("Initializing", "", "starting"), ("", "", "starting"), ("Retrying", "", "retrying"),
])
def test_phase_follows_kuberay_status_without_kueue(deployment, job, phase):
    state = job_state(rayjob(deployment=deployment, job=job, message="boom" if phase == "failed" else ""))
    assert state.phase == phase and state.admitted is None
    if phase == "failed":
        assert state.message == "boom"


def test_suspended_without_a_workload_is_just_suspended():
    assert job_state(rayjob(suspend=True)).phase == "suspended"


def test_workload_is_matched_by_owner_uid_not_by_a_namesake():
    old = workload(owner="run-a", uid="u-old", Admitted=("True", ""))
    new = workload(owner="run-a", uid="u-1", Admitted=("False", ""))
    assert workload_for(rayjob(uid="u-1"), [old, new]) is new
    assert workload_for(rayjob(name="run-b", uid="u-9"), [old, new]) is None


def test_status_of_a_named_job_through_the_api(capsys, stub_api):
    base = f"/apis/ray.io/v1/namespaces/{NS}/rayjobs"
    stub_api.route("GET", f"{base}/run-a", 200, rayjob(suspend=True, deployment="Suspended", labels=KUEUE))
    stub_api.route("GET", f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{NS}/workloads", 200,
                   {"items": [workload(QuotaReserved=("False", QUEUED))]})
    code = main(["status", "-n", NS, "run-a", "--kubeconfig", str(stub_api.kubeconfig), "--no-mlflow"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "RayJob ml/run-a: queued" in out
    assert "admitted by Kueue: no" in out and f"message: {QUEUED}" in out


def test_status_lists_jobs_when_kueue_is_not_installed(capsys, stub_api):
    base = f"/apis/ray.io/v1/namespaces/{NS}/rayjobs"
    stub_api.route("GET", base, 200, {"items": [rayjob(deployment="Running", job="RUNNING"),
                                                 rayjob(name="run-b", uid="u-2", deployment="Complete", job="SUCCEEDED")]})
    code = main(["status", "-n", NS, "--kubeconfig", str(stub_api.kubeconfig), "--no-mlflow"])
    out, _ = capsys.readouterr()
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["RAYJOB", "STATE", "ADMITTED", "QUEUE", "PRIORITY", "STARTED"]
    assert lines[1].split()[:3] == ["run-a", "running", "-"]
    assert lines[2].split()[:3] == ["run-b", "succeeded", "-"]


def test_status_of_a_missing_job_is_one_line(capsys, stub_api):
    stub_api.route("GET", f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/ghost", 404, {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
        "message": 'rayjobs.ray.io "ghost" not found', "details": {"name": "ghost", "group": "ray.io", "kind": "rayjobs"}})
    code = main(["status", "-n", NS, "ghost", "--kubeconfig", str(stub_api.kubeconfig), "--no-mlflow"])
    _, err = capsys.readouterr()
    assert code == 2 and err.strip() == "stvg status: error: RayJob ml/ghost not found (404)"


def test_status_without_kuberay_says_so(capsys, stub_api):
    # No route: the API server answers "404 page not found" for an API group it does not serve.
    code = main(["status", "-n", NS, "--kubeconfig", str(stub_api.kubeconfig), "--no-mlflow"])
    _, err = capsys.readouterr()
    assert code == 2 and "does not serve ray.io/v1 RayJobs (404): install the KubeRay operator" in err


def test_unreachable_cluster_still_shows_mlflow(capsys, closed_port_kubeconfig, tmp_path):
    uri = f"sqlite:///{tmp_path / 'absent.db'}"  # a store that does not exist yet has no runs
    code = main(["status", "-n", NS, "--kubeconfig", str(closed_port_kubeconfig), "--tracking-uri", uri])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "Kubernetes: cannot list RayJobs in namespace ml" in out and "connection refused" in out
    assert "no MLflow runs" in out


@pytest.mark.slow
def test_status_lists_mlflow_runs_with_step_reward_and_checkpoint(capsys, tmp_path):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("stvg", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(experiment, run_name="grpo-7b")
    client.log_metric(run.info.run_id, "progress/step", 12, step=12)
    client.log_metric(run.info.run_id, "reward/mean", 1.25, step=12)
    client.set_tag(run.info.run_id, "checkpoint_uri", "s3://runs/grpo-7b/step-12")
    code = main(["status", "--no-cluster", "--tracking-uri", uri, "--experiment", "stvg"])
    out, err = capsys.readouterr()
    assert code == 0, err
    store, header, row, look = out.splitlines()[:4]
    assert store == f"MLflow store {uri} (as given), experiment 'stvg':"
    assert header.split()[:4] == ["RUN", "STATUS", "STEP", "REWARD"]
    fields = row.split()
    assert fields[:4] == ["grpo-7b", "RUNNING", "12", "1.250"]
    assert fields[-1] == "s3://runs/grpo-7b/step-12"
    assert look.startswith("look at them: ")
    assert look.endswith(f"ui --backend-store-uri {uri} --port 5000 --workers 1")


def test_status_of_a_running_job_tells_how_to_read_its_ray_token(capsys, stub_api):
    job = rayjob(deployment="Running", job="RUNNING", rayClusterName="run-a-raycluster-x7k2p")
    job["spec"]["rayClusterSpec"] = {"authOptions": {"mode": "token"}}
    stub_api.route("GET", f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/run-a", 200, job)
    stub_api.route("GET", f"/apis/kueue.x-k8s.io/v1beta2/namespaces/{NS}/workloads", 200, {"items": []})
    code = main(["status", "-n", NS, "run-a", "--kubeconfig", str(stub_api.kubeconfig), "--no-mlflow"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert ("kubectl -n ml get secret run-a-raycluster-x7k2p -o jsonpath='{.data.auth_token}' | base64 -d"
            in out)


def test_status_says_when_a_job_runs_without_ray_authentication(capsys, stub_api):
    job = rayjob(deployment="Running", job="RUNNING", rayClusterName="run-a-raycluster-x7k2p")
    stub_api.route("GET", f"/apis/ray.io/v1/namespaces/{NS}/rayjobs/run-a", 200, job)
    code = main(["status", "-n", NS, "run-a", "--kubeconfig", str(stub_api.kubeconfig), "--no-mlflow"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "Ray token authentication: disabled" in out and "get secret" not in out


def test_status_says_it_read_the_default_store_of_the_current_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["status", "--no-cluster"]) == 0
    out = capsys.readouterr().out.strip()
    assert out == (f"no MLflow runs in the MLflow store sqlite:///{tmp_path}/mlruns/mlflow.db (the default local "
                   "store of this folder; --tracking-uri or MLFLOW_TRACKING_URI name another)")
    assert not (tmp_path / "mlruns").exists()  # reading creates no store
