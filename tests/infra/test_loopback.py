"""A local Ray cluster started by init_local_ray listens on loopback only, which plain ray.init does not."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import sys

import pytest

from infra.loopback import RAY_CLUSTERS_SWITCH, init_local_ray, is_loopback, loopback_interface
from tests.infra._listening import ListeningSockets, tree


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("127.255.255.254", True), ("::1", True),
    ("::ffff:127.0.0.1", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.2", False), ("10.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("localhost", False),  # a name is not an address: whatever it resolves to is not checked here
])
def test_is_loopback_accepts_127_slash_8_and_ipv6_loopback_only(host, expected):
    assert is_loopback(host) is expected


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIOCGIFADDR is Linux's")
def test_loopback_interface_is_the_one_the_kernel_gives_127_0_0_1():
    name = loopback_interface()
    assert name is not None
    # Ask the kernel for the interface's IPv4 address (SIOCGIFADDR), independently of psutil.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", name.encode()[:15])
        answer = fcntl.ioctl(sock.fileno(), 0x8915, request)
    assert socket.inet_ntoa(answer[20:24]) == "127.0.0.1"


@pytest.mark.slow
def test_local_ray_servers_and_workers_listen_on_loopback_only():
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    before = os.environ.get(RAY_CLUSTERS_SWITCH)
    info = init_local_ray(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote
        class Echo:
            def pid(self) -> int:
                return os.getpid()

        actor = Echo.remote()
        worker_pid = ray.get(actor.pid.remote())  # a core worker (gRPC server) is up
        sockets = ListeningSockets()
        sockets.sample(tree(os.getpid()))
    finally:
        ray.shutdown()
    assert info["node_ip_address"] == "127.0.0.1"
    assert {"gcs_server", "raylet"} <= sockets.processes(), sockets.report()
    assert worker_pid in {s.pid for s in sockets.seen}, sockets.report()  # the actor's own gRPC server
    assert not sockets.exposed(), f"listening beyond loopback:\n{sockets.report()}"
    assert os.environ.get(RAY_CLUSTERS_SWITCH) == before  # the switch is only on while Ray starts
