"""rollout.weight_sync: bucketing by bytes, and the collective group over real gloo (ranks in threads)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from rollout.weight_sync import (GroupSpec, TransferAborted, WeightGroup, bucket_metadata, buckets, receive_bucket,
                                 send_bucket, tensor_bytes)


def test_buckets_hold_consecutive_tensors_up_to_the_byte_limit_and_a_big_one_alone():
    sizes = {"a": 10, "b": 6, "c": 2, "d": 25, "e": 1}  # float32 elements: 40, 24, 8, 100, 4 bytes
    named = [(name, torch.zeros(n)) for name, n in sizes.items()]
    grouped = [[name for name, _ in bucket] for bucket in buckets(named, 64)]
    # a+b = 64 fits; c would make 72; d (100) exceeds the limit on its own; e would make 104
    assert grouped == [["a", "b"], ["c"], ["d"], ["e"]]
    assert [[n for n, _ in b] for b in buckets(named, 0)] == [["a"], ["b"], ["c"], ["d"], ["e"]]
    assert [[n for n, _ in b] for b in buckets(named, 10**6)] == [["a", "b", "c", "d", "e"]]


def test_a_zero3_parameter_counts_its_full_size_not_its_empty_local_data():
    partitioned = torch.empty(0, dtype=torch.bfloat16)
    partitioned.ds_numel = 1000  # what DeepSpeed sets on a parameter whose data lives in shards
    assert tensor_bytes(partitioned) == 2000 and tensor_bytes(torch.zeros(3, dtype=torch.float64)) == 24


def _run_workers(sender: WeightGroup, work, n: int) -> tuple[list, dict]:
    """n worker ranks in threads, each joining `sender`'s group and running work(group, rank)."""
    results: dict = {}

    def run(rank: int) -> None:
        try:
            results[rank] = work(WeightGroup.join(sender.spec_for(rank)), rank)
        except Exception as err:  # noqa: BLE001 - recorded for the test to check
            results[rank] = err

    threads = [threading.Thread(target=run, args=(rank,), daemon=True) for rank in range(1, n + 1)]
    for thread in threads:
        thread.start()
    return threads, results


def test_buckets_reach_every_worker_bit_exactly_over_one_reused_group():
    generator = torch.Generator().manual_seed(0)
    first = [("w", torch.randn(3, 4, generator=generator)), ("b", torch.randn(5, generator=generator).bfloat16()),
             ("i", torch.arange(6, dtype=torch.int64).reshape(2, 3))]
    second = [("w", torch.randn(3, 4, generator=generator))]
    sender = WeightGroup.host(2, "gloo", timeout_s=60, address="127.0.0.1")
    metas = [bucket_metadata(first), bucket_metadata(second)]
    threads, results = _run_workers(sender, lambda group, rank: [receive_bucket(group, m, "cpu") for m in metas], 2)
    sender.connect()
    for bucket in (first, second):
        sender.wait(send_bucket(sender, bucket), time.monotonic() + 60, lambda: None)
    for thread in threads:
        thread.join(60)
    for rank in (1, 2):
        got = results[rank]
        assert not isinstance(got, Exception), got
        for received, sent in zip(got, (first, second)):
            assert [name for name, _ in received] == [name for name, _ in sent]
            for (_, r), (_, s) in zip(received, sent):
                assert r.dtype == s.dtype and torch.equal(r, s)
    sender.close()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_closing_a_group_shuts_its_communicator_and_store_down():
    sender = WeightGroup.host(2, "gloo", timeout_s=60, address="127.0.0.1")
    bucket = [("w", torch.ones(4))]
    joined = {}

    def receive(group, rank):
        joined[rank] = group
        return receive_bucket(group, bucket_metadata(bucket), "cpu")

    threads, results = _run_workers(sender, receive, 2)
    sender.connect()
    sender.wait(send_bucket(sender, bucket), time.monotonic() + 60, lambda: None)
    for thread in threads:
        thread.join(60)
    assert all(torch.equal(results[rank][0][1], bucket[0][1]) for rank in (1, 2))
    assert _listening(sender.spec.port)
    for group in (*joined.values(), sender):
        group.close()
    assert not sender.connected and not any(group.connected for group in joined.values())
    assert not _listening(sender.spec.port)  # the store's socket is gone with it: nothing leaks per rebuild


def test_a_waiting_worker_gives_up_as_soon_as_the_sender_aborts():
    sender = WeightGroup.host(1, "gloo", timeout_s=120, address="127.0.0.1")
    meta = bucket_metadata([("w", torch.zeros(4))])
    started = {}

    def wait_for_data(group, rank):
        started["at"] = time.monotonic()
        return receive_bucket(group, meta, "cpu")

    threads, results = _run_workers(sender, wait_for_data, 1)
    sender.connect()
    time.sleep(0.5)
    sender.abort("rollout worker 3 died")
    threads[0].join(30)
    assert isinstance(results[1], TransferAborted) and "rollout worker 3 died" in str(results[1])
    assert time.monotonic() - started["at"] < 30  # far below the group's 120 s timeout
    sender.close()


def test_a_worker_gives_up_after_the_group_timeout_when_no_data_comes():
    sender = WeightGroup.host(1, "gloo", timeout_s=2, address="127.0.0.1")
    meta = bucket_metadata([("w", torch.zeros(4))])
    threads, results = _run_workers(sender, lambda group, rank: receive_bucket(group, meta, "cpu"), 1)
    sender.connect()
    started = time.monotonic()
    threads[0].join(60)
    # our deadline or gloo's own op timeout (the same 2 s) ends the wait, whichever comes first
    assert isinstance(results[1], TransferAborted), results[1]
    assert time.monotonic() - started < 30
    sender.close()


def test_joining_a_group_whose_sender_is_gone_fails_within_the_timeout():
    import socket

    with socket.socket() as sock:  # a port nobody listens on any more
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(TransferAborted, match="could not reach weight group"):
        WeightGroup.join(GroupSpec("gone", "127.0.0.1", port, 2, 1, "gloo", timeout_s=2))
    assert time.monotonic() - started < 30
