"""The training driver's plan: logged as plan.* params and a plan.yaml artifact of the MLflow run,
read back through MlflowClient from a real `mlflow server`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import yaml

from infra.plan import log_plan
from infra.plan.source import SHIPPED_DIR
from infra.tracking import Tracker, TrackingConfig
from trainer.config import load_run_config
from trainer.presets import resolve

pytestmark = pytest.mark.slow  # the session's mlflow server


def test_the_plan_of_the_7b_preset_becomes_params_and_an_artifact(mlflow_url, tmp_path):
    model_dir = tmp_path / "my-model"  # a folder holding config.json, no tokenizer
    model_dir.mkdir()
    (model_dir / "config.json").write_text((SHIPPED_DIR / "qwen2.5-vl-7b.json").read_text())
    cfg = load_run_config(resolve("qwen25vl-7b-stvg-o1"), [f"model.path={model_dir}"])
    with Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=f"plan-{uuid.uuid4().hex[:8]}")) as tracker:
        log_plan(tracker, cfg)
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_url)
    params = client.get_run(tracker.run_id).data.params
    assert params["plan.fits"] == "True"
    assert params["plan.model"] == str(model_dir / "config.json")
    assert params["plan.learner.params"] == "8292166656"
    assert params["plan.learner.gpu"] == "a100-40gb"
    assert params["plan.rollout.kv_bytes_per_token"] == str(2 * 28 * 4 * 128 * 2)
    assert params["plan.rollout.video_tokens_per_prompt"] == "4608"
    local = client.download_artifacts(tracker.run_id, "plan.yaml", str(tmp_path))
    logged = yaml.safe_load(Path(local).read_text())["plan"]
    assert logged["learner"]["total_bytes_per_gpu"] == int(params["plan.learner.total_bytes_per_gpu"])


def test_a_plan_that_cannot_be_made_is_a_warning_not_a_failed_run(mlflow_url, tmp_path, caplog):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4096}))
    with Tracker.start(TrackingConfig(tracking_uri=mlflow_url, experiment=f"plan-{uuid.uuid4().hex[:8]}")) as tracker:
        log_plan(tracker, load_run_config(None, [f"model.path={tmp_path}"]))
    from mlflow import MlflowClient

    assert not [k for k in MlflowClient(mlflow_url).get_run(tracker.run_id).data.params if k.startswith("plan.")]
    assert "no plan logged for this run" in caplog.text and "model_type 'llama'" in caplog.text
