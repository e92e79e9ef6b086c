"""The learner ranks' rendezvous store (a torch TCPStore hosted by rank 0) listens on a loopback
MASTER_ADDR only; torch alone binds it to every interface."""

from __future__ import annotations

import importlib
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from tests.infra._listening import ListeningSockets, tree
from trainer.learner.rendezvous import _create_loopback_store, bind_store_to_loopback

TIMEOUT = timedelta(seconds=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listeners_on(port: int) -> set[str]:
    sockets = ListeningSockets()
    sockets.sample(tree(os.getpid())[:1])  # this process only: the store's server runs in a thread here
    return {s.ip for s in sockets.seen if s.port == port}


def test_torch_alone_binds_the_rank0_store_to_every_interface():
    # Why the wrapper exists: with host 127.0.0.1, torch's own server still listens on the wildcard.
    from torch.distributed import TCPStore

    port = _free_port()
    store = TCPStore("127.0.0.1", port, world_size=1, is_master=True, timeout=TIMEOUT)
    try:
        assert _listeners_on(port) & {"::", "0.0.0.0"}, _listeners_on(port)
    finally:
        del store


def test_rank0_store_listens_on_the_loopback_master_addr_only_and_serves_other_ranks():
    from torch.distributed import TCPStore

    assert bind_store_to_loopback()
    rendezvous = importlib.import_module("torch.distributed.rendezvous")
    port = _free_port()
    with ThreadPoolExecutor(1) as pool:  # rank 1 connects while rank 0's store waits for it
        joining = pool.submit(TCPStore, "127.0.0.1", port, world_size=2, is_master=False, timeout=TIMEOUT)
        server = rendezvous._create_c10d_store("127.0.0.1", port, 0, 2, TIMEOUT)
        client = joining.result()
    try:
        assert _listeners_on(port) == {"127.0.0.1"}
        client.set("from-rank-1", "hello")
        assert server.get("from-rank-1") == b"hello"
    finally:
        del client, server


def test_installing_twice_wraps_once():
    assert bind_store_to_loopback() and bind_store_to_loopback()
    rendezvous = importlib.import_module("torch.distributed.rendezvous")
    wrapped = rendezvous._create_c10d_store
    assert bind_store_to_loopback()
    assert rendezvous._create_c10d_store is wrapped


def test_other_ranks_and_non_loopback_addresses_are_left_to_torch():
    calls = []

    def torch_default(*args):  # stands in for torch's own _create_c10d_store
        calls.append(args)
        return "torch's store"

    assert _create_loopback_store(torch_default, "127.0.0.1", 29500, 1, 2, TIMEOUT) == "torch's store"
    assert _create_loopback_store(torch_default, "10.1.2.3", 29500, 0, 2, TIMEOUT) == "torch's store"
    assert [call[:3] for call in calls] == [("127.0.0.1", 29500, 1), ("10.1.2.3", 29500, 0)]
