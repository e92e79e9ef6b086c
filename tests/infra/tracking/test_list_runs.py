"""list_runs (what `stvg status` shows) against a real `mlflow server` and a local store."""

from __future__ import annotations

import time

import pytest
from mlflow import MlflowClient

from infra.errors import UserError
from infra.tracking import RunSummary, Tracker, TrackingConfig, list_runs


@pytest.mark.slow
def test_list_runs_shows_status_step_reward_and_checkpoint_newest_first(mlflow_url, experiment):
    config = TrackingConfig(tracking_uri=mlflow_url, experiment=experiment)
    with Tracker.start(config) as old:
        old.log_metrics({"reward/mean": 0.5}, step=10)
        old.log_metrics({"reward/mean": 0.75}, step=20)
        old.set_tags({"checkpoint_uri": "s3://bucket/a/step-000020"})
    time.sleep(0.01)  # distinct start times (milliseconds)
    new = Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment, run_name="second"))

    runs = list_runs(mlflow_url, experiment)

    assert [r.run_id for r in runs] == [new.run_id, old.run_id]
    assert runs[0] == RunSummary(new.run_id, "second", "RUNNING", None, None, None, runs[0].start_time)
    assert (runs[1].status, runs[1].step, runs[1].last_reward, runs[1].checkpoint_uri) == (
        "FINISHED", 20, 0.75, "s3://bucket/a/step-000020")
    info = MlflowClient(mlflow_url).get_run(old.run_id).info
    assert runs[1].start_time.timestamp() == pytest.approx(info.start_time / 1000)
    new.close()


@pytest.mark.slow
def test_list_runs_without_experiment_covers_every_experiment(mlflow_url, experiment):
    a = Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment + "-a"))
    b = Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment + "-b"))
    ids = {r.run_id for r in list_runs(mlflow_url)}
    assert {a.run_id, b.run_id} <= ids
    a.close()
    b.close()


@pytest.mark.slow
def test_unknown_experiment_is_an_error_naming_it(mlflow_url):
    with pytest.raises(UserError, match="'no-such-experiment' not found"):
        list_runs(mlflow_url, "no-such-experiment")


def test_a_local_store_that_does_not_exist_has_no_runs(tmp_path):
    assert list_runs(f"sqlite:///{tmp_path}/mlruns/mlflow.db") == []
    assert not (tmp_path / "mlruns").exists()  # listing must not create a database
