"""Checks of the run config that span sections (trainer.config.RunConfig)."""

from __future__ import annotations

import pytest

from infra.errors import ConfigError
from trainer.config import load_run_config


def test_rollout_logprobs_work_at_any_temperature_but_not_with_top_p():
    cfg = load_run_config(None, ["learner.old_logprobs=rollout", "rollout.temperature=0.7"])
    assert (cfg.grpo.temperature, cfg.learner.old_logprobs) == (0.7, "rollout")
    with pytest.raises(ConfigError, match=r"learner\.old_logprobs=rollout needs rollout\.top_p=1"):
        load_run_config(None, ["learner.old_logprobs=rollout", "rollout.top_p=0.9"])
    assert load_run_config(None, ["rollout.top_p=0.9"]).rollout.top_p == 0.9  # fine with recomputed pi_old


@pytest.mark.parametrize("override, key", [("rollout.worker_timeout_s=0", "rollout.worker_timeout_s"),
                                           ("rollout.worker_start_timeout_s=-1", "rollout.worker_start_timeout_s"),
                                           ("rollout.weight_bucket_mb=0", "rollout.weight_bucket_mb"),
                                           ("grpo.ppo_epochs=0", "grpo.ppo_epochs")])
def test_bad_weight_sync_and_ppo_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_run_config(None, [override])


def test_weight_buckets_are_counted_in_mebibytes():
    assert load_run_config(None, ["rollout.weight_bucket_mb=3"]).rollout.weight_bucket_bytes == 3 * 2**20
