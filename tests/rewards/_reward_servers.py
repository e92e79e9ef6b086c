"""Real `stvg serve-rewards` processes on 127.0.0.1 for tests and the benchmark.

    with reward_server("--workers", "2") as server:     # waits until /readyz answers 200
        httpx.post(f"{server.url}/v1/score", json=...)
        server.kill()                                   # SIGKILL, e.g. to test failover

Each server runs in its own process group on a free port and is torn down (SIGTERM, then SIGKILL)
when the block exits, whatever happened inside. Only the groups started here are signalled.
(Named _reward_servers, not _servers: tests/infra has a _servers module and both directories end
up on sys.path under pytest's default import mode.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Optional

import httpx

from tests.infra._servers import free_port

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningServer:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    metrics_dir: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        """Send `sig` to the server's whole process group (supervisor and workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (if still running) and remove its log and metrics files."""
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(10)
        # workers of a killed supervisor may outlive it for a moment
        self.signal(signal.SIGKILL)
        self.log_path.unlink(missing_ok=True)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)


def start_reward_server(*args: str, env: Optional[Mapping[str, str]] = None, ready_timeout: float = 60.0,
                        wait_ready: bool = True) -> RunningServer:
    """Start `stvg serve-rewards` with `args` on a free port; wait for /readyz unless told not to."""
    last_error = ""
    for _ in range(3):  # the free port can be taken between free_port() and bind: try another
        port = free_port()
        log_path = Path(tempfile.mkstemp(prefix="reward-server-", suffix=".log")[1])
        # given here rather than made by the server, so stop() can remove it even after a SIGKILL
        metrics_dir = Path(tempfile.mkdtemp(prefix="reward-server-metrics-"))
        full_env = {**os.environ, **(env or {}), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "serve-rewards", "--host", HOST, "--port", str(port), *args],
                cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        server = RunningServer(f"http://{HOST}:{port}", port, process, log_path, metrics_dir)
        if not wait_ready:
            return server
        try:
            wait_until_ready(server, ready_timeout)
            return server
        except RuntimeError as err:
            last_error = str(err)
            server.stop()
            if "address already in use" not in last_error.lower():
                raise
    raise RuntimeError(last_error)


def wait_until_ready(server: RunningServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"reward server exited with {server.process.returncode}:\n{server.log()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"reward server not ready after {timeout} s:\n{server.log()[-3000:]}")


@contextlib.contextmanager
def reward_server(*args: str, env: Optional[Mapping[str, str]] = None) -> Iterator[RunningServer]:
    server = start_reward_server(*args, env=env)
    try:
        yield server
    finally:
        server.stop()


def metric_value(metrics_text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there is none)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{key}="{val}"' in head for key, val in labels.items()):
            total += float(value)
    return total
