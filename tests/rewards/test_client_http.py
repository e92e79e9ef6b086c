"""The HTTP reward client against real servers: order, weights, refusals, failover, breakers, deadlines."""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reward_items import items  # noqa: E402
from _reward_servers import HOST, free_port, metric_value, reward_server, start_reward_server  # noqa: E402

import httpx  # noqa: E402

from rewards import score_batch  # noqa: E402
from rewards.client import (RewardClientConfig, RewardRequestError, RewardServiceError,  # noqa: E402
                            build_reward_client)

TOKEN_ENV = "STVG_TEST_REWARD_TOKEN"
TOKEN = "client-test-token"


@pytest.fixture(scope="module")
def server():
    with reward_server("--token-env", TOKEN_ENV, env={TOKEN_ENV: TOKEN}) as running:
        yield running


@pytest.fixture(autouse=True)
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


@contextlib.contextmanager
def client(urls, **kwargs):
    kwargs.setdefault("token_env", TOKEN_ENV)
    scorer = build_reward_client(RewardClientConfig(mode="http", urls=list(urls), **kwargs))
    try:
        yield scorer
    finally:
        scorer.close()


def triples(results):
    return [(r.total, r.terms, r.parsed) for r in results]


@contextlib.contextmanager
def listener(accept_and_close: bool):
    """A TCP port that either never answers (accept_and_close=False: connections sit in the backlog)
    or accepts and hangs up at once; yields (url, connection counter)."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    sock.listen(64)
    accepted = [0]
    stop = threading.Event()

    def serve():
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted[0] += 1
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    if accept_and_close:
        thread.start()
    try:
        yield f"http://{HOST}:{sock.getsockname()[1]}", accepted
    finally:
        stop.set()
        if accept_and_close:
            thread.join(2)
        sock.close()


@pytest.mark.parametrize("task", ["stvg-o1", "stvg-r1", "vtg"])
def test_http_scores_equal_local_scores_in_input_order(server, task):
    completions, targets = items(task, 150, malformed_every=6)
    with client([server.url], batch_size=16) as scorer:
        assert triples(scorer.score(task, completions, targets)) == \
            triples(score_batch(task, completions, targets))


def test_configured_weights_travel_with_the_request(server):
    completions, targets = items("stvg-o1", 20)
    weights = {"think": 2.0, "format": 0.0}
    with client([server.url], weights=weights) as scorer:
        remote = scorer.score("stvg-o1", completions, targets)
    local = score_batch("stvg-o1", completions, targets, weights=weights)
    assert triples(remote) == triples(local)
    # and differ from the defaults for some item: the weights were not dropped on the way
    assert [r.total for r in remote] != [r.total for r in score_batch("stvg-o1", completions, targets)]


def test_the_configured_spatial_span_travels_with_stvg_o1_requests(server):
    completions, targets = items("stvg-o1", 60)
    with client([server.url], spatial_span="ground_truth") as scorer:
        remote = scorer.score("stvg-o1", completions, targets)
        other_task = scorer.score("vtg", *items("vtg", 5))  # no such field for the other tasks' servers
    local = score_batch("stvg-o1", completions, targets, spatial_span="ground_truth")
    assert triples(remote) == triples(local)
    assert [r.terms["spatial"] for r in remote] != [r.terms["spatial"] for r in score_batch("stvg-o1", completions, targets)]
    assert len(other_task) == 5


def test_a_refused_request_raises_at_once_with_the_server_message(server):
    completions, targets = items("vtg", 40)
    targets[33] = {"t_start": 5.0, "t_end": 1.0}
    with client([server.url], batch_size=10, max_retries=4, backoff_s=1.0) as scorer:
        start = time.monotonic()
        with pytest.raises(RewardRequestError) as raised:
            scorer.score("vtg", completions, targets)
    assert time.monotonic() - start < 1.0  # no retries, no backoff
    message = str(raised.value)
    assert f"reward server {server.url} refused the request (HTTP 422): items[3].target:" in message
    assert "t_start" in message


def test_a_wrong_token_names_the_env_var_it_came_from(server, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV)
    with client([server.url]) as scorer:
        with pytest.raises(RewardRequestError, match=rf"HTTP 401.*comes from \${TOKEN_ENV}, which is unset"):
            scorer.score("vtg", ["x"], [{"t_start": 1.0, "t_end": 2.0}])


def test_all_servers_down_raises_one_error_naming_them_by_the_deadline():
    dead = [f"http://{HOST}:{free_port()}", f"http://{HOST}:{free_port()}"]
    completions, targets = items("vtg", 100)
    with client(dead, batch_size=10, max_retries=1000, backoff_s=0.05, deadline_s=2.0,
                circuit_reset_s=0.2) as scorer:
        start = time.monotonic()
        with pytest.raises(RewardServiceError) as raised:
            scorer.score("vtg", completions, targets)
        elapsed = time.monotonic() - start
    assert 1.9 <= elapsed <= 2.0 + 1.5
    message = str(raised.value)
    assert message.startswith("reward service unavailable")
    for url in dead:
        assert f"{url}: ConnectError" in message


def test_retries_run_out_before_the_deadline_when_fewer_are_allowed():
    dead = f"http://{HOST}:{free_port()}"
    with client([dead], max_retries=2, backoff_s=0.05, deadline_s=60.0) as scorer:
        start = time.monotonic()
        with pytest.raises(RewardServiceError, match="after 3 attempts.*max_retries=2 was used up"):
            scorer.score("vtg", ["x"], [{"t_start": 1.0, "t_end": 2.0}])
    assert time.monotonic() - start < 5


def test_a_server_that_never_answers_cannot_hang_the_client():
    with listener(accept_and_close=False) as (url, _):
        with client([url], timeout_s=0.5, deadline_s=2.0, backoff_s=0.05) as scorer:
            start = time.monotonic()
            with pytest.raises(RewardServiceError, match=rf"{url}: ReadTimeout"):
                scorer.score("vtg", ["x"] * 5, [{"t_start": 1.0, "t_end": 2.0}] * 5)
            assert time.monotonic() - start <= 2.0 + 1.5


def test_an_open_breaker_keeps_traffic_off_a_failing_url_until_its_probe(server):
    completions, targets = items("vtg", 30)
    expected = triples(score_batch("vtg", completions, targets))
    with listener(accept_and_close=True) as (bad_url, accepted):
        with client([bad_url, server.url], batch_size=30, circuit_failures=2, circuit_reset_s=1.5,
                    backoff_s=0.01) as scorer:
            for _ in range(8):  # one batch per call; round robin would send half of them to bad_url
                assert triples(scorer.score("vtg", completions, targets)) == expected
            assert accepted[0] == 2  # two failures opened the breaker; nothing more went there
            time.sleep(1.6)  # past circuit_reset_s: the next batch probes bad_url once, fails over
            for _ in range(4):
                assert triples(scorer.score("vtg", completions, targets)) == expected
            assert accepted[0] == 3


@pytest.mark.slow
def test_killing_one_of_two_servers_mid_run_moves_traffic_to_the_other(server, caplog):
    completions, targets = items("stvg-o1", 64, malformed_every=9)
    expected = triples(score_batch("stvg-o1", completions, targets))
    victim = start_reward_server("--token-env", TOKEN_ENV, env={TOKEN_ENV: TOKEN})
    try:
        with httpx.Client() as http:
            served_before = metric_value(http.get(f"{server.url}/metrics").text,
                                         "stvg_reward_items_scored_total", task="stvg-o1")
        with client([victim.url, server.url], batch_size=8, backoff_s=0.05, circuit_reset_s=30) as scorer:
            assert triples(scorer.score("stvg-o1", completions, targets)) == expected
            killer = threading.Timer(0.3, victim.kill)
            killer.start()
            calls = 0
            with caplog.at_level(logging.WARNING, logger="rewards.client"):
                end = time.monotonic() + 2.0
                while time.monotonic() < end or calls < 5:
                    assert triples(scorer.score("stvg-o1", completions, targets)) == expected
                    calls += 1
            killer.join()
        assert victim.process.poll() is not None
        retried = [r.getMessage() for r in caplog.records if victim.url in r.getMessage()]
        assert retried, "the kill cost no retry: it did not happen mid-run"
        with httpx.Client() as http:
            served_after = metric_value(http.get(f"{server.url}/metrics").text,
                                        "stvg_reward_items_scored_total", task="stvg-o1")
        # after the kill every item went to the survivor: at least the calls made once the breaker opened
        assert served_after - served_before >= 64 * (calls // 2)
    finally:
        victim.stop()
