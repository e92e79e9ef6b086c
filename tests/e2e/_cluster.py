"""A multi-node Ray cluster on one machine, with node filesystems kept apart as pods' are.

Every node (the head too) is `ray start --block` inside its own mount namespace (`unshare --mount`,
root only) with a private tmpfs over `<root>/node` (its HOME, TMPDIR, Ray temp dir and working
folder, hence every cache and scratch path of the run) and over /dev/shm: a file one node writes
there is invisible to the others, as on separate pods. The checkout and the virtualenv stay visible,
as the image is on every pod. Each node has its own loopback address (127.0.0.2, .3, ...), so the
cluster's traffic never leaves 127.0.0.0/8.

    with LocalCluster(root, env) as cluster:
        cluster.start_head("127.0.0.2")
        w1 = cluster.add_worker("w1", "127.0.0.3", {"stvg_learner": 1})
        ...  submit jobs to cluster.dashboard_url, as a RayJob's submitter does
        cluster.kill(w1)                      # SIGKILL every process of that node

Only what this object started is ever signalled (found by mount namespace), never `ray stop`.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional

from tests.infra._servers import free_port

RAY = str(Path(sys.executable).with_name("ray"))
NODE_DIR = "node"
"""Under the cluster root, the folder every node mounts its private tmpfs over."""


@dataclass
class Node:
    name: str
    ip: str
    process: subprocess.Popen
    log: Path
    namespace: str = ""
    """The node's mount namespace ('mnt:[inode]'): every process in it belongs to the node."""
    node_id: str = ""
    """Ray's id of the node, once it has joined."""

    def processes(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "mnt") == self.namespace:
                        pids.append(int(entry.name))
                except OSError:  # gone, or not ours to read
                    continue
        return pids


class LocalCluster:
    def __init__(self, root: Path, env: Mapping[str, str]):
        self.root = Path(root)
        self.env = dict(env)
        self.nodes: list[Node] = []
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.head_ip = ""
        (self.root / NODE_DIR).mkdir(parents=True, exist_ok=True)

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.head_ip}:{self.dashboard_port}"

    @property
    def node_root(self) -> Path:
        """The path of every node's private folder (empty as seen from outside the nodes)."""
        return self.root / NODE_DIR

    def start_head(self, ip: str) -> Node:
        self.head_ip = ip
        node = self._start("head", ip, ["--head", f"--port={self.gcs_port}", "--num-cpus=1",
                                        "--include-dashboard=true", f"--dashboard-host={ip}",
                                        f"--dashboard-port={self.dashboard_port}"])
        self._wait_joined(node)
        return node

    def add_worker(self, name: str, ip: str, resources: Mapping[str, float], num_cpus: int = 2) -> Node:
        node = self._start(name, ip, [f"--address={self.head_ip}:{self.gcs_port}", f"--num-cpus={num_cpus}",
                                      f"--resources={json.dumps(dict(resources))}"])
        self._wait_joined(node)
        return node

    def kill(self, node: Node) -> None:
        """SIGKILL the node's raylet and every process it runs, as when a pod's node is lost."""
        for _ in range(5):  # processes forked while we signal: sweep again
            pids = node.processes()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        node.process.wait(30)

    def stop(self) -> None:
        for node in reversed(self.nodes):
            if node.namespace:
                self.kill(node)
            elif node.process.poll() is None:
                node.process.kill()
                node.process.wait(30)

    def __enter__(self) -> LocalCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {n.name} ---\n{n.log.read_text(errors='replace')[-3000:]}" for n in self.nodes)

    # --- internals -----------------------------------------------------------------------------

    def _start(self, name: str, ip: str, args: list[str]) -> Node:
        private = self.node_root
        ray_args = [RAY, "start", "--block", f"--node-ip-address={ip}", f"--temp-dir={private}/ray",
                    "--object-store-memory=150000000", "--disable-usage-stats",
                    f"--dashboard-agent-listen-port={free_port()}", *args]
        script = " && ".join([
            f"mount -t tmpfs -o size=6g tmpfs {private}",
            "mount -t tmpfs -o size=1g tmpfs /dev/shm",
            f"mkdir -p {private}/home {private}/tmp {private}/ray {private}/work",
            f"cd {private}/work",
            f"exec env HOME={private}/home TMPDIR={private}/tmp {shlex.join(ray_args)}",
        ])
        log = self.root / f"{name}.log"
        with open(log, "wb") as out:
            process = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "bash", "-c", script],
                                       stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
                                       start_new_session=True)
        node = Node(name, ip, process, log)
        self.nodes.append(node)
        deadline = time.monotonic() + 10
        while not node.namespace and time.monotonic() < deadline:
            try:
                found = os.readlink(f"/proc/{process.pid}/ns/mnt")
                if found != os.readlink("/proc/self/ns/mnt"):
                    node.namespace = found
            except OSError:
                pass
            time.sleep(0.05)
        return node

    def _wait_joined(self, node: Node, timeout: float = 120.0) -> None:
        from ray.util.state import list_nodes

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"node {node.name} exited ({node.process.returncode}):\n{node.log.read_text()[-3000:]}")
            try:
                for entry in list_nodes(address=self.dashboard_url, filters=[("state", "=", "ALIVE")], raise_on_missing_output=False):
                    if entry.node_ip == node.ip:
                        node.node_id = entry.node_id
                        return
            except Exception:  # noqa: BLE001 - the dashboard is still starting
                pass
            time.sleep(1)
        raise RuntimeError(f"node {node.name} ({node.ip}) did not join within {timeout:.0f} s:\n{self.logs()}")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str,
             on_timeout: Optional[Callable[[], str]] = None) -> None:
    """Poll `predicate` every second; on timeout fail naming `what`, with `on_timeout()` (e.g. logs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" +
                         (f"\n{on_timeout()}" if on_timeout else ""))
