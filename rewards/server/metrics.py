"""Prometheus metrics of the reward server, summed over all worker processes.

With several uvicorn workers, each process writes its samples to files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode; `stvg serve-rewards` sets it up
before any worker starts) and `/metrics`, whichever worker answers it, reads all of them. Without
that variable (an app built in-process), metrics live in a private registry of this app.
Only counters and histograms are used: they stay correct when a worker dies and is replaced.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# A path becomes one of these labels, so arbitrary URLs cannot blow up the label cardinality.
ENDPOINTS = ("/v1/score", "/openrlhf/{task}", "/healthz", "/readyz", "/metrics")


def endpoint_label(path: str) -> str:
    if path.startswith("/openrlhf/"):
        return "/openrlhf/{task}"
    return path if path in ENDPOINTS else "other"


class ServerMetrics:
    """The metric objects of one app; `render()` gives the text exposition of all workers."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # In multiprocess mode samples go to files, not to a registry; the collector reads the files.
        self._registry = None if self.multiprocess else CollectorRegistry()
        reg = self._registry
        self.requests = Counter("stvg_reward_requests", "HTTP requests by endpoint and status code.",
                                ("endpoint", "status"), registry=reg)
        self.latency = Histogram("stvg_reward_request_duration_seconds",
                                 "Time from request start to the last response byte, by endpoint.",
                                 ("endpoint",), buckets=LATENCY_BUCKETS, registry=reg)
        self.items = Counter("stvg_reward_items_scored", "Completions scored, by task.", ("task",), registry=reg)
        self.parse_failures = Counter("stvg_reward_parse_failures",
                                      "Completions whose output did not parse (scored 0 format), by task.",
                                      ("task",), registry=reg)
        self.runaway = Counter("stvg_reward_runaway_completions",
                               "Completions over the length limit, scored 0 without being parsed, by task.",
                               ("task",), registry=reg)
        self.prompt_mismatch = Counter("stvg_reward_openrlhf_prompt_mismatch",
                                       "OpenRLHF samples whose query did not start with their prompt.",
                                       ("task",), registry=reg)

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        endpoint = endpoint_label(path)
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_scored(self, task: str, count: int, parse_failures: int, runaway: int) -> None:
        self.items.labels(task).inc(count)
        if parse_failures:
            self.parse_failures.labels(task).inc(parse_failures)
        if runaway:
            self.runaway.labels(task).inc(runaway)

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self._registry), CONTENT_TYPE_LATEST
