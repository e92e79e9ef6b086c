"""`stvg train` with a warm start (what the demo does): an SFT stage in a run of its own, then GRPO
from its checkpoint, evaluated before and after (tests/trainer/test_warm_start.py: a finished warm
start is reused)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow


def _train(cwd: Path, overrides: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "train", "--quiet", *overrides], cwd=cwd,
                          env=dict(os.environ), capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def test_warm_start_trains_first_then_grpo_starts_from_it(tmp_path, e2e_cache):
    from mlflow.tracking import MlflowClient
    from transformers import Qwen2_5_VLForConditionalGeneration

    overrides = ["name=demo", f"model.cache_dir={e2e_cache}", "task=vtg", "data.synthetic_train_videos=4",
                 "data.synthetic_heldout_videos=2", "rollout.max_new_tokens=16", "prompts_per_step=2",
                 "grpo.group_size=2", "grpo.filter_zero_variance=false", "learner.micro_batch_size=4",
                 "warm_start.steps=3", "warm_start.prompts_per_step=2", "eval.at_start=true", "eval.max_samples=2",
                 "total_steps=1"]
    log = _train(tmp_path, overrides)
    warm = tmp_path / "runs" / "demo" / "checkpoints-warm-start" / "step-000003"
    assert "warm start: 3 SFT steps" in log and (warm / "manifest.json").is_file(), log[-3000:]

    # the GRPO run loaded the warm start's weights (its hf/ export, downloaded once into the node cache)
    model_line = next(line for line in log.splitlines() if line.startswith("training demo:"))
    assert f", model {warm}, " in model_line
    exported = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(warm / "hf")).state_dict()
    cached = [Qwen2_5_VLForConditionalGeneration.from_pretrained(str(p.parent)).state_dict()
              for p in (e2e_cache / "checkpoints").glob("*/hf/config.json")]
    assert any(all(torch.equal(loaded[k], exported[k]) for k in exported) for loaded in cached)

    # two MLflow runs: the warm start (stage sft, 3 steps of loss) and GRPO, evaluated at steps 0 and 1
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    runs = {r.info.run_name: r for r in client.search_runs([client.get_experiment_by_name("stvg").experiment_id])}
    assert set(runs) == {"demo", "demo-warm-start"}
    assert runs["demo-warm-start"].data.tags["stage"] == "sft"
    assert [m.step for m in client.get_metric_history(runs["demo-warm-start"].info.run_id, "loss")] == [1, 2, 3]
    assert sorted(m.step for m in client.get_metric_history(runs["demo"].info.run_id, "eval/reward_mean")) == [0, 1]
    assert "held-out:" in log and "reward_mean " in log and " -> " in log
