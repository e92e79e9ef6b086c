"""ZeRO-3 on two CPU ranks inside Ray Train (TorchTrainer, gloo) against one plain-torch rank.

One Ray Train run per module (_learner_helpers.zero3_worker_loop) records what each check needs:
the experience shares, the weights before/after a step, save_hf and checkpoint round trips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from _learner_helpers import EXPORT_BUCKET_BYTES, PPO_CONFIG, grpo_config, learner_config, make_items, ppo_order, zero3_worker_loop
from trainer.learner.learner import Learner
from trainer.learner.ray_train import make_trainer

pytestmark = pytest.mark.slow
HERE = Path(__file__).resolve().parent  # on the workers' PYTHONPATH: they import _learner_helpers


@pytest.fixture(scope="module")
def zero3_run(tiny_model, tmp_path_factory):
    import ray

    from infra.loopback import init_local_ray

    out = tmp_path_factory.mktemp("zero3")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    init_local_ray(num_cpus=4, include_dashboard=False, log_to_driver=False,
                   runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        cfg = learner_config(zero_stage=3, num_workers=2, max_failures=0)
        trainer = make_trainer(zero3_worker_loop, {"model_dir": str(tiny_model), "out": str(out), "kl_coef": 0.05},
                               cfg, storage_path=str(out / "ray"), name="zero3-test")
        trainer.fit()
    finally:
        ray.shutdown()
    return torch.load(out / "results.pt", weights_only=False), out


@pytest.fixture(scope="module")
def plain_step(tiny_model):
    """The same 7 items in ONE micro-batch on ONE rank without ZeRO."""
    learner = Learner(tiny_model, learner_config(zero_stage=0, micro_batch_size=7), grpo_config(kl_coef=0.05))
    metrics = learner.step(make_items(tiny_model))
    return metrics, learner.exported_state()


def test_two_zero3_ranks_step_like_one_plain_rank(zero3_run, plain_step):
    record, _ = zero3_run
    plain_metrics, plain_after = plain_step
    assert set(record["after"]) == set(plain_after)
    moved = max(float((plain_after[n] - record["before"][n]).abs().max()) for n in plain_after)
    assert moved > 1e-3  # the step did something measurable
    for name, expected in plain_after.items():
        torch.testing.assert_close(record["after"][name], expected, atol=2e-6, rtol=0, msg=name)
    for key in ("loss", "pg_loss", "tokens", "sequences", "clip_frac_high", "entropy"):
        assert record["metrics"][key] == pytest.approx(plain_metrics[key], rel=1e-5, abs=1e-7), key
    assert record["metrics"]["grad_norm"] == pytest.approx(plain_metrics["grad_norm"], rel=1e-5)


def test_ppo_mini_batches_over_two_zero3_ranks_step_like_one_plain_rank(zero3_run, tiny_model):
    """Each rank splits its share into the same number of mini-batches; mini-batch j is the union of
    the ranks' j-th parts, normalised by its global token count, so one plain rank given the items
    in that order (ppo_order) takes the same 8 optimizer steps."""
    record, _ = zero3_run
    plain = Learner(tiny_model, learner_config(zero_stage=0, micro_batch_size=2), PPO_CONFIG)
    metrics = plain.step(ppo_order(make_items(tiny_model)))
    assert record["ppo_metrics"]["optimizer_steps"] == metrics["optimizer_steps"] == 8
    assert metrics["clip_frac_high"] + metrics["clip_frac_low"] > 0  # the later updates were clipped
    for key in ("loss", "clip_frac_high", "clip_frac_low", "approx_kl_old", "tokens"):
        assert record["ppo_metrics"][key] == pytest.approx(metrics[key], rel=1e-4, abs=1e-6), key
    for name, expected in plain.exported_state().items():
        torch.testing.assert_close(record["ppo"][name], expected, atol=2e-5, rtol=0, msg=name)


def test_experience_is_split_into_equal_shares_with_a_padding_copy(zero3_run):
    shares = zero3_run[0]["shares"]
    # 7 items -> ranks get items 0-3 and 4-6; rank 1 is padded with a weightless copy of item 4
    assert shares[0] == [("a", 2, False), ("a", 3, False), ("a", 4, False), ("a", 5, False)]
    assert shares[1] == [("b", 6, False), ("b", 7, False), ("b", 8, False), ("b", 6, True)]
    assert zero3_run[0]["metrics"]["tokens"] == 35 and zero3_run[0]["metrics"]["sequences"] == 7


def test_parameters_are_partitioned_over_the_two_ranks(zero3_run):
    record = zero3_run[0]
    total, local = record["total_numel"], record["local_numel"]
    assert len(local) == 2 and all(abs(n - total / 2) <= 0.01 * total for n in local), (local, total)


def test_exported_weights_equal_the_gathered_parameters_and_the_checkpoint(zero3_run, tiny_model):
    from transformers import Qwen2_5_VLForConditionalGeneration

    record = zero3_run[0]
    for name, gathered in record["gathered"].items():
        assert torch.equal(record["before"][name], gathered), name
    original = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tiny_model)).state_dict()
    assert set(record["before"]) == set(original)  # the HF state_dict keys rollout engines load
    for name, tensor in original.items():
        assert torch.equal(record["before"][name], tensor), name


def test_weights_are_exported_one_gathered_bucket_at_a_time(zero3_run):
    record = zero3_run[0]
    buckets, parameters = record["export_buckets"], set(record["gathered"])
    sizes = [sum(t.numel() * t.element_size() for _, t in bucket["tensors"]) for bucket in buckets]
    assert len(buckets) > 3 and max(sizes) > EXPORT_BUCKET_BYTES  # several buckets, one a big tensor alone
    names = [name for bucket in buckets for name, _ in bucket["tensors"]]
    assert names == list(record["before"])  # every weight once, in export order
    for bucket, size in zip(buckets, sizes):
        tensors = bucket["tensors"]
        assert size <= EXPORT_BUCKET_BYTES or len(tensors) == 1, [n for n, _ in tensors]
        for name, tensor in tensors:
            assert torch.equal(tensor, record["before"][name]), name
        # while a bucket is held, exactly its own parameters are gathered, none of any other bucket
        assert bucket["gathered"] == {name for name, _ in tensors} & parameters


def test_every_parameter_changes_under_zero3(zero3_run):
    record = zero3_run[0]
    unchanged = [n for n in record["before"] if torch.equal(record["before"][n], record["after"][n])]
    assert not unchanged


def test_save_hf_reloads_to_the_exported_weights(zero3_run):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    record, out = zero3_run
    reloaded = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(out / "hf")).state_dict()
    assert set(reloaded) == set(record["after"])
    for name, tensor in reloaded.items():
        assert torch.equal(tensor, record["after"][name]), name
    assert AutoProcessor.from_pretrained(str(out / "hf")).tokenizer is not None


def test_checkpoint_restores_model_and_optimizer_state(zero3_run):
    record = zero3_run[0]
    assert record["client_state"] == {"step": 1}
    assert any(not torch.equal(record["second"][n], record["after"][n]) for n in record["after"])
    for name in record["after"]:
        assert torch.equal(record["reloaded"][name], record["after"][name]), name
        # the step after loading repeats the step after saving only if Adam's moments came back too
        torch.testing.assert_close(record["replayed"][name], record["second"][name], atol=1e-7, rtol=0, msg=name)
