"""Ending a job started with start_new_session=True, all of it.

`os.killpg(job.pid, ...)` is not enough for a Ray job: Ray starts every worker process (the learner
ranks, the rollout actors) in a process group of its own, inside the job's session. Killed with the
group only, those workers live on for a moment and can still write (a learner rank finishing a
checkpoint upload or commit after the test has looked at S3). Everything in the session goes.
"""

from __future__ import annotations

import os
import signal
import time

import psutil


def session_processes(sid: int) -> list[psutil.Process]:
    """The live processes of session `sid` (zombies count as gone)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getsid(proc.pid) == sid:
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found


def kill_session(sid: int, timeout: float = 30.0) -> None:
    """SIGKILL every process of session `sid` and wait until none is left."""
    deadline = time.monotonic() + timeout
    while True:
        left = session_processes(sid)
        if not left:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"processes of session {sid} outlived SIGKILL: {[p.pid for p in left]}")
        for proc in left:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        time.sleep(0.1)
