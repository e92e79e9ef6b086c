"""Step reports from learner rank 0 to the driver's console.

Rank 0 runs inside a Ray Train worker, whose stdout is interleaved and prefixed by Ray; so it
posts small dicts to a Ray actor instead, and the driver draws the progress bar and the per-step
summary line from them.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import ray


@ray.remote(num_cpus=0)
class ProgressBoard:
    def __init__(self):
        self._events: list[dict[str, Any]] = []

    def post(self, event: dict[str, Any]) -> None:
        self._events.append(event)

    def drain(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events


def summary_line(event: dict[str, Any], total_steps: int) -> str:
    """One console line per step: the numbers a person watches."""
    m = event["metrics"]
    parts = [f"step {event['step']}/{total_steps}",
             f"reward {m.get('reward/mean', float('nan')):.3f}",
             f"parsed {100 * m.get('reward/parsed_frac', 0):.0f}%",
             f"len {m.get('response_len/mean', 0):.0f}",
             f"kl {m.get('kl', 0):.4f}",
             f"{m.get('time/step_s', 0):.1f}s (rollout {m.get('time/rollout_s', 0):.1f}"
             f" reward {m.get('time/reward_s', 0):.1f} learn {m.get('time/learn_s', 0):.1f}"
             f" sync {m.get('time/sync_s', 0):.1f})"]
    if "eval/m_tIoU" in m:
        parts.append(f"eval m_tIoU {m['eval/m_tIoU']:.1f} m_vIoU {m.get('eval/m_vIoU', 0):.1f}")
    return " | ".join(parts)


def follow(board, is_done: Callable[[], bool], total_steps: int, start_step: int, quiet: bool,
           on_event: Callable[[dict], None] = lambda event: None) -> None:
    """Print step lines (and a progress bar on a terminal) until `is_done()`; a user error posted
    by a learner rank is raised here, ending the run without waiting for Ray Train's retries."""
    from tqdm import tqdm

    bar = None if quiet or not sys.stderr.isatty() else tqdm(total=total_steps, initial=start_step,
                                                              unit="step", dynamic_ncols=True)
    try:
        while True:
            done = is_done()
            for event in ray.get(board.drain.remote()):
                if event.get("kind") == "user_error":
                    raise event["error"]
                if event.get("kind") == "message":
                    line = event["text"]
                else:
                    on_event(event)
                    line = summary_line(event, total_steps)
                    if bar is not None:
                        bar.update(event["step"] - bar.n)
                (bar.write if bar is not None else print)(line)
                sys.stdout.flush()
            if done:
                return
            time.sleep(0.5)
    finally:
        if bar is not None:
            bar.close()
