"""The GRPO learner: one instance per rank (Ray Train worker, torchrun process, or a lone process).

Every rank calls the same methods in the same order (ZeRO-3 forwards, gathers and checkpoints are
collective). `step` reads top to bottom: global counts, mini-batches, pi_old fixed before the first
update, then for each epoch and mini-batch: micro-batches (forward, loss share, backward) and one
optimizer step; metrics reduced over ranks last.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch

from rollout.weight_sync import Bucket, buckets
from trainer.grpo import GRPOConfig, LossNorm, aggregate, compute_advantages, kl_estimate, kl_reward_penalty, policy_loss
from trainer.learner.batch import MicroBatch, TrainItem, collate
from trainer.learner.config import LearnerConfig
from trainer.learner.distribute import (all_gather_objects, all_reduce_max, all_reduce_sum, rank_and_world,
                                        split_contiguous)
from trainer.learner.engine import build_engine, copy_processor_files, hf_state_names, resolve_runtime

POLICY_METRICS = ("clip_frac_low", "clip_frac_high", "clip_frac_dual", "approx_kl_old", "ratio_mean", "entropy")
TOKEN_METRICS = (*POLICY_METRICS, "kl")  # token means: summed as mean x tokens, divided by the global tokens


@dataclass
class _Row:
    """One item of this rank's share as a mini-batch holds it."""

    item: TrainItem
    old: Optional[torch.Tensor] = None
    """pi_old of each completion token, fixed before the first update (None: the forward's own
    log-prob, detached, which is pi_old when the step makes a single update)."""


