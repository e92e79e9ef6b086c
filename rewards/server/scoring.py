"""Runs `rewards.score_batch` off the event loop, in a thread or a process pool.

Scoring is pure-Python CPU work that holds the GIL most of the time, so a thread does not add
throughput; it keeps the event loop answering (health probes, new connections, reading bodies)
while a batch is scored. A process pool isolates scoring completely but pays pickling and IPC on
every batch: `bench/reward_server.py --pool process` measures the difference (thread is the default).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Mapping, Optional, Sequence

log = logging.getLogger(__name__)

Scored = tuple[float, dict[str, float], bool, bool]
"""(total, terms, parsed, runaway) of one completion: a RewardResult as plain values."""

# One valid item per task: the readiness self-test scores these through the pool.
WARMUP_ITEMS: dict[str, Mapping[str, Any]] = {
    "stvg-o1": {"t_start": 0.0, "t_end": 1.0, "boxes": [[0, 0, 0, 10, 10], [1, 0, 0, 10, 10]],
                "width": 100.0, "height": 100.0},
    "stvg-r1": {"t_start": 0.0, "t_end": 1.0, "instance_id": 1},
    "vtg": {"t_start": 0.0, "t_end": 1.0},
}


def score_chunk(task: str, completions: Sequence[str], targets: Sequence[Mapping[str, Any]],
                weights: Optional[Mapping[str, float]], spatial_span: str = "intersection") -> list[Scored]:
    """score_batch flattened to plain tuples (cheap to pickle back from a pool process)."""
    from rewards import score_batch

    results = score_batch(task, completions, targets, weights=dict(weights) if weights else None,
                          spatial_span=spatial_span)
    return [(float(r.total), {k: float(v) for k, v in r.terms.items()}, bool(r.parsed), bool(r.runaway))
            for r in results]


class ScoringPool:
    """An executor for score_chunk; a process pool that broke (a child died) is rebuilt."""

    def __init__(self, kind: str, size: int):
        self.kind = kind
        self.size = size
        self._executor = self._make()

    def _make(self) -> Executor:
        if self.kind == "process":
            # spawn, not fork: the worker already runs threads (event loop helpers, uvicorn's pinger)
            return ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context("spawn"))
        return ThreadPoolExecutor(self.size, thread_name_prefix="score")

    async def score(self, task: str, completions: Sequence[str], targets: Sequence[Mapping[str, Any]],
                    weights: Optional[Mapping[str, float]] = None,
                    spatial_span: str = "intersection") -> list[Scored]:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, score_chunk, task, list(completions),
                                              list(targets), dict(weights) if weights else None, spatial_span)
        except BrokenExecutor:
            log.error("scoring pool broke (a pool process died); rebuilding it")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._make()
            raise

    async def self_test(self) -> None:
        """Scores one item per task; raises if scoring does not work."""
        for task, target in WARMUP_ITEMS.items():
            scored = await self.score(task, ["warm-up"], [target])
            if len(scored) != 1:
                raise RuntimeError(f"score_batch returned {len(scored)} results for 1 {task} item")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
