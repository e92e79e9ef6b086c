"""A single-machine run listens on the loopback interface only (127.0.0.0/8), never on the
machine's network addresses: a Ray cluster runs whatever job reaches its GCS or dashboard.

Ray 2.60 has no bind-address option. Its gRPC servers (GCS, raylet, every core worker), the
dashboard agent and the metrics servers listen on 127.0.0.1 when, and only when, the node's IP is
exactly 127.0.0.1; for any other node IP (127.0.0.2 included) they listen on all interfaces. And
`ray.init(_node_ip_address="127.0.0.1")` does not help: Ray replaces a loopback node IP by the
machine's outward address, unless clusters are switched off with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
(the switch Ray uses on macOS and Windows, where it defaults off). Ray reads that variable once, at
import, so `init_local_ray` sets it and, if Ray is already imported, the module constant it became,
for the duration of `ray.init` (the processes Ray starts inherit the variable), then checks that
Ray really came up on loopback.

    info = init_local_ray(num_cpus=2, include_dashboard=False)   # instead of ray.init(...)

Token authentication is Ray's own: since 2.59 a new local cluster turns it on when RAY_AUTH_MODE
is unset (it says so in one warning line) and keeps the token in ~/.ray/auth_token. It is not set
here: Ray reads RAY_AUTH_MODE into its native config when first imported, and only its own default
path refreshes that config.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from typing import Any, Iterator, Optional

LOOPBACK_HOST = "127.0.0.1"
RAY_CLUSTERS_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch between a local-only instance (node IP 127.0.0.1) and a cluster node."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z); False for names."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def loopback_interface() -> Optional[str]:
    """Name of the interface that holds 127.0.0.1 ('lo' on Linux, 'lo0' on macOS), or None.

    Gloo (the CPU process group of the learner ranks) listens on the address the machine's
    hostname resolves to unless GLOO_SOCKET_IFNAME names an interface."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(entry.address == LOOPBACK_HOST for entry in addresses):
            return name
    return None


def loopback_worker_env() -> dict[str, str]:
    """Environment for the worker processes of a local run, so their own sockets stay on loopback."""
    interface = loopback_interface()
    return {"GLOO_SOCKET_IFNAME": interface} if interface else {}


@contextlib.contextmanager
def _ray_clusters_off() -> Iterator[None]:
    saved = os.environ.get(RAY_CLUSTERS_SWITCH)
    os.environ[RAY_CLUSTERS_SWITCH] = "0"
    constants = sys.modules.get("ray._private.ray_constants")  # evaluated the switch at import
    saved_constant = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(RAY_CLUSTERS_SWITCH, None)
        else:
            os.environ[RAY_CLUSTERS_SWITCH] = saved
        if constants is not None:
            constants.ENABLE_RAY_CLUSTER = saved_constant


def init_local_ray(**kwargs: Any) -> dict[str, Any]:
    """`ray.init(**kwargs)` for a new single-machine cluster whose every server listens on loopback.

    The workers' environment (`runtime_env.env_vars`) gets GLOO_SOCKET_IFNAME for the loopback
    interface unless the caller sets it. Returns Ray's address info. Raises RuntimeError if Ray
    started on another address (a Ray upgrade that changed how the node IP is chosen)."""
    import ray

    if kwargs.get("address"):
        raise ValueError("init_local_ray starts a new local cluster; join an existing one with ray.init(address=...)")
    runtime_env = dict(kwargs.pop("runtime_env", None) or {})
    runtime_env["env_vars"] = {**loopback_worker_env(), **(runtime_env.get("env_vars") or {})}
    with _ray_clusters_off():
        context = ray.init(runtime_env=runtime_env, **kwargs)
    info = dict(context.address_info)
    node_ip = info.get("node_ip_address", "")
    if not is_loopback(node_ip):
        ray.shutdown()
        raise RuntimeError(f"Ray started its local cluster on {node_ip}, not on loopback; its servers would be "
                           f"reachable from the network (see infra/loopback.py)")
    return info
