"""The clipped policy loss and its aggregation against numbers worked by hand.

Three completions, T = 3, clip_low 0.2, clip_high 0.28 (so clip(r) lies in [0.8, 1.28]):
  row 0: A = +1,  r = [1.5, 1.0, 0.5], mask [1, 1, 1]
         -A*r = [-1.5, -1.0, -0.5]; -A*clip(r) = [-1.28, -1.0, -0.8]; max -> [-1.28, -1.0, -0.5]
  row 1: A = -2,  r = [1.5, 0.5, 4.0], mask [1, 1, 1]
         -A*r = [3.0, 1.0, 8.0];     -A*clip(r) = [2.56, 1.6, 2.56];  max -> [3.0, 1.6, 8.0]
         dual clip c = 3 caps at -A*c = 6 -> [3.0, 1.6, 6.0]
  row 2: A = 0.5, r = [1.0, 2.0, 1.0], mask [1, 0, 0] -> only -0.5 counts
7 tokens count.
"""

import math

import pytest
import torch

from infra.errors import ConfigError
from trainer.grpo import LossNorm, aggregate, policy_loss

ADV = torch.tensor([1.0, -2.0, 0.5])
RATIO = torch.tensor([[1.5, 1.0, 0.5], [1.5, 0.5, 4.0], [1.0, 2.0, 1.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
OLD = torch.tensor([[-1.0, -2.0, -0.3], [-0.7, -1.1, -2.5], [-0.2, -0.9, -1.3]])


def _logp():
    return (OLD + torch.log(RATIO)).clone().requires_grad_(True)


def test_per_token_loss_takes_the_pessimistic_clipped_term():
    loss, _ = policy_loss(_logp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.28)
    expected = torch.tensor([[-1.28, -1.0, -0.5], [3.0, 1.6, 8.0], [-0.5, -0.64, -0.5]])
    torch.testing.assert_close(loss.detach(), expected, atol=1e-5, rtol=0)


def test_dual_clip_caps_the_loss_of_negative_advantages():
    loss, metrics = policy_loss(_logp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0)
    torch.testing.assert_close(loss.detach()[1], torch.tensor([3.0, 1.6, 6.0]), atol=1e-5, rtol=0)
    assert metrics["clip_frac_dual"] == pytest.approx(1 / 7)


def test_token_mean_divides_by_all_completion_tokens():
    logp = _logp()
    loss, _ = policy_loss(logp, OLD, ADV, MASK, clip_low=0.2, clip_high=0.28)
    value = aggregate(loss, MASK, "token-mean", LossNorm.of(MASK))
    # (-1.28 - 1.0 - 0.5) + (3.0 + 1.6 + 8.0) + (-0.5) = 9.32; / 7 = 1.3314286
    assert float(value.detach()) == pytest.approx(1.3314286, abs=1e-6)
    value.backward()
    # unclipped tokens: d(-A r)/dlogp = -A r; clipped ones carry no gradient; / 7
    expected_grad = torch.tensor([[0.0, -1.0, -0.5], [3.0, 0.0, 8.0], [-0.5, 0.0, 0.0]]) / 7
    torch.testing.assert_close(logp.grad, expected_grad, atol=1e-6, rtol=0)


def test_seq_mean_token_mean_averages_per_sequence_means():
    loss, _ = policy_loss(_logp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0)
    value = aggregate(loss, MASK, "seq-mean-token-mean", LossNorm.of(MASK))
    # row means -2.78/3 = -0.9266667, 10.6/3 = 3.5333333, -0.5/1 = -0.5; mean 2.1066667/3 = 0.7022222
    assert float(value) == pytest.approx(0.7022222, abs=1e-6)


def test_seq_mean_token_sum_norm_divides_by_the_constant_max_len():
    loss, _ = policy_loss(_logp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0)
    value = aggregate(loss, MASK, "seq-mean-token-sum-norm", LossNorm.of(MASK, max_len=4))
    # sums -2.78 + 10.6 - 0.5 = 7.32; / (max_len 4 * 3 sequences) = 0.61
    assert float(value) == pytest.approx(0.61, abs=1e-6)


@pytest.mark.parametrize("mode,expected", [("token-mean", 7.32 / 7), ("seq-mean-token-mean", 0.7022222),
                                           ("seq-mean-token-sum-norm", 0.61)])
def test_micro_batch_shares_with_the_global_norm_add_up_to_the_whole(mode, expected):
    loss, _ = policy_loss(_logp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.28, clip_ratio_c=3.0)
    norm = LossNorm(num_tokens=7, num_seqs=3, max_len=4)
    parts = aggregate(loss[:1], MASK[:1], mode, norm) + aggregate(loss[1:], MASK[1:], mode, norm)
    assert float(parts) == pytest.approx(expected, abs=1e-6)


def test_clip_fractions_and_approx_kl_count_only_masked_tokens():
    entropy = torch.full((3, 3), 2.0)
    entropy[2, 1:] = 100.0  # masked: must not count
    _, metrics = policy_loss(_logp(), OLD, ADV, MASK, clip_low=0.2, clip_high=0.28, entropy=entropy)
    # high: row 0 token 0 (A > 0, r = 1.5 > 1.28); row 2 token 1 (r = 2) is masked -> 1/7
    # low:  row 1 token 1 (A < 0, r = 0.5 < 0.8) -> 1/7
    assert metrics["clip_frac_high"] == pytest.approx(1 / 7)
    assert metrics["clip_frac_low"] == pytest.approx(1 / 7)
    assert metrics["clip_frac_dual"] == 0.0
    # k3 of (old || new) per token = r - ln r - 1: r=1.5 -> 0.0945349, r=0.5 -> 0.1931472,
    # r=4 -> 1.6137056, r=1 -> 0; sum 2 * 0.0945349 + 2 * 0.1931472 + 1.6137056 = 2.1890698; / 7
    assert metrics["approx_kl_old"] == pytest.approx(2.1890698 / 7, abs=1e-6)
    assert metrics["entropy"] == pytest.approx(2.0)
    assert metrics["ratio_mean"] == pytest.approx((3.0 + 6.0 + 1.0) / 7, abs=1e-6)


def test_ratio_of_one_gives_the_plain_policy_gradient():
    old = torch.tensor([[-1.0, -2.0]])
    logp = old.clone().requires_grad_(True)
    loss, _ = policy_loss(logp, old, torch.tensor([0.5]), torch.ones(1, 2))
    aggregate(loss, torch.ones(1, 2), "token-mean", LossNorm(2, 1)).backward()
    # L = -A r with r = 1 -> value -0.5 per token, gradient -A / 2 = -0.25
    assert logp.grad.tolist() == [[-0.25, -0.25]]
    assert math.isclose(float(loss.sum()), -1.0)


def test_unknown_aggregation_is_a_config_error():
    with pytest.raises(ConfigError, match="token-sum"):
        aggregate(torch.ones(1, 1), torch.ones(1, 1), "token-sum", LossNorm(1, 1))
