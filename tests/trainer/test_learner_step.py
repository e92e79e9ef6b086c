"""One learner step on one process (zero_stage=0): accumulation, padding, smoke, KL and ratio paths."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from _learner_helpers import ADVANTAGES, grpo_config, learner_config
from infra.errors import ConfigError
from trainer.learner.learner import Learner


def _params(learner) -> dict[str, torch.Tensor]:
    return learner.exported_state()


def _step(tiny_model, items, learner_kw=None, grpo_kw=None):
    learner = Learner(tiny_model, learner_config(**(learner_kw or {})), grpo_config(**(grpo_kw or {})))
    before = _params(learner)
    metrics = learner.step(items)
    return before, _params(learner), metrics


@pytest.mark.parametrize("loss_agg", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"])
def test_accumulating_micro_batches_equals_one_big_batch(tiny_model, items, loss_agg):
    _, small, m_small = _step(tiny_model, items, {"micro_batch_size": 2}, {"loss_agg": loss_agg})
    _, big, m_big = _step(tiny_model, items, {"micro_batch_size": 7}, {"loss_agg": loss_agg})
    assert m_small["micro_batches"] == 4 and m_big["micro_batches"] == 1
    assert m_small["loss"] == pytest.approx(m_big["loss"], abs=1e-6)
    assert m_small["grad_norm"] == pytest.approx(m_big["grad_norm"], rel=1e-5)
    for name in big:
        torch.testing.assert_close(small[name], big[name], atol=1e-6, rtol=0, msg=name)


def test_token_mean_loss_at_ratio_one_is_minus_mean_advantage_per_token(tiny_model, items):
    _, _, metrics = _step(tiny_model, items, {"micro_batch_size": 3})
    # completion k has 2 + k tokens and advantage ADVANTAGES[k]; r = 1 so L = -A per token:
    # -(1*2 - 0.5*3 + 0.75*4 - 1.25*5 + 0.5*6 - 1*7 + 1.5*8) / 35 = -(2-1.5+3-6.25+3-7+12)/35 = -5.25/35
    assert sum(2 + k for k in range(7)) == 35
    assert metrics["loss"] == pytest.approx(-5.25 / 35, abs=1e-6)
    assert (metrics["tokens"], metrics["sequences"]) == (35, 7)
    assert metrics["ratio_mean"] == pytest.approx(1.0) and metrics["clip_frac_high"] == 0.0


def test_token_advantages_weigh_each_token_and_equal_the_answer_one_when_repeated(tiny_model, items):
    # grpo.credit=box hands the learner one advantage per token. Repeating each answer's advantage on its
    # tokens is the same step; giving the first token of every completion 2.0 instead changes the
    # token-mean loss at ratio 1 by -(sum over completions of (2.0 - A_k)) / 35.
    repeated = [dataclasses.replace(it, token_advantages=[it.advantage] * len(it.completion.token_ids)) for it in items]
    _, plain, m_plain = _step(tiny_model, items, {"micro_batch_size": 3})
    _, same, m_same = _step(tiny_model, repeated, {"micro_batch_size": 3})
    assert m_same["loss"] == pytest.approx(m_plain["loss"], abs=1e-7)
    for name in plain:
        torch.testing.assert_close(same[name], plain[name], atol=1e-7, rtol=0, msg=name)
    first = [dataclasses.replace(it, token_advantages=[2.0] + [it.advantage] * (len(it.completion.token_ids) - 1))
             for it in items]
    _, moved, m_first = _step(tiny_model, first, {"micro_batch_size": 3})
    assert m_first["loss"] == pytest.approx(-(5.25 + sum(2.0 - a for a in ADVANTAGES)) / 35, abs=1e-6)
    assert any(not torch.equal(moved[name], plain[name]) for name in plain)


def test_every_parameter_changes_after_a_step_with_nonzero_advantages(tiny_model, items):
    before, after, metrics = _step(tiny_model, items, {"micro_batch_size": 4})
    unchanged = [name for name in before if torch.equal(before[name], after[name])]
    assert not unchanged, f"parameters that did not move: {unchanged}"
    assert metrics["grad_norm"] > 0 and metrics["entropy"] > 0


def test_padding_copies_weigh_nothing(tiny_model, items):
    padded = items + [dataclasses.replace(items[6], is_padding=True), dataclasses.replace(items[0], is_padding=True)]
    _, plain, m_plain = _step(tiny_model, items, {"micro_batch_size": 3})
    _, with_pad, m_pad = _step(tiny_model, padded, {"micro_batch_size": 3})
    assert (m_pad["tokens"], m_pad["sequences"]) == (35, 7)
    for name in plain:
        torch.testing.assert_close(with_pad[name], plain[name], atol=1e-6, rtol=0, msg=name)


def test_zero_advantages_leave_the_weights_alone(tiny_model, items):
    flat = [dataclasses.replace(it, advantage=0.0) for it in items]
    before, after, metrics = _step(tiny_model, flat, {"weight_decay": 0.0})
    assert metrics["grad_norm"] == 0.0
    for name in before:
        torch.testing.assert_close(after[name], before[name], atol=0, rtol=0)


def test_rollout_old_logprobs_enter_the_ratio(tiny_model, items):
    # the engine claims every token had log-prob -50: r = exp(logp + 50) is huge, so every token
    # with A > 0 is clipped at 1 + clip_high and none with A < 0 is (r < 1 - clip_low is impossible)
    stale = [dataclasses.replace(it, completion=dataclasses.replace(it.completion, logprobs=[-50.0] * len(it.completion.token_ids)))
             for it in items]
    _, _, metrics = _step(tiny_model, stale, {"old_logprobs": "rollout"})
    # positive advantages: completions 0, 2, 4, 6 with 2 + 4 + 6 + 8 = 20 of 35 tokens
    assert metrics["clip_frac_high"] == pytest.approx(20 / 35)
    assert metrics["clip_frac_low"] == 0.0


def test_kl_loss_is_zero_at_the_reference_and_grows_after_a_step(tiny_model, items):
    learner = Learner(tiny_model, learner_config(), grpo_config(kl_coef=0.1, kl_estimator="k3"))
    first = learner.step(items)
    second = learner.step(items)
    assert first["kl"] == pytest.approx(0.0, abs=1e-7) and first["kl_loss"] == pytest.approx(0.0, abs=1e-8)
    assert second["kl"] > 1e-4
    # kl_loss = coef * token-mean of the per-token KL, and "kl" is that token mean
    assert second["kl_loss"] == pytest.approx(0.1 * second["kl"], rel=1e-5)


def test_kl_in_reward_recomputes_advantages_from_rewards(tiny_model, items):
    # at step 1 the policy IS the reference, so the penalty is 0 and the advantages are the grpo
    # advantages of the rewards k % 3 = [0, 1, 2, 0 | 1, 2, 0] in groups a and b:
    # a: mean 0.75, deviations -0.75 0.25 1.25 -0.75, sum sq 2.75, std sqrt(2.75/3) = 0.9574271
    # b: mean 1, deviations 0 1 -1, sum sq 2, std 1
    a = [d / (0.9574271 + 1e-6) for d in (-0.75, 0.25, 1.25, -0.75)]
    b = [d / (1.0 + 1e-6) for d in (0.0, 1.0, -1.0)]
    wrong = [dataclasses.replace(it, advantage=99.0) for it in items]  # must be ignored
    _, shaped, _ = _step(tiny_model, wrong, {"micro_batch_size": 2}, {"kl_coef": 0.1, "kl_mode": "reward"})
    by_hand = [dataclasses.replace(it, advantage=adv) for it, adv in zip(items, a + b)]
    _, expected, _ = _step(tiny_model, by_hand, {"micro_batch_size": 7})
    for name in expected:
        torch.testing.assert_close(shaped[name], expected[name], atol=1e-6, rtol=0, msg=name)


def test_no_items_anywhere_skips_the_step(tiny_model):
    learner = Learner(tiny_model, learner_config(), grpo_config())
    assert learner.step([])["skipped"] == 1.0


def test_advantages_used_match_the_helper_table(items):
    assert [it.advantage for it in items] == list(ADVANTAGES)


def test_gradient_checkpointing_gives_the_same_step(tiny_model, items):
    _, plain, _ = _step(tiny_model, items, {"micro_batch_size": 4})
    _, ckpt, _ = _step(tiny_model, items, {"micro_batch_size": 4, "gradient_checkpointing": True})
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], atol=1e-6, rtol=0, msg=name)


@pytest.mark.parametrize("tied", [False, True])
def test_exported_weights_load_into_the_rollout_hf_engine(tiny_model, items, tmp_path, tied):
    import json
    import shutil

    from rollout.engines.hf import HFEngine
    from rollout.models import get_family

    model_dir = tiny_model
    if tied:  # the same checkpoint with lm_head tied to the embeddings (Qwen2.5-VL-3B style)
        model_dir = tmp_path / "tied"
        shutil.copytree(tiny_model, model_dir)
        config = json.loads((model_dir / "config.json").read_text())
        config["tie_word_embeddings"] = True
        (model_dir / "config.json").write_text(json.dumps(config))
        from safetensors.torch import load_file, save_file

        weights = load_file(model_dir / "model.safetensors")
        del weights["lm_head.weight"]
        save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    learner = Learner(model_dir, learner_config(micro_batch_size=7), grpo_config())
    learner.step(items)
    exported = _params(learner)
    assert ("lm_head.weight" in exported) is not tied  # a tied weight is sent once, under its first name
    family = get_family("qwen2_5_vl")
    engine = HFEngine(str(model_dir), family=family, processor=family.load_processor(model_dir), device="cpu")
    engine.load_weights(exported.items(), version=1)
    loaded = dict(engine.model.named_parameters())
    assert set(loaded) == set(exported)
    for name, tensor in exported.items():
        assert torch.equal(loaded[name], tensor), name
    if tied:
        assert torch.equal(engine.model.lm_head.weight, exported["model.language_model.embed_tokens.weight"])
