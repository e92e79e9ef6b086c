"""Rank 0 posts metrics to the driver's ProgressBoard; before a checkpoint commits it waits until
the driver has logged them, so a run killed right after a checkpoint loses no metric of the steps
that checkpoint holds. Real parts: a local Ray, the board actor, `follow` logging into a real
Tracker on a sqlite MLflow store."""

from __future__ import annotations

import os
import threading

import pytest


@pytest.fixture(scope="module")
def ray_local():
    import ray

    from infra.loopback import init_local_ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    init_local_ray(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_flush_waits_until_the_driver_has_logged_every_posted_metric(ray_local, tmp_path):
    from mlflow.tracking import MlflowClient

    from infra.tracking import Tracker
    from infra.tracking.config import TrackingConfig
    from trainer.progress import ProgressBoard, RunLog, follow

    tracking = TrackingConfig(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", experiment="flush")
    board = ProgressBoard.remote()
    run_log = RunLog(board, tracking)
    for step in (1, 2, 3):
        run_log.log_metrics({"reward/mean": float(step)}, step)
    assert not run_log.flush(timeout=0.5)  # nobody follows the board yet: nothing is logged

    tracker = Tracker.start(tracking)
    done = threading.Event()
    driver = threading.Thread(target=follow, args=(board, done.is_set, 3, 0, True, tracker), daemon=True)
    driver.start()
    try:
        assert run_log.flush(timeout=30)
        # what flush promised: every metric posted before it is in MLflow now, not later
        history = MlflowClient(tracking_uri=tracking.tracking_uri).get_metric_history(tracker.run_id, "reward/mean")
        assert sorted((m.step, m.value) for m in history) == [(1, 1.0), (2, 2.0), (3, 3.0)]
        posted, logged = ray_local.get(board.counts.remote())
        assert posted == logged == 3
    finally:
        done.set()
        driver.join(timeout=30)
        tracker.close("FINISHED")
