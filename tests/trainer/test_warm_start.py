"""The warm start's SFT stage config: the run's data, model and prompts with the warm start's own
steps, batch and learning rate, folder, checkpoints and MLflow run name."""

from __future__ import annotations

from pathlib import Path

from trainer.config import load_run_config
from trainer.preparation import resolve_paths
from trainer.warm_start import warm_start_config


def test_warm_start_stage_keeps_the_task_and_takes_its_own_steps_lr_and_folders(tmp_path):
    cfg = resolve_paths(load_run_config(None, [
        "name=demo", f"output_dir={tmp_path / 'demo'}", "task=vtg", "rollout.instruction=compact", "learner.lr=2e-4",
        "warm_start.steps=120", "warm_start.lr=3e-3", "warm_start.prompts_per_step=8", "eval.at_start=true"]))
    sft = warm_start_config(cfg)
    assert (sft.name, sft.total_steps, sft.prompts_per_step, sft.learner.lr) == ("demo-warm-start", 120, 8, 3e-3)
    assert sft.task == "vtg" and sft.rollout == cfg.rollout and sft.data == cfg.data and sft.model == cfg.model
    assert Path(sft.output_dir) == tmp_path / "demo" / "warm-start"
    assert sft.checkpoint.uri == str(tmp_path / "demo" / "checkpoints-warm-start")
    assert (sft.checkpoint.every_n_steps, sft.resume, sft.tracking.run_name) == (0, "auto", "demo-warm-start")
    assert not (sft.eval.at_start or sft.eval.at_end or sft.eval.every_n_steps)  # the GRPO run evaluates
    assert sft.warm_start.steps == 0 and cfg.warm_start.steps == 120


def test_a_finished_warm_start_is_reused_without_training(tmp_path, capsys):
    from infra.storage import open_checkpoints
    from trainer.warm_start import warm_start

    cfg = resolve_paths(load_run_config(None, ["name=demo", f"output_dir={tmp_path / 'demo'}", "warm_start.steps=5"]))
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "x.txt").write_text("x")
    uri = open_checkpoints(warm_start_config(cfg).checkpoint.uri).save(5, tmp_path / "files", {"step": 5})
    started = warm_start(cfg)  # no Ray, no training: the checkpoint at the requested step is taken as is
    assert started.model.path == str(uri) and started.warm_start.steps == 0
    assert f"warm start: reusing {uri}" in capsys.readouterr().out
