"""Advantages against numbers worked by hand (arithmetic in the comments)."""

import pytest
import torch

from infra.errors import ConfigError
from trainer.grpo import compute_advantages

# Group "a" = [1, 2, 3, 4], group "b" = [0, 0, 1], group "c" = [5]; interleaved on purpose so that
# grouping can only come from the ids.
REWARDS = torch.tensor([1.0, 0.0, 2.0, 5.0, 3.0, 0.0, 4.0, 1.0])
IDS = ["a", "b", "a", "c", "a", "b", "a", "b"]


def test_grpo_advantage_is_centred_reward_over_sample_std_plus_eps():
    adv, _ = compute_advantages(REWARDS, IDS, "grpo", std_eps=1e-6)
    # a: mean 2.5, deviations -1.5 -0.5 0.5 1.5, sum of squares 5, sample var 5/3, std 1.2909944
    #    -> -1.5/1.2909954 = -1.1618941, -0.5/1.2909954 = -0.3872980 (std + 1e-6 in the divisor)
    # b: mean 1/3, deviations -1/3 -1/3 2/3, sum of squares 2/3, sample var 1/3, std 0.5773503
    #    -> -0.3333333/0.5773513 = -0.5773493, 0.6666667/0.5773513 = 1.1546985
    # c: a single completion has no baseline -> 0
    expected = torch.tensor([-1.1618941, -0.5773493, -0.3872980, 0.0, 0.3872980, -0.5773493, 1.1618941, 1.1546985])
    torch.testing.assert_close(adv, expected, atol=2e-6, rtol=0)


def test_std_eps_is_added_to_the_std_not_the_variance():
    # group [0, 2]: mean 1, deviations -1 1, sample std sqrt(2) = 1.4142136; eps 0.5 -> 1/1.9142136 = 0.5224077
    adv, _ = compute_advantages(torch.tensor([0.0, 2.0]), ["g", "g"], "grpo", std_eps=0.5)
    torch.testing.assert_close(adv, torch.tensor([-0.5224077, 0.5224077]), atol=1e-6, rtol=0)


def test_dr_grpo_advantage_is_reward_minus_group_mean():
    adv, _ = compute_advantages(REWARDS, IDS, "dr_grpo")
    # a: 1-2.5, 2-2.5, 3-2.5, 4-2.5; b: 0-1/3, 0-1/3, 1-1/3; c: 0
    expected = torch.tensor([-1.5, -1 / 3, -0.5, 0.0, 0.5, -1 / 3, 1.5, 2 / 3])
    torch.testing.assert_close(adv, expected, atol=1e-6, rtol=0)


def test_rloo_advantage_uses_the_mean_of_the_other_rewards():
    adv, _ = compute_advantages(REWARDS, IDS, "rloo")
    # a: 1-(2+3+4)/3 = -2, 2-(1+3+4)/3 = -2/3, 3-(1+2+4)/3 = 2/3, 4-(1+2+3)/3 = 2
    # b: 0-(0+1)/2 = -0.5 (twice), 1-(0+0)/2 = 1; c: 0
    expected = torch.tensor([-2.0, -0.5, -2 / 3, 0.0, 2 / 3, -0.5, 2.0, 1.0])
    torch.testing.assert_close(adv, expected, atol=1e-6, rtol=0)


def test_equal_rewards_give_zero_advantage_for_every_estimator():
    for estimator in ("grpo", "dr_grpo", "rloo"):
        adv, _ = compute_advantages(torch.tensor([0.7, 0.7, 0.7]), ["x", "x", "x"], estimator)
        assert adv.tolist() == [0.0, 0.0, 0.0]


def test_same_rewards_under_different_group_ids_are_not_pooled():
    # one group [0, 1] -> +-0.7071063; two singleton groups -> 0, 0
    pooled, _ = compute_advantages(torch.tensor([0.0, 1.0]), ["p", "p"], "grpo")
    apart, metrics = compute_advantages(torch.tensor([0.0, 1.0]), ["p", "q"], "grpo")
    torch.testing.assert_close(pooled, torch.tensor([-0.7071063, 0.7071063]), atol=1e-6, rtol=0)
    assert apart.tolist() == [0.0, 0.0]
    assert metrics["groups_singleton"] == 2.0


def test_unknown_estimator_is_a_config_error():
    with pytest.raises(ConfigError, match="gae"):
        compute_advantages(torch.tensor([1.0]), ["a"], "gae")
