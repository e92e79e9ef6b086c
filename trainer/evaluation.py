"""Evaluation on a held-out split: greedy answers from the rollout pool, scored with `stvg score`'s
metrics (TubeDETR protocol) plus the mean reward and format rate of the same answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from infra.data.sample import GroundingSample
from rewards import score_batch
from rewards.metrics import evaluate
from rewards.predictions import completion_to_prediction
from rollout.engines import SamplingConfig
from rollout.types import SkippedPrompt
from trainer.experience import targets_for


@dataclass
class EvalResult:
    metrics: dict[str, float]
    """Flat `eval/...` numbers for MLflow (percentages for the grounding metrics)."""
    predictions: list[dict[str, Any]]
    """One `stvg score` prediction object per answered query (unparseable answers are absent)."""
    completions: list[dict[str, Any]]
    """Every raw answer with its sample id, reward and terms, for inspection."""
    report: Any
    """The rewards.metrics.MetricsReport (per-query rows, printable table)."""
    skipped: list[SkippedPrompt] = field(default_factory=list)
    """Samples left out because their video could not be used (skip_bad_videos); not scored."""


def dataset_kind(source: str) -> str:
    return "synthetic" if source == "synthetic" else source


def run_evaluation(pool, samples: Sequence[GroundingSample], *, task: str, source: str, max_new_tokens: int,
                   temperature: float = 0.0, seed: int = 0, skip_bad_videos: bool = False) -> EvalResult:
    """Greedy (by default) answers to `samples`, scored. With `skip_bad_videos`, samples whose video
    cannot be used are left out of the scores and counted (eval/bad_video_skips); else they raise."""
    sampling = SamplingConfig(temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
    batch = pool.generate(list(samples), 1, sampling, task=task, skip_bad_videos=skip_bad_videos)
    left_out = {s.sample_id for s in batch.skipped}
    samples = [s for s in samples if s.id not in left_out]
    targets = targets_for(batch, samples, task)
    texts = [c.text for c in batch.completions]
    rewards = score_batch(task, texts, [targets[c.prompt_index] for c in batch.completions])
    by_id = {s.id: s for s in samples}
    predictions, completions = [], []
    for completion, reward in zip(batch.completions, rewards):
        prompt = batch.prompts[completion.prompt_index]
        sample = by_id[prompt.sample_id]
        prediction = completion_to_prediction(task, completion.text, sample.id, prompt.scale_to_original,
                                              tracks=sample.tracks, fps=sample.fps)
        if prediction is not None:
            predictions.append(prediction)
        completions.append({"id": sample.id, "completion": completion.text, "reward": reward.total,
                            **reward.terms})
    report = evaluate(samples, predictions, dataset_kind(source))
    metrics = {f"eval/{name}": value for name, value in report.aggregates["all"].items()}
    metrics["eval/reward_mean"] = sum(r.total for r in rewards) / max(len(rewards), 1)
    metrics["eval/parsed_frac"] = sum(r.parsed for r in rewards) / max(len(rewards), 1)
    metrics["eval/bad_video_skips"] = float(len(batch.skipped))
    return EvalResult(metrics, predictions, completions, report, batch.skipped)
