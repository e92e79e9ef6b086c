"""Tracking URI resolution, the offline local default store, config validation, metric names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from infra.config import load_config
from infra.errors import ConfigError, UserError
from infra.tracking import Tracker, TrackingConfig, list_runs, metric_name, resolve_tracking_uri


def test_default_uri_is_env_then_a_sqlite_store_under_mlruns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri("") == f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert resolve_tracking_uri("") == "http://mlflow.example:5000"
    # relative sqlite paths are fixed now: learner ranks run from Ray's folders, not this one
    assert resolve_tracking_uri("sqlite:///runs/x.db") == f"sqlite:///{tmp_path}/runs/x.db"
    assert resolve_tracking_uri("sqlite:////data/x.db") == "sqlite:////data/x.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///y.db")
    assert resolve_tracking_uri("") == f"sqlite:///{tmp_path}/y.db"


def test_default_local_store_works_offline_and_keeps_everything_under_mlruns(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with Tracker.start(TrackingConfig(experiment="local")) as tracker:
        tracker.log_metrics({"reward/mean": 1.0}, step=3)
        tracker.log_config({"a": 1})
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    yaml_files = list((tmp_path / "mlruns" / "artifacts").rglob("config.yaml"))
    assert len(yaml_files) == 1 and tracker.run_id in str(yaml_files[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlruns"]
    [summary] = list_runs(None, "local")
    assert (summary.run_id, summary.step, summary.last_reward, summary.status) == (
        tracker.run_id, 3, 1.0, "FINISHED")


def test_unreachable_tracking_server_is_one_error_naming_the_uri():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from _servers import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(UserError, match=f"cannot reach the MLflow tracking server at {uri}"):
        Tracker.start(TrackingConfig(tracking_uri=uri))
    with pytest.raises(UserError, match=f"cannot reach the MLflow tracking server at {uri}"):
        list_runs(uri)


@pytest.mark.parametrize("override, key", [
    ("tracking_uri=localhost:5000", "tracking.tracking_uri"),
    ("log_images_every_n_steps=-1", "tracking.log_images_every_n_steps"),
    ("num_images=100", "tracking.num_images"),
])
def test_bad_tracking_config_fails_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(TrackingConfig, overrides=[override])


def test_blank_experiment_name_is_rejected():
    with pytest.raises(ConfigError, match=r"tracking\.experiment"):
        TrackingConfig(experiment="  ")


@pytest.mark.parametrize("name, expected", [
    ("reward/mean", "reward/mean"),
    ("eval/vIoU@0.3", "eval/vIoU_0.3"),
    ("eval/m_tIoU", "eval/m_tIoU"),
    ("/time//step_s/", "time/step_s"),
    ("a/./b/../c", "a/b/__/c"),
    ("reward/tIoU (spans)", "reward/tIoU _spans_"),
    ("größe", "gr__e"),
    ("", "_"),
])
def test_metric_names_are_mapped_onto_what_mlflow_accepts(name, expected):
    assert metric_name(name) == expected


@given(st.text(max_size=300))
def test_every_sanitised_name_passes_mlflows_own_validation(name):
    from mlflow.utils.validation import _validate_metric_name

    cleaned = metric_name(name)
    _validate_metric_name(cleaned)  # raises MlflowException when invalid
    assert len(cleaned) <= 250
    assert metric_name(cleaned) == cleaned  # stable: a valid name maps to itself


@pytest.mark.parametrize("every, total, steps", [
    (50, 4, [1, 4]),  # the demo: a short run still shows its first and last policy
    (2, 5, [1, 2, 4, 5]),
    (3, 9, [1, 3, 6, 9]),
    (0, 4, []),  # 0: never
])
def test_pictures_are_due_at_the_first_and_last_step_and_every_n_in_between(every, total, steps):
    config = TrackingConfig(log_images_every_n_steps=every)
    assert [s for s in range(1, total + 1) if config.images_due(s, total)] == steps
