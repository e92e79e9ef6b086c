"""The learner ranks' rendezvous store listens on loopback when the ranks meet on loopback.

Before the process group exists, rank 0 hosts a torch.distributed TCPStore at MASTER_ADDR:MASTER_PORT
(Ray Train picks both on rank 0's node) and the other ranks connect to it. torch binds that server
to all interfaces whatever MASTER_ADDR says; the only way to choose its address is to hand it a
socket already listening (`master_listen_fd`). On a local run MASTER_ADDR is 127.0.0.1, so the
store would be the one server of the run reachable from the network (infra/loopback.py keeps Ray's
own servers on loopback). `LoopbackTorchConfig` makes rank 0 bind the store to MASTER_ADDR itself
when that is a loopback address, and changes nothing otherwise (a cluster's ranks meet on pod IPs).

torch exposes no hook for this: `bind_store_to_loopback` wraps torch.distributed.rendezvous's
`_create_c10d_store`, which both of its env:// and tcp:// rendezvous call (torch 2.14). If a torch
upgrade renames it, the wrapper is not installed, the store binds as before, and the listening-
socket test (tests/e2e/test_loopback_sockets.py) fails.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from ray.train.torch import TorchConfig

from infra.loopback import is_loopback

log = logging.getLogger("stvg.learner")
_WRAPPED = "_stvg_loopback_store"


def _create_loopback_store(original, hostname, port, rank, world_size, timeout, use_libuv=True):
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == str(True)  # torchrun hosts it
    if rank != 0 or agent_store or not is_loopback(hostname):
        return original(hostname, port, rank, world_size, timeout, use_libuv)
    from torch.distributed import TCPStore

    family = socket.AF_INET6 if ":" in hostname else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((hostname, port))
        listener.listen(socket.SOMAXCONN)
    except OSError:
        listener.close()
        raise
    # The store owns the socket from here on (it closes it when it stops).
    return TCPStore(host_name=hostname, port=port, world_size=world_size, is_master=True, timeout=timeout,
                    multi_tenant=True, master_listen_fd=listener.detach(), use_libuv=use_libuv)


def bind_store_to_loopback() -> bool:
    """Install the wrapper in this process (idempotent); False if torch has no such function."""
    import importlib

    # torch.distributed re-exports a function named `rendezvous` over the module of that name.
    rendezvous = importlib.import_module("torch.distributed.rendezvous")
    original = getattr(rendezvous, "_create_c10d_store", None)
    if original is None:
        log.warning("torch.distributed.rendezvous has no _create_c10d_store: the learner ranks' rendezvous "
                    "store listens on all interfaces")
        return False
    if getattr(original, _WRAPPED, False):
        return True

    def create(hostname, port, rank, world_size, timeout, use_libuv=True):
        return _create_loopback_store(original, hostname, port, rank, world_size, timeout, use_libuv)

    setattr(create, _WRAPPED, True)
    rendezvous._create_c10d_store = create
    return True


class LoopbackTorchBackend(TorchConfig().backend_cls):  # Ray Train's torch backend, named by its config
    def on_start(self, worker_group, backend_config):
        worker_group.execute(bind_store_to_loopback)  # before Ray Train creates the process group
        super().on_start(worker_group, backend_config)


@dataclass
class LoopbackTorchConfig(TorchConfig):
    """Ray Train's TorchConfig whose rank 0 binds the rendezvous store to a loopback MASTER_ADDR."""

    @property
    def backend_cls(self):
        return LoopbackTorchBackend
