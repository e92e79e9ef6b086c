"""The MLflow arguments the chart renders, run by a real `mlflow server`: in-cluster clients calling
the Service by name must get through MLflow's Host-header guard, other hosts must not."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.infra._servers import free_port

CHART = Path(__file__).resolve().parents[2] / "charts" / "stvg"


def _get(url: str, host: str) -> int:
    request = urllib.request.Request(url, headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@contextlib.contextmanager
def _mlflow(args: list[str], backend_uri: str, cwd: Path):
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(MLFLOW_BACKEND_STORE_URI=backend_uri, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = cwd / "mlflow.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(mlflow_bin), "server", *args], stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True)
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


@pytest.mark.slow
def test_rendered_allowed_hosts_admit_service_names_and_reject_others(render, tmp_path):
    objects = render([CHART / "ci" / "gpu-values.yaml"])
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-mlflow")]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mlflow", "server"]
    args = list(container["args"])
    port = free_port()
    # Same arguments, but on loopback, a free port, one worker and a local artifact store.
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port)), ("--workers", "1"),
                        ("--artifacts-destination", str(tmp_path / "artifacts"))):
        args[args.index(flag) + 1] = value
    base = f"http://127.0.0.1:{port}"
    api = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
    with _mlflow(args, f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path) as (proc, log):
        deadline = time.monotonic() + 150
        while _get_or_none(f"{base}/health") != 200:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        for host in ("grpo-7b-mlflow:5000", "grpo-7b-mlflow.ml.svc:5000",
                     "grpo-7b-mlflow.ml.svc.cluster.local:5000", "mlflow.example.com", f"localhost:{port}"):
            assert _get(api, host) == 200, host
        for host in ("evil.example.com", "grpo-7b-mlflow.ml.svc.attacker.io:5000"):
            assert _get(api, host) in (400, 403), host
        # Health checks (kubelet probes by pod IP) are exempt from the guard.
        assert _get(f"{base}/health", "10.1.2.3:5000") == 200


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url, url.split("/")[2])
    except OSError:
        return None
