"""Deterministic training items for a tiny Qwen2.5-VL checkpoint, and the Ray Train worker loop of
the ZeRO-3 tests. Imported by the tests AND by Ray workers (tests/trainer is on their PYTHONPATH)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from rollout.types import Completion, PromptInputs
from trainer.grpo import GRPOConfig
from trainer.learner import LearnerConfig, TrainItem

FIRST_TEXT_ID = 20  # the tiny tokenizer's special tokens come first; stay clear of them
ADVANTAGES = (1.0, -0.5, 0.75, -1.25, 0.5, -1.0, 1.5)


def prompt_inputs(model_dir, sample_id: str, n_text: int, grid: tuple[int, int, int], seed: int,
                  seconds_per_grid: float = 1.0) -> PromptInputs:
    """A prompt with random text ids around a video block and random pixels of a consistent grid."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    vocab = config["text_config"]["vocab_size"]
    gen = torch.Generator().manual_seed(seed)
    t, h, w = grid
    video_tokens = t * h * w // 4  # spatial merge 2 x 2
    ids = torch.cat([
        torch.randint(FIRST_TEXT_ID, vocab, (n_text,), generator=gen),
        torch.tensor([config["vision_start_token_id"]]),
        torch.full((video_tokens,), config["video_token_id"]),
        torch.tensor([config["vision_end_token_id"]]),
        torch.randint(FIRST_TEXT_ID, vocab, (4,), generator=gen),
    ])
    return PromptInputs(
        sample_id=sample_id, input_ids=ids, pixel_values_videos=torch.randn(t * h * w, 3 * 2 * 14 * 14, generator=gen),
        video_grid_thw=torch.tensor([[t, h, w]]), second_per_grid_ts=seconds_per_grid,
        frame_timestamps=[seconds_per_grid / 2 * i for i in range(2 * t)], frame_size=(w * 14, h * 14),
        scale_to_original=(1.0, 1.0), extra={"video_token_id": config["video_token_id"]})


