"""KL estimators, in-reward KL, zero-variance filtering and the overlong penalty, worked by hand."""

import pytest
import torch

from trainer.grpo import kl_estimate, kl_reward_penalty, overlong_penalty, zero_variance_mask

LOGP = torch.tensor([[-1.0, -2.0]])
REF = torch.tensor([[-1.5, -1.0]])  # d = logp - ref = [0.5, -1.0]


def test_k1_is_the_log_ratio():
    torch.testing.assert_close(kl_estimate(LOGP, REF, "k1"), torch.tensor([[0.5, -1.0]]))


def test_k2_is_half_the_squared_log_ratio():
    # 0.5 * 0.25 = 0.125; 0.5 * 1 = 0.5
    torch.testing.assert_close(kl_estimate(LOGP, REF, "k2"), torch.tensor([[0.125, 0.5]]))


def test_k3_is_exp_minus_one_minus_log_ratio():
    # exp(-0.5) + 0.5 - 1 = 0.6065307 - 0.5 = 0.1065307; exp(1) - 1 - 1 = 0.7182818
    torch.testing.assert_close(kl_estimate(LOGP, REF, "k3"), torch.tensor([[0.1065307, 0.7182818]]),
                               atol=1e-6, rtol=0)


def test_k3_gradient_is_one_minus_the_inverse_ratio():
    logp = LOGP.clone().requires_grad_(True)
    kl_estimate(logp, REF, "k3").sum().backward()
    # d/dlogp [exp(ref - logp) - (ref - logp) - 1] = 1 - exp(ref - logp): 1 - 0.6065307, 1 - 2.7182818
    torch.testing.assert_close(logp.grad, torch.tensor([[0.3934693, -1.7182818]]), atol=1e-6, rtol=0)


def test_k3_is_clamped_at_ten():
    # d = -20: exp(20) is about 4.85e8 -> clamped to 10
    assert float(kl_estimate(torch.tensor([[-21.0]]), torch.tensor([[-1.0]]), "k3")) == 10.0


def test_kl_reward_penalty_is_coef_times_the_masked_token_sum():
    logp = torch.tensor([[-1.0, -2.0], [-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -1.0], [-1.5, -1.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    penalty = kl_reward_penalty(logp, ref, mask, coef=0.1, estimator="k3")
    # row 0: 0.1 * (0.1065307 + 0.7182818) = 0.0824813; row 1: 0.1 * 0.1065307 = 0.0106531
    torch.testing.assert_close(penalty, torch.tensor([0.0824813, 0.0106531]), atol=1e-6, rtol=0)


def test_zero_variance_groups_are_dropped_and_counted():
    rewards = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 2.0, 0.5, 0.5])
    ids = ["a", "a", "a", "b", "b", "c", "d", "d"]
    keep, metrics = zero_variance_mask(rewards, ids)
    # a all 1 -> drop; b [0, 1] -> keep; c singleton -> drop; d all 0.5 -> drop
    assert keep.tolist() == [False, False, False, True, True, False, False, False]
    assert metrics == {"groups": 4.0, "groups_zero_variance": 3.0, "samples_kept": 2.0}


@pytest.mark.parametrize("length,expected", [(10, 0.0), (15, 0.0), (16, -0.2), (18, -0.6), (20, -1.0), (25, -1.0)])
def test_overlong_penalty_is_linear_over_the_buffer(length, expected):
    # max_len 20, buffer 5 -> no penalty up to 15, then -(L - 15) / 5, capped at -1
    value = overlong_penalty(torch.tensor([length]), max_len=20, buffer_len=5, factor=1.0)
    assert float(value) == pytest.approx(expected)


def test_overlong_penalty_scales_with_the_factor_and_is_off_without_a_buffer():
    # (18 - 15) / 5 * 0.5 = 0.3
    assert float(overlong_penalty(torch.tensor([18]), 20, 5, factor=0.5)) == pytest.approx(-0.3)
    assert overlong_penalty(torch.tensor([18, 30]), 20, 0).tolist() == [0.0, 0.0]
