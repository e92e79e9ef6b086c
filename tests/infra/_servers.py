"""Real servers on 127.0.0.1 for tests and benchmarks: `mlflow server` and moto's S3.

    with mlflow_server(tmp_dir) as url:      # 'http://127.0.0.1:PORT', sqlite backend, ~13 s to start
        ...
    with s3_server() as endpoint_url:        # moto S3; AWS_* env points boto3 at it while open
        boto3.client("s3").create_bucket(Bucket="ckpt")
    with s3_server(set_env=False) as url:    # session fixture; then per test: with aws_test_env(url)

Both pick a free port, wait until the server answers, and stop only what they started.
Start each once per session (a session-scoped fixture): mlflow takes seconds to come up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

HOST = "127.0.0.1"

# What s3_server() puts in the environment: fake credentials, the endpoint, a region, and no
# user AWS config files, so a developer's ~/.aws never leaks into a test.
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",  # no 1 s IMDS probe when a test removes the keys
}
_AWS_UNSET = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3",
              "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"server exited with code {proc.returncode} before answering {url}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status < 500:
                    return
        except urllib.error.HTTPError as err:
            if err.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM the server's own process group (it was started in a new session), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@contextlib.contextmanager
def mlflow_server(root: Path, startup_timeout: float = 120.0) -> Iterator[str]:
    """Run `mlflow server` (sqlite under `root`, artifacts served from `root/artifacts`); yield its URL.

    Artifacts go through the server (--serve-artifacts), as they do for a cluster deployment.
    The server's output is in `root/mlflow-server.log`.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin) if mlflow_bin.exists() else "mlflow", "server",
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
           "--artifacts-destination", str(root / "artifacts"),
           "--host", HOST, "--port", str(port), "--workers", "1"]
    log = root / "mlflow-server.log"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # The job runner (huey consumers for GenAI jobs) adds 8 processes a tracking test never uses.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=root, env=env,
                                start_new_session=True)
    url = f"http://{HOST}:{port}"
    try:
        _wait_http(f"{url}/health", startup_timeout, proc, log)
        yield url
    finally:
        _stop(proc)


@contextlib.contextmanager
def aws_test_env(endpoint_url: str) -> Iterator[None]:
    """Point boto3 at `endpoint_url` with fake credentials; restore the environment afterwards."""
    saved = {k: os.environ.get(k) for k in (*_AWS_ENV, *_AWS_UNSET, "AWS_ENDPOINT_URL")}
    os.environ.update(_AWS_ENV, AWS_ENDPOINT_URL=endpoint_url)
    for key in _AWS_UNSET:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def s3_server(in_process: bool = True, enforce_auth: bool = False, set_env: bool = True) -> Iterator[str]:
    """moto's S3 on 127.0.0.1; yield its endpoint URL with AWS_* env set for boto3 while open.

    set_env=False leaves the environment alone: a session-scoped fixture can then apply
    `aws_test_env(endpoint)` per test, so the fake AWS settings never leak into other tests.

    in_process=True uses ThreadedMotoServer (starts in well under a second). in_process=False
    runs `moto_server` as its own process, so a benchmark does not share the GIL with it.
    enforce_auth=True (implies a process) makes moto check credentials: the fake test keys are
    then rejected with InvalidAccessKeyId, which is how tests get an "access denied".
    Buckets live as long as the server; give each test its own bucket name.
    """
    if in_process and not enforce_auth:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

        server = ThreadedMotoServer(ip_address=HOST, port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        try:
            with aws_test_env(endpoint) if set_env else contextlib.nullcontext():
                yield endpoint
        finally:
            server.stop()
        return
    port = free_port()
    moto_bin = Path(sys.executable).with_name("moto_server")
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0") if enforce_auth else None
    proc = subprocess.Popen([str(moto_bin), "-H", HOST, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    endpoint = f"http://{HOST}:{port}"
    try:
        _wait_http(endpoint + "/moto-api/", 30, proc)
        with aws_test_env(endpoint) if set_env else contextlib.nullcontext():
            yield endpoint
    finally:
        _stop(proc, grace=5)