def make_items(model_dir, rollout_logprob: float = -2.0) -> list[TrainItem]:
    """7 items: 4 completions of prompt "a" (grid 2x4x4) then 3 of prompt "b" (grid 2x4x6, longer
    text, other time spacing); completion lengths 2..8, nonzero advantages."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    vocab = config["text_config"]["vocab_size"]
    prompts = [prompt_inputs(model_dir, "a", 5, (2, 4, 4), seed=1, seconds_per_grid=1.0),
               prompt_inputs(model_dir, "b", 11, (2, 4, 6), seed=2, seconds_per_grid=0.5)]
    gen = torch.Generator().manual_seed(3)
    items = []
    for k, advantage in enumerate(ADVANTAGES):
        p = 0 if k < 4 else 1
        n = 2 + k
        tokens = torch.randint(FIRST_TEXT_ID, vocab, (n,), generator=gen).tolist()
        completion = Completion(prompt_index=p, group_id=prompts[p].sample_id, token_ids=tokens, text="",
                                logprobs=[rollout_logprob] * n, finish_reason="stop", policy_version=0)
        items.append(TrainItem(prompts[p], completion, advantage=advantage, reward=float(k % 3)))
    return items


def ppo_order(items: list) -> list:
    """The 7 items in the order one rank must see them to get the mini-batches two ranks make with
    PPO_CONFIG: rank shares a2 a3 a4 a5 | b6 b7 b8 pad, each split in 4 -> {a2 b6} {a3 b7} {a4 b8} {a5}."""
    return [items[i] for i in (0, 4, 1, 5, 2, 6, 3)]


def learner_config(**overrides) -> LearnerConfig:
    """Settings that make ZeRO-3 and plain runs comparable to ~1e-6: Adam's eps large enough that
    near-zero gradient entries cannot flip the sign of their update."""
    base = dict(zero_stage=0, micro_batch_size=1, lr=1e-2, adam_eps=1e-3, weight_decay=1e-2, max_grad_norm=1.0)
    base.update(overrides)
    return LearnerConfig(**base)


def grpo_config(**overrides) -> GRPOConfig:
    base = dict(kl_coef=0.0, max_completion_length=16)
    base.update(overrides)
    return GRPOConfig(**base)


# mini-batches of 1 prompt x 2 completions: ceil(7 / 2) = 4 of them; small clip so that it acts
PPO_CONFIG = grpo_config(group_size=2, ppo_mini_batch_size=1, ppo_epochs=2, clip_ratio_low=0.05, clip_ratio_high=0.05)
EXPORT_BUCKET_BYTES = 2**16  # 64 KiB: the tiny model's export takes many buckets, its embedding one alone


def zero3_worker_loop(config: dict) -> None:
    """Every rank: take its share, step, export, save, step again, load, step again; rank 0 records."""
    import deepspeed
    import ray.train

    from trainer.learner import scatter_items
    from trainer.learner.distribute import all_gather_objects
    from trainer.learner.learner import Learner

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    out = Path(config["out"])
    share = scatter_items(make_items(config["model_dir"]) if rank == 0 else None, rank, world)
    learner = Learner(config["model_dir"], learner_config(zero_stage=3, micro_batch_size=1),
                      grpo_config(kl_coef=config["kl_coef"]))
    record = {"shares": all_gather_objects([(it.prompt.sample_id, len(it.completion.token_ids), it.is_padding)
                                             for it in share])}
    policy = learner.policy.module.policy
    local = sum(p.ds_tensor.numel() for p in policy.parameters())
    record["local_numel"] = all_gather_objects(local)
    record["total_numel"] = sum(p.ds_numel for p in policy.parameters())
    params = list(policy.named_parameters())
    with deepspeed.zero.GatheredParameters([p for _, p in params]):
        gathered = {name: p.detach().clone() for name, p in params}
    record["gathered"] = gathered if rank == 0 else None
    record["before"] = learner.exported_state()
    record["export_buckets"] = _export_buckets(learner, policy, rank)
    record["metrics"] = learner.step(share)
    record["after"] = learner.exported_state()
    learner.save_hf(out / "hf")
    learner.save(out / "ckpt", {"step": 1})
    record["metrics_second"] = learner.step(share)
    record["second"] = learner.exported_state()
    record["client_state"] = learner.load(out / "ckpt")
    record["reloaded"] = learner.exported_state()
    learner.step(share)
    record["replayed"] = learner.exported_state()
    del learner  # a fresh learner for PPO: 4 mini-batches x 2 epochs, each rank splitting its own share
    ppo = Learner(config["model_dir"], learner_config(zero_stage=3, micro_batch_size=1), PPO_CONFIG)
    record["ppo_metrics"] = ppo.step(share)
    record["ppo"] = ppo.exported_state()
    if rank == 0:
        torch.save(record, out / "results.pt")
    ray.train.report({"rank": rank})


def _export_buckets(learner, policy, rank: int) -> list[dict]:
    """On rank 0, per bucket of export_weights(EXPORT_BUCKET_BYTES): its tensors (copies) and which
    of the policy's parameters are gathered (ZeRO-3 status AVAILABLE) while it is held."""
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    seen = []
    for bucket in learner.export_weights(EXPORT_BUCKET_BYTES):
        gathered = {n for n, p in policy.named_parameters() if p.ds_status == ZeroParamStatus.AVAILABLE}
        seen.append({"tensors": [(name, t.detach().clone()) for name, t in bucket], "gathered": gathered})
    assert seen or rank != 0
    return seen


def hf_reference_logprobs(model, item, temperature=1.0, grad=False) -> torch.Tensor:
    """One unpadded row through the stock HF forward (full logits), log-softmax written out; in
    float64 without gradient, or (grad=True) in float32 with it."""
    prompt, tokens = item.prompt, item.completion.token_ids
    ids = torch.cat([prompt.input_ids, torch.tensor(tokens)]).unsqueeze(0)
    types = torch.zeros_like(ids, dtype=torch.int32)
    types[0, : prompt.input_ids.numel()] = (prompt.input_ids == model.config.video_token_id).int() * 2
    with torch.set_grad_enabled(grad):
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), mm_token_type_ids=types,
                       pixel_values_videos=prompt.pixel_values_videos, video_grid_thw=prompt.video_grid_thw,
                       second_per_grid_ts=torch.tensor([prompt.second_per_grid_ts])).logits[0]
        logits = logits.float() if grad else logits.double()
        steps = logits[prompt.input_ids.numel() - 1: prompt.input_ids.numel() - 1 + len(tokens)] / temperature
        return steps[torch.arange(len(tokens)), torch.tensor(tokens)] - torch.logsumexp(steps, dim=-1)
