"""The reward server with several worker processes, a worker dying, and draining on SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _reward_items import items  # noqa: E402
from _reward_servers import metric_value, reward_server  # noqa: E402

from rewards import score_batch  # noqa: E402

pytestmark = pytest.mark.slow


def scored_requests(text: str) -> float:
    return metric_value(text, "stvg_reward_requests_total", endpoint="/v1/score", status="200")


def test_two_workers_share_the_load_and_metrics_sum_over_both():
    completions, targets = items("stvg-o1", 16)
    expected = [r.total for r in score_batch("stvg-o1", completions, targets)]
    body = {"task": "stvg-o1", "items": [{"completion": c, "target": t} for c, t in zip(completions, targets)]}
    with reward_server("--workers", "2") as server:
        def send(_):
            with httpx.Client(base_url=server.url, timeout=10) as http:  # a new connection each time
                response = http.post("/v1/score", json=body)
                assert response.json()["rewards"] == expected
                return response.headers["x-reward-worker"]

        workers: set[str] = set()
        sent = 0
        deadline = time.monotonic() + 30
        with ThreadPoolExecutor(8) as pool:
            while len(workers) < 2 and time.monotonic() < deadline:
                workers |= set(pool.map(send, range(24)))
                sent += 24
        assert len(workers) == 2, "the kernel never handed a connection to the second worker"
        # whichever worker answers /metrics, it reports the requests of both
        for _ in range(6):
            with httpx.Client(base_url=server.url) as http:
                text = http.get("/metrics").text
            assert scored_requests(text) == sent
            assert metric_value(text, "stvg_reward_items_scored_total", task="stvg-o1") == 16 * sent

        # a worker that dies is replaced by uvicorn; what it counted stays counted
        victim = int(next(iter(workers)))
        os.kill(victim, signal.SIGKILL)
        served_after = 0
        deadline = time.monotonic() + 30
        while served_after < 10 and time.monotonic() < deadline:
            try:
                send(None)
                served_after += 1
            except httpx.HTTPError:
                time.sleep(0.2)  # a connection the dead worker had accepted
        assert served_after == 10
        with httpx.Client(base_url=server.url) as http:
            assert scored_requests(http.get("/metrics").text) == sent + 10


def test_sigterm_drains_with_readyz_503_while_still_scoring():
    with reward_server("--drain-s", "3") as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/readyz").status_code == 200
            start = time.monotonic()
            os.kill(server.process.pid, signal.SIGTERM)
            os.kill(server.process.pid, signal.SIGTERM)  # repeated TERMs do not cut the drain short
            time.sleep(0.5)
            ready = http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "draining"
            response = http.post("/v1/score", json={"task": "vtg", "items": [
                {"completion": "<think>a</think><answer>2 to 4</answer>", "target": {"t_start": 2.0, "t_end": 4.0}}]})
            assert response.json()["rewards"] == [2.0]
            assert http.get("/healthz").status_code == 200
        server.process.wait(20)
        elapsed = time.monotonic() - start
    assert 3 <= elapsed < 15
    assert server.process.returncode is not None


def test_process_pool_scores_the_same_as_score_batch():
    completions, targets = items("stvg-r1", 12)
    expected = score_batch("stvg-r1", completions, targets)
    with reward_server("--pool", "process", "--pool-size", "1") as server:
        response = httpx.post(f"{server.url}/v1/score", timeout=30, json={
            "task": "stvg-r1", "items": [{"completion": c, "target": t} for c, t in zip(completions, targets)]})
    assert response.status_code == 200
    assert response.json()["rewards"] == [r.total for r in expected]
    assert response.json()["terms"] == [r.terms for r in expected]
