"""The GRPO learner: one instance per rank (Ray Train worker, torchrun process, or a lone process).

Every rank calls the same methods in the same order (ZeRO-3 forwards, gathers and checkpoints are
collective). `step` reads top to bottom: global counts first, then micro-batches (forward, loss
share, backward), then one optimizer step and the metrics reduced over ranks.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch

from infra.errors import ConfigError
from rollout.weight_sync import Bucket, buckets
from trainer.grpo import GRPOConfig, LossNorm, aggregate, compute_advantages, kl_estimate, kl_reward_penalty, policy_loss
from trainer.learner.batch import MicroBatch, TrainItem, collate
from trainer.learner.config import LearnerConfig
from trainer.learner.distribute import all_gather_objects, all_reduce_max, all_reduce_sum, rank_and_world
from trainer.learner.engine import build_engine, copy_processor_files, hf_state_names, resolve_runtime

POLICY_METRICS = ("clip_frac_low", "clip_frac_high", "clip_frac_dual", "approx_kl_old", "ratio_mean", "entropy")
TOKEN_METRICS = (*POLICY_METRICS, "kl")  # token means: summed as mean x tokens, divided by the global tokens


class Learner:
    """Policy (and, when kl_coef > 0, a frozen reference) built from a Hugging Face checkpoint dir."""

    def __init__(self, model_dir: str | Path, cfg: LearnerConfig, grpo: GRPOConfig):
        self.model_dir, self.cfg, self.grpo = Path(model_dir), cfg, grpo
        if cfg.old_logprobs == "rollout" and grpo.temperature != 1.0:
            raise ConfigError(
                f"learner.old_logprobs=rollout needs grpo.temperature=1.0 (got {grpo.temperature}): rollout "
                f"engines report raw log-probs while the learner scores the tempered distribution; "
                f"use learner.old_logprobs=recompute")
        self.runtime = resolve_runtime(cfg)
        self.rank, self.world_size = rank_and_world()
        self.policy = build_engine(model_dir, cfg, self.runtime, grpo.temperature, train=True)
        self.reference = (build_engine(model_dir, cfg, self.runtime, grpo.temperature, train=False)
                          if grpo.uses_reference else None)
        config = self.policy.module.policy.config
        self._video_token_id = int(config.video_token_id)
        pad = config.get_text_config().pad_token_id
        self._pad_token_id = int(pad) if pad is not None else 0

    # ------------------------------------------------------------------ training
    def step(self, items: Sequence[TrainItem]) -> dict[str, float]:
        """One optimizer step on this rank's share of the step's items; metrics averaged over ranks.

        Loss normalisation is exact: the step's completion-token and sequence counts are all-reduced
        first and every micro-batch contributes sum(loss) / global count (see docs/learner.md).
        """
        device = self.runtime.device
        real = [it for it in items if not it.is_padding]
        if self.cfg.old_logprobs == "rollout" and any(len(it.completion.logprobs) != len(it.completion.token_ids)
                                                      for it in real):
            raise ValueError("learner.old_logprobs=rollout needs the engine's log-prob of every completion token")
        tokens, seqs = all_reduce_sum([sum(len(it.completion.token_ids) for it in real), len(real)], device)
        mbs = self.cfg.micro_batch_size
        chunks = [list(items[i:i + mbs]) for i in range(0, len(items), mbs)]
        n_micro = all_reduce_max(len(chunks), device)
        if tokens == 0:  # nothing to learn from on any rank: every rank skips together
            return {"skipped": 1.0, "tokens": 0.0, "sequences": seqs}
        if len(chunks) < n_micro:  # keep ZeRO-3 ranks in lockstep with weightless copies
            if not items:
                raise RuntimeError(f"rank {self.rank} got no items while other ranks did; "
                                   f"distribute the step with trainer.learner.scatter_items")
            chunks += [[dataclasses.replace(items[0], is_padding=True)]] * (n_micro - len(chunks))
        advantages = self._kl_shaped_advantages(chunks) if self._kl_in_reward else None
        norm = LossNorm(num_tokens=tokens, num_seqs=seqs, max_len=self.grpo.max_completion_length)

        names = ["loss", "pg_loss", *POLICY_METRICS] + (["kl_loss", "kl"] if self._kl_in_loss else [])
        sums = dict.fromkeys(names, 0.0)  # same keys on every rank: they are all-reduced in this order
        for i, chunk in enumerate(chunks):
            batch = self._collate(chunk)
            if advantages is not None:
                batch.advantages = advantages[i].to(device)
            logp, entropy = self.policy.forward(batch, with_entropy=True)
            old = logp.detach() if self.cfg.old_logprobs == "recompute" else batch.rollout_logprobs
            mask = batch.completion_mask
            per_token, metrics = policy_loss(logp, old, batch.advantages, mask, self.grpo.clip_ratio_low,
                                             self.grpo.clip_ratio_high, self.grpo.clip_ratio_c, entropy)
            loss = aggregate(per_token, mask, self.grpo.loss_agg, norm)
            sums["pg_loss"] += float(loss.detach())
            if self._kl_in_loss:
                kl = kl_estimate(logp, self._reference_logprobs(batch), self.grpo.kl_estimator)
                kl_loss = self.grpo.kl_coef * aggregate(kl, mask, self.grpo.loss_agg, norm)
                loss = loss + kl_loss
                sums["kl_loss"] += float(kl_loss.detach())
                sums["kl"] += float((kl.detach() * mask).sum())
            self.policy.backward(loss)
            sums["loss"] += float(loss.detach())
            count = float(mask.sum())
            for name, value in metrics.items():
                sums[name] += value * count  # token means -> token sums, exact over micro-batches
        grad_norm = self.policy.step()

        totals = dict(zip(names, all_reduce_sum([sums[n] for n in names], device)))
        out = {n: (v / tokens if n in TOKEN_METRICS else v) for n, v in totals.items()}
        out.update(grad_norm=grad_norm, tokens=tokens, sequences=seqs, micro_batches=float(n_micro),
                   lr=self.cfg.lr)
        return out

    @property
    def _kl_in_loss(self) -> bool:
        return self.reference is not None and self.grpo.kl_mode == "loss"

    @property
    def _kl_in_reward(self) -> bool:
        return self.reference is not None and self.grpo.kl_mode == "reward"

    def _collate(self, chunk: Sequence[TrainItem]) -> MicroBatch:
        return collate(chunk, self._pad_token_id, self._video_token_id).to(self.runtime.device)

    def _reference_logprobs(self, batch: MicroBatch) -> torch.Tensor:
        with torch.no_grad():
            return self.reference.forward(batch)[0]

    def _kl_shaped_advantages(self, chunks: list[list[TrainItem]]) -> list[torch.Tensor]:
        """kl_mode=reward: advantages of (reward - kl_coef * sum_t KL_t), grouped over ALL ranks."""
        local: list[tuple[str, float]] = []
        for chunk in chunks:
            batch = self._collate(chunk)
            with torch.no_grad():
                old = (self.policy.forward(batch)[0] if self.cfg.old_logprobs == "recompute"
                       else batch.rollout_logprobs)
                penalty = kl_reward_penalty(old, self._reference_logprobs(batch), batch.completion_mask,
                                            self.grpo.kl_coef, self.grpo.kl_estimator)
            for item, pen in zip(chunk, penalty.tolist()):
                if item.is_padding:
                    continue
                if item.reward is None:
                    raise ValueError("grpo.kl_mode=reward needs TrainItem.reward on every item")
                local.append((item.completion.group_id, item.reward - pen))
        gathered = all_gather_objects(local)
        flat = [entry for part in gathered for entry in part]
        adv, _ = compute_advantages(torch.tensor([r for _, r in flat], dtype=torch.float64), [g for g, _ in flat],
                                    self.grpo.advantage_estimator, self.grpo.std_eps)
        offset = sum(len(part) for part in gathered[:self.rank])
        out = []
        for chunk in chunks:
            values = []
            for item in chunk:
                if item.is_padding:
                    values.append(0.0)
                else:
                    values.append(float(adv[offset]))
                    offset += 1
            out.append(torch.tensor(values, dtype=torch.float32))
        return out

    # ------------------------------------------------------------------ weights out
    def export_weights(self, bucket_bytes: int = 0) -> Iterator[Bucket]:
        """Buckets of (HF state_dict key, full tensor), each at most `bucket_bytes` (a larger tensor
        alone; 0: one tensor per bucket); yields on rank 0 only.

        EVERY rank must iterate this generator to the end (the gathers are collective); only rank 0
        receives buckets. A bucket's tensors are the gathered parameters themselves, valid until the
        next bucket is asked for: copy what you keep. Only one bucket is gathered at a time.
        """
        policy = self.policy.module.policy
        for bucket in buckets(hf_state_names(policy), bucket_bytes):
            params = [t for _, t in bucket if isinstance(t, torch.nn.Parameter)]
            with self.policy.gathered(params):
                if self.rank == 0:
                    yield [(name, tensor.detach()) for name, tensor in bucket]

    def exported_state(self) -> dict[str, torch.Tensor]:
        """All weights as one CPU state dict on rank 0 (a full copy; empty elsewhere). All ranks call it."""
        return {name: tensor.to("cpu", copy=True) for bucket in self.export_weights() for name, tensor in bucket}

    def save_hf(self, directory: str | Path) -> None:
        """A consolidated Hugging Face checkpoint (weights, config, processor files) written by rank 0.

        All ranks must call it. Rank 0 holds one full CPU copy of the weights while writing.
        """
        directory = Path(directory)
        state = self.exported_state()
        if self.rank == 0:
            directory.mkdir(parents=True, exist_ok=True)
            self.policy.module.policy.save_pretrained(directory, state_dict=state)
            copy_processor_files(self.model_dir, directory)
        self._barrier()

    # ------------------------------------------------------------------ checkpoints
    def save(self, directory: str | Path, client_state: Optional[dict] = None) -> None:
        """Model + optimizer state into a local directory, every rank its own ZeRO-3 shards (the
        whole directory must be uploaded from every node). All ranks must call it."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.policy.save(directory, dict(client_state or {}))
        self._barrier()

    def load(self, directory: str | Path) -> dict:
        """Restore what `save` wrote; returns its client_state. All ranks must call it."""
        state = self.policy.load(Path(directory))
        self._barrier()
        return state

    def any_rank(self, flag: bool) -> bool:
        """True on every rank when `flag` is true on any (e.g. rank 0's verdict that a push failed)."""
        return bool(all_reduce_max(int(flag), self.runtime.device))

    def _barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
