"""The MLflow command `stvg train` prints after a run works as printed, from any folder, with no
virtualenv activated: it starts MLflow's UI on the run's store and the UI serves the run."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request

import pytest

from infra.tracking import Tracker, TrackingConfig, ui_hint
from tests.infra._servers import _stop, _wait_http, free_port

pytestmark = pytest.mark.slow


def test_the_printed_mlflow_ui_command_serves_the_run_without_an_activated_venv(tmp_path):
    uri = f"sqlite:///{tmp_path / 'run' / 'mlruns' / 'mlflow.db'}"
    with Tracker.start(TrackingConfig(tracking_uri=uri, run_name="first-hour")) as tracker:
        tracker.log_metrics({"reward/mean": 0.5}, step=1)
        run_id = tracker.run_id
    command = shlex.split(ui_hint(uri))
    assert command[0] == os.path.join(os.path.dirname(sys.executable), "mlflow")  # this venv's, not PATH's
    port = free_port()
    command[command.index("--port") + 1] = str(port)  # 5000 may be taken here: only the port differs
    bare_path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                                if not p.startswith(sys.prefix))  # as if the venv were not activated
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MLFLOW_TRACKING_URI")}
    log = tmp_path / "ui.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env={**env, "PATH": bare_path}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_http(f"{url}/health", 120, proc, log)
        with urllib.request.urlopen(f"{url}/ajax-api/2.0/mlflow/runs/get?run_id={run_id}", timeout=30) as answer:
            run = json.load(answer)["run"]
        assert run["info"]["run_name"] == "first-hour"
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]}["reward/mean"] == 0.5
    finally:
        _stop(proc)


def test_a_tracking_server_is_named_by_its_address():
    assert ui_hint("http://mlflow.mlflow.svc:5000") == "http://mlflow.mlflow.svc:5000"
