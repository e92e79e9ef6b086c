"""`stvg sft` then `stvg train model.path=<sft checkpoint>` on CPU with real parts (local Ray, a ZeRO-3
learner rank, a rollout actor, MLflow in sqlite): RL starts from the weights SFT wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow


def _stvg(cwd: Path, command: str, overrides: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "infra.cli", command, "--quiet", *overrides], cwd=cwd,
                          env=dict(os.environ), capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    """The model's parameters as transformers loads them (checkpoints may store other key names)."""
    from transformers import Qwen2_5_VLForConditionalGeneration

    model, info = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(folder), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    return model.state_dict()


def test_sft_checkpoint_trains_then_starts_grpo(tmp_path, e2e_cache, logged_names):
    common = [f"model.cache_dir={e2e_cache}", "task=vtg", "data.synthetic_train_videos=4",
              "data.synthetic_heldout_videos=2", "rollout.max_new_tokens=24", "learner.num_workers=1",
              "learner.micro_batch_size=2", "eval.max_samples=2", "prompts_per_step=2"]
    sft_log = _stvg(tmp_path, "sft", ["name=sft", "total_steps=3", "learner.lr=1e-3", "checkpoint.every_n_steps=0",
                                      *common])
    checkpoint = tmp_path / "runs" / "sft" / "checkpoints" / "step-000003"
    assert (checkpoint / "manifest.json").is_file(), sft_log[-3000:]
    assert f"stvg train model.path={checkpoint}" in sft_log
    assert sft_log.count("sft step ") == 3

    # SFT moved the weights away from the tiny model it started from
    from rollout.models.tiny import tiny_model_dir

    start, tuned = _weights(tiny_model_dir(e2e_cache / "models", seed=0)), _weights(checkpoint / "hf")
    assert start.keys() == tuned.keys()
    assert any(not torch.equal(start[k], tuned[k]) for k in start)

    # MLflow holds every step's loss and the final evaluation with the reward terms
    from mlflow.tracking import MlflowClient

    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    client = MlflowClient(tracking_uri=tracking)
    (run,) = client.search_runs([client.get_experiment_by_name("stvg").experiment_id], "tags.stage = 'sft'")
    logged_names.check(tracking, run.info.run_id, "sft")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [1, 2, 3]
    for name in ("eval/m_tIoU", "eval/reward_mean", "eval/term/format", "eval/term/tiou"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, name)] == [3], name
    assert run.data.tags["checkpoint_uri"] == str(checkpoint)

    rl_log = _stvg(tmp_path, "train", ["name=rl", f"model.path={checkpoint}", "total_steps=1", "grpo.group_size=2",
                                       "grpo.kl_coef=0.0", "grpo.filter_zero_variance=false", "eval.at_start=true",
                                       "warm_start.steps=0",
                                       *common])
    assert (tmp_path / "runs" / "rl" / "checkpoints" / "step-000001" / "manifest.json").is_file(), rl_log[-3000:]
    # the GRPO run loaded the SFT checkpoint's hf/ export, downloaded once into the node cache
    model_line = next(line for line in rl_log.splitlines() if line.startswith("training rl:"))
    assert f", model {checkpoint}, " in model_line
    cached = [_weights(p.parent) for p in (e2e_cache / "checkpoints").glob("*/hf/config.json")]
    assert any(all(torch.equal(loaded[k], tuned[k]) for k in tuned) for loaded in cached)
    (rl_run,) = [r for r in client.search_runs([client.get_experiment_by_name("stvg").experiment_id])
                 if r.info.run_id != run.info.run_id]
    logged_names.check(tracking, rl_run.info.run_id, "grpo-from-sft")

    # eval.at_start: the starting model is evaluated at step 0, on the held-out samples SFT's final
    # evaluation answered with the same weights, greedily: the same figures; the summary prints both ends
    history = client.get_metric_history(rl_run.info.run_id, "eval/reward_mean")
    start_reward = [m for m in history if m.step == 0]
    end_reward = [m for m in history if m.step == 1]
    sft_reward = client.get_metric_history(run.info.run_id, "eval/reward_mean")[0].value
    assert len(start_reward) == 1 and start_reward[0].value == pytest.approx(sft_reward, abs=1e-9)
    assert f"reward_mean {sft_reward:.2f} -> {end_reward[0].value:.2f}" in rl_log
