"""User mistakes on the run commands end with one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _stvg(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, message", [
    (["train", "grpo.group_sise=4"], "unknown config key 'grpo.group_sise'; did you mean 'grpo.group_size'?"),
    (["train", "mode=fast"], "mode='fast' is not allowed; choose one of: sync, async"),
    (["train", "no-such-preset"], "neither a config file nor a preset"),
    (["train", "demoo"], "neither a config file nor a preset; presets: demo,"),
    (["train", "data.on_bad_video=ignore"], "data.on_bad_video='ignore' is not allowed; choose one of: fail, skip"),
    (["train", "missing.yaml"], "config file 'missing.yaml' does not exist"),
    (["train", "rollout.temperature=0.7", "grpo.temperature=1.0"], "must equal rollout.temperature"),
    (["train", "data.source=hcstvg-v2"], "data.train_annotations is required"),
    (["eval", "--checkpoint", "runs/nope/checkpoints"], "/runs/nope/checkpoints' does not exist; give a run's "
                                                         "checkpoint folder"),
    (["train", "learner.zero_stage=7"], "learner.zero_stage"),
    (["train", "data.synthetic_objects=[0,2]"], "data.synthetic_objects=[0, 2] must be [fewest, most]"),
    (["train", "data.synthetic_background=noise"], "data.synthetic_background='noise' must be one of: grey, coded"),
    (["train", "rollout.instruction=short"], "rollout.instruction='short' is neither a style (paper, compact)"),
])
def test_bad_config_is_one_line_naming_the_key(tmp_path, args, message):
    result = _stvg(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # nothing left behind


def test_errors_name_the_option_the_user_gave_and_the_closest_known_name(tmp_path):
    result = _stvg("eval", "--checkpoint", "runs/nope/checkpoints", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"stvg eval: error: --checkpoint='{tmp_path}/runs/nope/checkpoints' does not exist")
    assert "model.path" not in result.stderr
    assert "did you mean 'demo'?" in _stvg("train", "demoo", cwd=tmp_path).stderr
    assert "did you mean 'train'?" in _stvg("trian", cwd=tmp_path).stderr


def test_training_again_into_a_finished_run_folder_asks_for_resume(tmp_path):
    from infra.storage import open_checkpoints

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "x").write_text("1")
    open_checkpoints(str(tmp_path / "runs/demo/checkpoints")).save(3, tmp_path / "src", {"step": 3})
    result = _stvg("train", cwd=tmp_path)
    assert result.returncode == 2
    assert "already holds checkpoints (latest step 3); pass resume=auto" in result.stderr


def test_a_user_error_inside_the_learner_ends_the_run_without_retries(tmp_path, e2e_cache):
    """A prompt over rollout.max_prompt_tokens is found by the rollout actor, inside learner rank 0.
    With learner.max_failures=-1 Ray Train would restart the learner forever: the run must end on
    the first attempt, with the message naming the knob, and the MLflow run marked FAILED."""
    import mlflow

    result = _stvg("train", "rollout.max_prompt_tokens=64", "learner.max_failures=-1", "total_steps=2", "warm_start.steps=0",
                   f"model.cache_dir={e2e_cache}", "tracking.tracking_uri=sqlite:///mlflow.db", "--quiet",
                   cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert "more than rollout.max_prompt_tokens=64" in last_line
    assert "Traceback" not in result.stderr
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("stvg").experiment_id])
    assert [run.info.status for run in runs] == ["FAILED"]