class Learner:
    """Policy (and, when kl_coef > 0, a frozen reference) built from a Hugging Face checkpoint dir."""

    def __init__(self, model_dir: str | Path, cfg: LearnerConfig, grpo: GRPOConfig):
        self.model_dir, self.cfg, self.grpo = Path(model_dir), cfg, grpo
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
        """One PPO update on this rank's share of the step's items; metrics over all ranks.

        The step's completions are split into mini-batches of grpo.ppo_mini_batch_size prompts'
        worth (x group_size completions; 0: one mini-batch), each rank splitting its own share the
        same way (verl's semantics); every epoch (grpo.ppo_epochs) walks them, one optimizer step
        each. pi_old is fixed before the first update, so later mini-batches and epochs see a ratio
        away from 1. Loss normalisation is exact per mini-batch: its completion-token and sequence
        counts are all-reduced first (docs/learner.md).
        """
        device = self.runtime.device
        real = [it for it in items if not it.is_padding]
        self._check_rollout_logprobs(real)
        tokens, seqs = all_reduce_sum([sum(len(it.completion.token_ids) for it in real), len(real)], device)
        if tokens == 0:  # nothing to learn from on any rank: every rank skips together
            return {"skipped": 1.0, "tokens": 0.0, "sequences": seqs}
        if not items:
            raise RuntimeError(f"rank {self.rank} got no items while other ranks did; "
                               f"distribute the step with trainer.learner.scatter_items")
        minis = split_contiguous(range(len(items)), self._num_mini_batches(seqs))
        updates = len(minis) * self.grpo.ppo_epochs
        rows = self._rows(items, fix_old=updates > 1)  # pi_old (and KL-shaped advantages) before any update

        names = ["loss", "pg_loss", *POLICY_METRICS] + (["kl_loss", "kl"] if self._kl_in_loss else [])
        sums = dict.fromkeys(names, 0.0)  # same keys on every rank: they are all-reduced in this order
        counts = {"tokens": 0.0, "micro_batches": 0.0, "optimizer_steps": 0.0, "grad_norm": 0.0}
        for _ in range(self.grpo.ppo_epochs):
            for mini in minis:
                self._update([rows[i] for i in mini], rows[0], sums, counts)

        totals = dict(zip(names, all_reduce_sum([sums[n] for n in names], device)))
        steps = max(counts["optimizer_steps"], 1.0)
        out = {n: v / counts["tokens"] if n in TOKEN_METRICS else v / steps for n, v in totals.items()}
        out.update(grad_norm=counts["grad_norm"] / steps, tokens=tokens, sequences=seqs,
                   micro_batches=counts["micro_batches"], optimizer_steps=counts["optimizer_steps"], lr=self.cfg.lr)
        return out

    def _update(self, rows: list[_Row], template: _Row, sums: dict[str, float], counts: dict[str, float]) -> None:
        """One optimizer step on a mini-batch (this rank's rows of it); adds to the metric sums."""
        device = self.runtime.device
        real = [r.item for r in rows if not r.item.is_padding]
        tokens, seqs = all_reduce_sum([sum(len(it.completion.token_ids) for it in real), len(real)], device)
        chunks = self._lockstep(rows, template)
        if tokens == 0:  # an empty mini-batch on every rank: no step
            return
        norm = LossNorm(num_tokens=tokens, num_seqs=seqs, max_len=self.grpo.max_completion_length)
        for chunk in chunks:
            batch = self._collate([r.item for r in chunk])
            logp, entropy = self.policy.forward(batch, with_entropy=True)
            old = logp.detach() if chunk[0].old is None else _padded([r.old for r in chunk], logp.shape, device)
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
        counts["grad_norm"] += self.policy.step()
        counts["tokens"] += tokens
        counts["micro_batches"] += len(chunks)
        counts["optimizer_steps"] += 1

    def _num_mini_batches(self, sequences: float) -> int:
        """ceil(completions of the step / (ppo_mini_batch_size x group_size)); 1 when the size is 0."""
        size = self.grpo.ppo_mini_batch_size * self.grpo.group_size
        return max(1, -(-int(sequences) // size)) if size > 0 else 1

    def _rows(self, items: Sequence[TrainItem], fix_old: bool) -> list[_Row]:
        """The share as rows holding pi_old: the engine's log-probs (old_logprobs=rollout), or the
        policy's own before any update when the step makes several updates or the KL shapes the
        rewards. With kl_mode=reward the advantages are recomputed here, from the shaped rewards."""
        recompute = self.cfg.old_logprobs == "recompute" and (fix_old or self._kl_in_reward)
        scores = (self._score(items, policy=recompute, reference=self._kl_in_reward)
                  if recompute or self._kl_in_reward else [(None, None)] * len(items))
        if self.cfg.old_logprobs == "rollout":
            rows = [_Row(it, torch.tensor(it.completion.logprobs, dtype=torch.float32)) for it in items]
        else:
            rows = [_Row(it, logp) for it, (logp, _) in zip(items, scores)]
        return self._kl_shaped(rows, [ref for _, ref in scores]) if self._kl_in_reward else rows

    def _check_rollout_logprobs(self, real: Sequence[TrainItem]) -> None:
        if self.cfg.old_logprobs != "rollout":
            return
        for it in real:
            if len(it.completion.logprobs) != len(it.completion.token_ids):
                raise ValueError(f"learner.old_logprobs=rollout needs the engine's log-prob of every completion token; "
                                 f"a completion of sample {it.prompt.sample_id!r} has {len(it.completion.token_ids)} "
                                 f"tokens and {len(it.completion.logprobs)} log-probs")

    def _lockstep(self, rows: list[_Row], template: _Row) -> list[list[_Row]]:
        """Micro-batches of `rows` in order, then weightless copies of `template` until every rank
        has as many (ZeRO-3 forwards are collective)."""
        mbs = self.cfg.micro_batch_size
        chunks = [rows[i:i + mbs] for i in range(0, len(rows), mbs)]
        n_micro = all_reduce_max(len(chunks), self.runtime.device)
        padding = _Row(dataclasses.replace(template.item, is_padding=True), template.old)
        return chunks + [[padding]] * (n_micro - len(chunks))

    def _score(self, items: Sequence[TrainItem], policy: bool, reference: bool) -> list[tuple]:
        """No-grad log-probs of each item's completion under the policy and/or the reference, in
        lockstep micro-batches: one ([n_tokens] or None, [n_tokens] or None) pair per item."""
        rows = [_Row(it) for it in items]
        out = []
        for chunk in self._lockstep(rows, rows[0]):
            batch = self._collate([r.item for r in chunk])
            with torch.no_grad():
                logp = self.policy.forward(batch)[0] if policy else None
                ref = self._reference_logprobs(batch) if reference else None
            for b, row in enumerate(chunk):
                n = len(row.item.completion.token_ids)
                out.append(tuple(None if t is None else t[b, :n] for t in (logp, ref)))
        return out[:len(items)]

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

    def _kl_shaped(self, rows: list[_Row], refs: list[torch.Tensor]) -> list[_Row]:
        """kl_mode=reward: advantages of (reward - kl_coef * sum_t KL(pi_old || ref)_t), grouped over
        ALL ranks; the items' own advantages are ignored."""
        local: list[tuple[str, float]] = []
        for row, ref in zip(rows, refs):
            if row.item.is_padding:
                continue
            if row.item.reward is None:
                raise ValueError("grpo.kl_mode=reward needs TrainItem.reward on every item")
            old = row.old.to(ref.device).unsqueeze(0)
            penalty = kl_reward_penalty(old, ref.unsqueeze(0), torch.ones_like(old), self.grpo.kl_coef,
                                        self.grpo.kl_estimator)
            local.append((row.item.completion.group_id, row.item.reward - float(penalty)))
        gathered = all_gather_objects(local)
        flat = [entry for part in gathered for entry in part]
        adv, _ = compute_advantages(torch.tensor([r for _, r in flat], dtype=torch.float64), [g for g, _ in flat],
                                    self.grpo.advantage_estimator, self.grpo.std_eps)
        offset = sum(len(part) for part in gathered[:self.rank])
        shaped = []
        for row in rows:
            if not row.item.is_padding:
                row = _Row(dataclasses.replace(row.item, advantage=float(adv[offset])), row.old)
                offset += 1
            shaped.append(row)
        return shaped

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


def _padded(rows: Sequence[torch.Tensor], shape: torch.Size, device: torch.device) -> torch.Tensor:
    """[B, T] float32 from one [n_b] tensor per row (zeros past each row's length)."""
    out = torch.zeros(shape, dtype=torch.float32, device=device)
    for b, values in enumerate(rows):
        out[b, :values.numel()] = values.to(device)
    return out
