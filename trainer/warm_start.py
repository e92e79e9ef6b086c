"""The warm start of `stvg train` (warm_start.steps > 0): a short SFT stage, then GRPO from it.

A model from random weights answers nothing parseable, so every GRPO group has equal (zero)
rewards and nothing is learned. The warm start trains it on ground-truth answers first, exactly as
`stvg sft` would (trainer.sft: the same learner stack, checkpoints and MLflow), in a run of its own
named `<name>-warm-start` under `<output_dir>/warm-start`; the GRPO run then starts from that
checkpoint (`model.path`). A warm start that already finished (a second `stvg train resume=auto`)
is reused, not run again.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from trainer.config import RunConfig


def warm_start_config(cfg: RunConfig) -> RunConfig:
    """The SFT stage's config: the run's data, model, prompts and learner shape, with the warm
    start's steps, batch and learning rate, its own folder and MLflow run, one final checkpoint."""
    ws = cfg.warm_start
    name = f"{cfg.name}-warm-start"
    # beside the run's checkpoints (a local folder or s3://...), so that it outlives the run's scratch
    uri = f"{(cfg.checkpoint.uri or str(cfg.run_dir / 'checkpoints')).rstrip('/')}-warm-start"
    return dataclasses.replace(
        cfg, name=name, output_dir=str(Path(cfg.run_dir) / "warm-start"), total_steps=ws.steps,
        prompts_per_step=ws.prompts_per_step, resume="auto", log_every_n_steps=max(ws.steps // 5, 1),
        learner=dataclasses.replace(cfg.learner, lr=ws.lr),
        checkpoint=dataclasses.replace(cfg.checkpoint, uri=uri, every_n_steps=0, keep_last=1),
        eval=dataclasses.replace(cfg.eval, every_n_steps=0, at_end=False, at_start=False),
        tracking=dataclasses.replace(cfg.tracking, run_name=name), warm_start=dataclasses.replace(ws, steps=0))


def warm_start(cfg: RunConfig) -> RunConfig:
    """Run (or reuse) the warm start of `cfg`; return `cfg` starting from its checkpoint."""
    from trainer.job import run_training
    from trainer.sft import sft_loop

    sft = warm_start_config(cfg)
    latest = sft.checkpoint.open().latest()
    if latest is not None and latest.step >= sft.total_steps:
        uri = latest.uri
        print(f"warm start: reusing {uri}", flush=True)
    else:
        # the embedded demo turns it on: a user who brings a trained model.path needs to know the way out
        print(f"warm start: {sft.total_steps} SFT steps on ground-truth answers before GRPO "
              f"(warm_start.steps=0 skips it)", flush=True)
        uri = run_training(sft, loop=sft_loop).checkpoint_uri
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, path=uri),
                               warm_start=dataclasses.replace(cfg.warm_start, steps=0))
