"""LearnerConfig validation, the balanced experience split, and the Ray Train builder (no fit)."""

from __future__ import annotations

import pytest

from _learner_helpers import make_items
from infra.config import load_config
from infra.errors import ConfigError
from trainer.learner import LearnerConfig, scatter_items
from trainer.learner.distribute import split_balanced


def _summary(shares):
    return [[(it.prompt.sample_id, len(it.completion.token_ids), it.is_padding) for it in share] for share in shares]


def test_split_gives_contiguous_equal_shares_padded_with_weightless_copies(tiny_model):
    items = make_items(tiny_model)  # 7 items: a2 a3 a4 a5 b6 b7 b8 (prompt, tokens)
    assert _summary(split_balanced(items, 3)) == [
        [("a", 2, False), ("a", 3, False), ("a", 4, False)],
        [("a", 5, False), ("b", 6, False), ("a", 5, True)],
        [("b", 7, False), ("b", 8, False), ("b", 7, True)],
    ]


def test_split_of_nothing_is_nothing_everywhere():
    assert split_balanced([], 2) == [[], []]


def test_split_of_fewer_items_than_ranks(tiny_model):
    items = make_items(tiny_model)[:1]
    assert _summary(split_balanced(items, 3)) == [[("a", 2, False)], [("a", 2, True)], [("a", 2, True)]]


def test_scatter_without_a_process_group_returns_the_items(tiny_model):
    items = make_items(tiny_model)
    assert scatter_items(items, 0, 1) == items


def test_learner_config_defaults_and_overrides():
    cfg = load_config(LearnerConfig, overrides=["zero_stage=0", "resources_per_worker={stvg_learner: 1}",
                                                "use_gpu=false"])
    # YAML booleans arrive as "False"/"True" strings in a str field: the learner reads them case-blind
    assert (cfg.zero_stage, cfg.resources_per_worker, cfg.use_gpu.lower()) == (0, {"stvg_learner": 1.0}, "false")
    assert (LearnerConfig().lr, LearnerConfig().weight_decay, LearnerConfig().zero_stage) == (1e-6, 1e-2, 3)


@pytest.mark.parametrize("kwargs,key", [({"zero_stage": 2}, "learner.zero_stage"),
                                        ({"use_gpu": "maybe"}, "learner.use_gpu"),
                                        ({"old_logprobs": "engine"}, "learner.old_logprobs"),
                                        ({"attn_implementation": "flash"}, "learner.attn_implementation"),
                                        ({"micro_batch_size": 0}, "learner.micro_batch_size")])
def test_bad_learner_values_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        LearnerConfig(**kwargs)


def test_ray_trainer_uses_gloo_and_a_cpu_deepspeed_without_gpus(tmp_path):
    from trainer.learner.ray_train import make_trainer

    cfg = LearnerConfig(num_workers=2, use_gpu="false", resources_per_worker={"stvg_learner": 1}, max_failures=3)
    trainer = make_trainer(lambda config: None, {"x": 1}, cfg, storage_path=str(tmp_path), name="t")
    assert trainer.train_loop_config == {"x": 1}
    assert trainer.scaling_config.num_workers == 2 and trainer.scaling_config.use_gpu is False
    assert trainer.scaling_config.resources_per_worker == {"stvg_learner": 1}
    assert trainer.run_config.failure_config.max_failures == 3
    assert trainer.run_config.worker_runtime_env == {"env_vars": {"DS_ACCELERATOR": "cpu"}}
    assert trainer.run_config.storage_path == str(tmp_path)


def test_torch_threads_are_left_to_rays_cpu_reservation_unless_asked_for(monkeypatch):
    from trainer.job import _worker_env

    monkeypatch.delenv("STVG_TORCH_THREADS", raising=False)
    assert "OMP_NUM_THREADS" not in _worker_env()  # GPU learners get their reserved CPUs, not 1
    monkeypatch.setenv("STVG_TORCH_THREADS", "3")
    assert _worker_env()["OMP_NUM_THREADS"] == "3"
