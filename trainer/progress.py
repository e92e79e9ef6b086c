"""What learner rank 0 reports to the driver: console lines, MLflow metrics, pictures, tags.

Rank 0 runs inside a Ray Train worker, possibly on another node, whose stdout Ray interleaves and
prefixes; and on a multi-node run it may not reach the driver's MLflow store at all (a local sqlite
file, or a server only the head pod may talk to). So rank 0 never talks to MLflow: it posts small
events to the ProgressBoard, a Ray actor pinned to the driver's node, and the driver, which owns the
run's Tracker, logs them and draws the progress bar and per-step lines (`follow`). Only the driver
needs the tracking URI and its credentials.
"""

from __future__ import annotations

import io
import logging
import sys
import time
from typing import Any, Callable, Mapping, Optional

import ray

log = logging.getLogger("stvg.progress")


@ray.remote(num_cpus=0)
class ProgressBoard:
    def __init__(self):
        self._events: list[dict[str, Any]] = []
        self._posted = 0
        """Events posted so far."""
        self._logged = 0
        """Events the driver has logged (it acknowledges each drained batch after applying it)."""

    def post(self, event: dict[str, Any]) -> None:
        self._events.append(event)
        self._posted += 1

    def drain(self) -> tuple[list[dict[str, Any]], int]:
        """The events posted since the last drain, and how many were posted in all up to the last one."""
        events, self._events = self._events, []
        return events, self._posted

    def logged(self, through: int) -> None:
        self._logged = max(self._logged, through)

    def counts(self) -> tuple[int, int]:
        """(posted, logged)."""
        return self._posted, self._logged


def start_board():
    """A ProgressBoard on this (the driver's) node: left free, Ray may place it on a worker node,
    and losing that node would then end the run."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    return ProgressBoard.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()


FLUSH_TIMEOUT_S = 30.0
"""How long a checkpoint waits for the driver to log what rank 0 posted (it drains every 0.5 s)."""


class RunLog:
    """Rank 0's side: the Tracker calls a loop makes (log_metrics, log_image, set_tags), posted to
    the board for the driver to log, plus console lines. Picklable; cheap to call every step."""

    def __init__(self, board, tracking):
        self.board = board
        self.tracking = tracking
        """The run's TrackingConfig (picture cadence)."""

    def log_metrics(self, metrics: Mapping[str, Any], step: int, console: bool = False) -> None:
        """Numbers at `step` for MLflow; `console` also prints the step's summary line."""
        self.board.post.remote({"kind": "metrics", "step": int(step), "metrics": dict(metrics), "console": console})

    def wants_images(self, step: int, total_steps: int | None = None) -> bool:
        return self.tracking.images_due(step, total_steps)

    def log_image(self, image: Any, step: int, key: str = "rollouts", suffix: str = "") -> None:
        """A PIL image, as PNG bytes (a few kB for a rollout strip)."""
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        self.board.post.remote({"kind": "image", "step": int(step), "png": buffer.getvalue(), "key": key,
                                "suffix": suffix})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.board.post.remote({"kind": "tags", "tags": dict(tags)})

    def message(self, text: str) -> None:
        self.board.post.remote({"kind": "message", "text": text})

    def flush(self, timeout: float = FLUSH_TIMEOUT_S) -> bool:
        """Wait until the driver has logged everything posted so far; False if it has not within
        `timeout`. Called before a checkpoint commits: a run killed right after the commit resumes
        after that step, so the metrics of the steps the checkpoint holds must already be in MLflow.
        (Ray runs one caller's calls to an actor in order, so `counts` sees every post before it.)"""
        posted, logged = ray.get(self.board.counts.remote())
        deadline = time.monotonic() + timeout
        while logged < posted:
            if time.monotonic() > deadline:
                log.warning("the driver has not logged rank 0's last metrics after %.0f s; going on", timeout)
                return False
            time.sleep(0.05)
            logged = ray.get(self.board.counts.remote())[1]
        return True


def apply(event: dict[str, Any], tracker) -> None:
    """Log one event of a RunLog into the driver's Tracker."""
    kind = event.get("kind")
    if kind == "metrics":
        tracker.log_metrics(event["metrics"], event["step"])
    elif kind == "image":
        from PIL import Image

        tracker.log_image(Image.open(io.BytesIO(event["png"])), event["step"], key=event["key"], suffix=event["suffix"])
    elif kind == "tags":
        tracker.set_tags(event["tags"])


def summary_line(event: dict[str, Any], total_steps: int) -> str:
    """One console line per GRPO step: the numbers a person watches."""
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


def follow(board, is_done: Callable[[], bool], total_steps: int, start_step: int, quiet: bool, tracker,
           on_event: Callable[[dict], None] = lambda event: None,
           line: Optional[Callable[[dict, int], str]] = None) -> None:
    """Log what rank 0 posts into `tracker` and print step lines (and a progress bar on a terminal)
    until `is_done()`, then drain once more so nothing posted before the end is lost. A user error
    posted by a learner rank is raised here, ending the run without waiting for Ray Train's retries."""
    from tqdm import tqdm

    line = line or summary_line
    bar = None if quiet or not sys.stderr.isatty() else tqdm(total=total_steps, initial=start_step,
                                                              unit="step", dynamic_ncols=True)
    try:
        while True:
            done = is_done()
            events, through = ray.get(board.drain.remote())
            for event in events:
                kind = event.get("kind")
                if kind == "user_error":
                    raise event["error"]
                apply(event, tracker)
                text = None
                if kind == "message":
                    text = event["text"]
                elif kind == "metrics":
                    on_event(event)
                    if bar is not None:
                        bar.update(max(event["step"] - bar.n, 0))
                    if event.get("console"):
                        text = line(event, total_steps)
                if text is not None:
                    (bar.write if bar is not None else print)(text)
                    sys.stdout.flush()
            board.logged.remote(through)  # after every event of the batch went to the tracker
            if done:
                return
            time.sleep(0.5)
    finally:
        if bar is not None:
            bar.close()
