"""`stvg eval`: run a checkpoint (or the initial model) over a split and score it.

Writes `predictions.jsonl` in the `stvg score` format (seconds, original-video pixels), the raw
answers with their rewards, and `metrics.json`; prints the metrics table. With a zero-shot strategy
(`decompose`, `assemble`: trainer.zero_shot_eval) several answers per sample are combined into one
prediction; `completions.jsonl` then lists every answer with its role and view.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

from infra.errors import UserError, VideoError
from trainer.bad_videos import BadVideoLog
from trainer.bad_videos import hint as bad_video_hint
from trainer.config import RunConfig
from trainer.preparation import prepare_data, resolve_model, resolve_paths
from trainer.reachability import check_reachable


def run_eval(cfg: RunConfig, checkpoint: Optional[str], split: str, out_dir: Optional[str], *,
             decompose: str = "none", assemble: str = "none") -> Path:
    from rollout.pool import RolloutPool
    from trainer.evaluation import run_evaluation
    from trainer.job import start_ray
    from trainer.zero_shot_eval import run_zero_shot_evaluation

    if checkpoint:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, path=checkpoint))
    cfg = resolve_paths(cfg)
    model = resolve_model(cfg, option="--checkpoint" if checkpoint else "model.path")
    train, heldout = prepare_data(cfg)
    samples = {"heldout": heldout, "train": train}[split]
    if cfg.eval.max_samples:
        samples = samples[: cfg.eval.max_samples]
    if not samples:
        raise UserError(f"the {split} split is empty (set data.heldout_annotations or data.synthetic_heldout_videos)")
    check_reachable(cfg, model, samples)
    out = Path(out_dir) if out_dir else cfg.run_dir / "eval" / split
    started = start_ray(cfg)
    try:
        pool = RolloutPool(model, cfg.rollout)
        try:
            common = dict(task=cfg.task, source=cfg.data.source, max_new_tokens=cfg.rollout.max_new_tokens,
                          temperature=cfg.eval.temperature, seed=cfg.seed)
            common["skip_bad_videos"] = cfg.data.on_bad_video == "skip"
            if decompose == "none" and assemble == "none":
                result = run_evaluation(pool, samples, **common)
            else:
                result = run_zero_shot_evaluation(pool, samples, decompose=decompose, assemble=assemble, **common)
            BadVideoLog(print).note(result.skipped)
        finally:
            pool.shutdown()
    except VideoError as err:
        raise err.with_hint(bad_video_hint(cfg.data.on_bad_video)) from None
    finally:
        if started:
            import ray

            ray.shutdown()
    if len(result.skipped) == len(samples):
        raise UserError(f"none of the {len(samples)} {split} samples could be evaluated: every video was left out "
                        "(warnings above); check them with `stvg data inspect`")
    out.mkdir(parents=True, exist_ok=True)  # only now: a failed evaluation leaves no empty folder
    _write_jsonl(out / "predictions.jsonl", result.predictions)
    _write_jsonl(out / "completions.jsonl", result.completions)
    strategy = {"decompose": decompose, "assemble": assemble}
    scored = len(samples) - len(result.skipped)
    (out / "metrics.json").write_text(json.dumps({"model": model.describe(), "split": split, "samples": scored,
                                                  "left_out_bad_videos": len(result.skipped),
                                                  "strategy": strategy, "metrics": result.metrics,
                                                  **result.report.to_dict()}, indent=1))
    print(result.report.table())
    reward = result.metrics.get("eval/reward_mean")
    print((f"reward {reward:.3f}, " if reward is not None else f"decompose {decompose}, assemble {assemble}: ")
          + f"parsed {100 * result.metrics['eval/parsed_frac']:.0f}% over {scored} {split} samples"
          + (f" ({len(result.skipped)} left out: their videos cannot be used)" if result.skipped else ""))
    print(f"wrote {out}/predictions.jsonl, completions.jsonl, metrics.json")
    return out


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
