"""Which addresses a process tree listens on: every TCP socket in LISTEN state and every bound UDP
socket without a peer, read per process from the kernel (psutil reads /proc/<pid>/net/* and the
process's own socket descriptors), so other users' servers on the same machine never count.

    sockets = ListeningSockets()
    sockets.sample(tree(os.getpid()))          # call repeatedly while a job runs
    assert not sockets.exposed(), sockets.report()
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

import psutil


def tree(root_pid: int) -> list[psutil.Process]:
    """`root_pid` and all its descendants that are still alive."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def on_loopback(ip: str) -> bool:
    """127.0.0.0/8, ::1, or an IPv4-mapped loopback address (::ffff:127.x.y.z), as the kernel prints them."""
    return ip.startswith("127.") or ip == "::1" or ip.lower().startswith("::ffff:127.")


@dataclass(frozen=True)
class Listener:
    ip: str
    port: int
    kind: str
    """tcp or udp."""
    process: str
    """The process name (Ray renames its workers, e.g. ray::RayTrainWorker)."""
    pid: int


@dataclass
class ListeningSockets:
    seen: set[Listener] = field(default_factory=set)

    def sample(self, processes: list[psutil.Process]) -> None:
        for process in processes:
            try:
                name = process.name()
                connections = process.net_connections(kind="inet")
            except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                continue
            for conn in connections:
                tcp_listener = conn.type == socket.SOCK_STREAM and conn.status == psutil.CONN_LISTEN
                udp_bound = conn.type == socket.SOCK_DGRAM and not conn.raddr and conn.laddr
                if tcp_listener or udp_bound:
                    kind = "tcp" if tcp_listener else "udp"
                    self.seen.add(Listener(conn.laddr.ip, conn.laddr.port, kind, name, process.pid))

    def exposed(self) -> list[Listener]:
        return sorted((s for s in self.seen if not on_loopback(s.ip)), key=lambda s: (s.process, s.port))

    def ports(self) -> set[int]:
        return {s.port for s in self.seen}

    def processes(self) -> set[str]:
        return {s.process for s in self.seen}

    def report(self) -> str:
        return "\n".join(f"{s.kind} {s.ip}:{s.port}  {s.process}"
                         for s in sorted(self.seen, key=lambda s: (s.process, s.port)))
