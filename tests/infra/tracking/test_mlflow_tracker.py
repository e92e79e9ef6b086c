"""Tracker against a real `mlflow server`, read back through MlflowClient (not through Tracker)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient
from PIL import Image

from infra.errors import UserError
from infra.tracking import Tracker, TrackingConfig

pytestmark = pytest.mark.slow  # every test here talks to the session's mlflow server


@dataclasses.dataclass
class Inner:
    group_size: int = 8
    lr: float = 1e-5
    terms: list = dataclasses.field(default_factory=lambda: ["format", "tiou"])


@dataclasses.dataclass
class RunConfig:
    name: str = "demo"
    grpo: Inner = dataclasses.field(default_factory=Inner)
    prompt: str = "x" * 7000  # longer than MLflow's 6000-character param limit


def _history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_config_becomes_dotted_params_and_a_yaml_artifact(mlflow_url, experiment, tmp_path):
    with Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment)) as tracker:
        tracker.log_config(RunConfig())
    client = MlflowClient(mlflow_url)
    params = client.get_run(tracker.run_id).data.params
    assert params["name"] == "demo"
    assert params["grpo.group_size"] == "8"
    assert params["grpo.lr"] == "1e-05"
    assert params["grpo.terms"] == '["format", "tiou"]'
    assert len(params["prompt"]) == 6000 and params["prompt"].startswith("xxx")
    local = client.download_artifacts(tracker.run_id, "config.yaml", str(tmp_path))
    assert yaml.safe_load(Path(local).read_text()) == {
        "name": "demo", "grpo": {"group_size": 8, "lr": 1e-5, "terms": ["format", "tiou"]}, "prompt": "x" * 7000}


def test_metrics_are_stored_by_step_under_mlflow_safe_names(mlflow_url, experiment):
    with Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment)) as tracker:
        tracker.log_metrics({"reward/mean": 0.5, "eval/vIoU@0.3": np.float32(0.25)}, step=1)
        tracker.log_metrics({"reward/mean": 1.5, "time/step_s": 2, "kl": None}, step=2)
        tracker.log_metrics({"reward/mean": 2.0}, step=5)
    client = MlflowClient(mlflow_url)
    assert _history(client, tracker.run_id, "reward/mean") == [(1, 0.5), (2, 1.5), (5, 2.0)]
    assert _history(client, tracker.run_id, "eval/vIoU_0.3") == [(1, 0.25)]
    assert _history(client, tracker.run_id, "progress/step") == [(1, 1.0), (2, 2.0), (5, 5.0)]
    assert "kl" not in client.get_run(tracker.run_id).data.metrics


def test_non_numeric_metric_is_a_type_error_naming_it(mlflow_url, experiment):
    with Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment)) as tracker:
        with pytest.raises(TypeError, match="reward/mean"):
            tracker.log_metrics({"reward/mean": "high"}, step=1)


def test_images_and_files_become_artifacts(mlflow_url, experiment, tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    extra = tmp_path / "notes.txt"
    extra.write_text("hello")
    with Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment)) as tracker:
        path = tracker.log_image(array, step=10)
        tracker.log_image(Image.fromarray(array[:, :, 0]), step=10, suffix="1")
        tracker.log_artifact(extra, "misc")
    assert path == "rollouts/step-000010.png"
    client = MlflowClient(mlflow_url)
    listed = sorted(f.path for f in client.list_artifacts(tracker.run_id, "rollouts"))
    assert listed == ["rollouts/step-000010-1.png", "rollouts/step-000010.png"]
    png = client.download_artifacts(tracker.run_id, "rollouts/step-000010.png", str(tmp_path))
    assert np.array_equal(np.asarray(Image.open(png)), array)  # PNG is lossless
    txt = client.download_artifacts(tracker.run_id, "misc/notes.txt", str(tmp_path / "d"))
    assert Path(txt).read_text() == "hello"


def test_tags_include_dataset_and_the_git_commit(mlflow_url, experiment, monkeypatch):
    monkeypatch.setenv("STVG_GIT_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    config = TrackingConfig(tracking_uri=mlflow_url, experiment=experiment, run_name="tagged")
    with Tracker.start(config, tags={"dataset": "hcstvg-v1"}) as tracker:
        tracker.set_tags({"checkpoint_uri": "s3://b/run/step-000010"})
    run = MlflowClient(mlflow_url).get_run(tracker.run_id)
    assert run.data.tags["dataset"] == "hcstvg-v1"
    assert run.data.tags["mlflow.source.git.commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert run.data.tags["checkpoint_uri"] == "s3://b/run/step-000010"
    assert run.info.run_name == "tagged"


def test_resuming_a_run_id_appends_to_the_same_run(mlflow_url, experiment):
    config = TrackingConfig(tracking_uri=mlflow_url, experiment=experiment)
    first = Tracker.start(config)
    first.log_config({"lr": 1e-5, "steps": 100})
    first.log_metrics({"reward/mean": 1.0}, step=1)
    first.log_metrics({"reward/mean": 1.25}, step=2)
    first.close("KILLED")  # e.g. the pod was preempted
    client = MlflowClient(mlflow_url)
    assert client.get_run(first.run_id).info.status == "KILLED"

    with Tracker.start(config, run_id=first.run_id) as second:
        assert client.get_run(first.run_id).info.status == "RUNNING"
        second.log_config({"lr": 1e-5, "steps": 200, "resumed_from": 2})
        second.log_metrics({"reward/mean": 1.75}, step=3)

    assert second.run_id == first.run_id
    assert _history(client, first.run_id, "reward/mean") == [(1, 1.0), (2, 1.25), (3, 1.75)]
    run = client.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "1e-05", "steps": "100", "resumed_from": "2"}  # MLflow keeps first values
    names = sorted(f.path for f in client.list_artifacts(first.run_id))
    assert names[0] == "config.resumed-" + names[0][len("config.resumed-"):] and names[1] == "config.yaml"
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    assert len(client.search_runs([experiment_id])) == 1


def test_an_exception_ends_the_run_failed_and_ctrl_c_killed(mlflow_url, experiment):
    config = TrackingConfig(tracking_uri=mlflow_url, experiment=experiment)
    with pytest.raises(RuntimeError):
        with Tracker.start(config) as failed:
            raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt):
        with Tracker.start(config) as killed:
            raise KeyboardInterrupt
    client = MlflowClient(mlflow_url)
    assert client.get_run(failed.run_id).info.status == "FAILED"
    assert client.get_run(killed.run_id).info.status == "KILLED"


def test_resuming_an_unknown_run_id_names_it(mlflow_url, experiment):
    with pytest.raises(UserError, match="0000deadbeef.*" + mlflow_url.replace(".", r"\.")):
        Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=experiment), run_id="0000deadbeef")
