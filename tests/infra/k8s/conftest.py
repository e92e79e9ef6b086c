"""A stand-in Kubernetes API server on 127.0.0.1 (real HTTP, canned Kubernetes responses) and a
kubeconfig pointing at it, so `stvg submit` / `stvg status` run their real client code end to end."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml


@dataclass
class StubApi:
    url: str
    kubeconfig: Path
    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    """(METHOD, path) -> (status, JSON body or text). Unknown routes answer 404 as a real server does."""
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    """(METHOD, path, parsed JSON body) of every request, in order."""

    def route(self, method: str, path: str, status: int, body: Any) -> None:
        self.routes[(method, path)] = (status, body)


def _handler(stub: StubApi):
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            stub.requests.append((self.command, path, json.loads(raw) if raw else None))
            status, body = stub.routes.get((self.command, path), (404, "404 page not found"))
            if status in (200, 201) and body == "echo":
                body = json.loads(raw)
                body.setdefault("metadata", {})["uid"] = "uid-" + body["metadata"]["name"]
            text = body if isinstance(body, str) else json.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
            self.send_header("Content-Length", str(len(text.encode())))
            self.end_headers()
            self.wfile.write(text.encode())

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _answer

        def log_message(self, *args) -> None:  # keep test output clean
            pass

    return Handler


@pytest.fixture
def stub_api(tmp_path) -> StubApi:
    server = ThreadingHTTPServer(("127.0.0.1", 0), None)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    kubeconfig = tmp_path / "kubeconfig"
    stub = StubApi(url=url, kubeconfig=kubeconfig)
    server.RequestHandlerClass = _handler(stub)
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stub",
        "clusters": [{"name": "stub", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "tester"}}],
    }))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield stub
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_kubeconfig(tmp_path) -> Path:
    """A kubeconfig whose server is a loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "kubeconfig-closed"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "closed",
        "clusters": [{"name": "closed", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "closed", "context": {"cluster": "closed", "user": "tester"}}],
    }))
    return path


@pytest.fixture
def run_config_file(tmp_path) -> Path:
    """A small valid run config with a cluster section (2 learner pods x 2 GPUs, 1 rollout pod)."""
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({
        "name": "Tiny_Run",
        "learner": {"num_workers": 4, "resources_per_worker": {"stvg_learner": 1}},
        "rollout": {"num_workers": 1, "resources_per_worker": {"stvg_rollout": 1}},
        "checkpoint": {"uri": "s3://bucket/runs/tiny"},
        "cluster": {"namespace": "ml", "learner": {"replicas": 2, "gpus_per_worker": 2},
                    "secrets": {"reward_token": "reward-token"}},
    }))
    return path
