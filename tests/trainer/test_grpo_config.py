import pytest

from infra.config import load_config
from infra.errors import ConfigError
from trainer.grpo import GRPOConfig


def test_defaults_follow_the_papers():
    cfg = GRPOConfig()
    assert (cfg.group_size, cfg.std_eps, cfg.advantage_estimator) == (8, 1e-6, "grpo")
    assert cfg.uses_reference


def test_kl_coef_zero_means_no_reference_model():
    assert not GRPOConfig(kl_coef=0.0).uses_reference


@pytest.mark.parametrize("kwargs,key", [
    ({"loss_agg": "token-sum"}, "grpo.loss_agg"),
    ({"kl_estimator": "k4"}, "grpo.kl_estimator"),
    ({"kl_mode": "both"}, "grpo.kl_mode"),
    ({"clip_ratio_c": 0.5}, "grpo.clip_ratio_c"),
    ({"clip_ratio_low": 1.0}, "grpo.clip_ratio_low"),
    ({"group_size": 0}, "grpo.group_size"),
    ({"overlong_buffer_len": 1024}, "grpo.overlong_buffer_len"),
    ({"ppo_epochs": 0}, "grpo.ppo_epochs"),
    ({"ppo_mini_batch_size": -1}, "grpo.ppo_mini_batch_size"),
])
def test_bad_values_name_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        GRPOConfig(**kwargs)


def test_overrides_load_through_omegaconf():
    cfg = load_config(GRPOConfig, overrides=["clip_ratio_high=0.28", "clip_ratio_c=3.0", "kl_coef=0"])
    assert (cfg.clip_ratio_high, cfg.clip_ratio_c, cfg.uses_reference) == (0.28, 3.0, False)
