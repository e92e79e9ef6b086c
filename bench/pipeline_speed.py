"""Benchmark: one-step-off async GRPO against sync GRPO, same steps, side by side in this run.

Runs `stvg train` (trainer.job.run_training: local Ray, one ZeRO-3 learner rank, one HF rollout
actor, in-process rewards) twice with the same config, `mode=sync` then `mode=async`, and reads
each step's times back from MLflow. With rollout time T_r and learning time T_l per step (from the
sync run's time/rollout_s and time/learn_s), a perfect overlap turns a sync step of T_r + T_l into
an async step of max(T_r, T_l), so the ideal ratio async / sync is max(T_r, T_l) / (T_r + T_l).
The defaults make the two of similar size on the tiny model (64 new tokens for 4 x 4 completions
against their forward and backward, about 0.6 s each).

Target: the measured ratio is within 15 % of the ideal (ratio <= 1.15 x ideal). On 2 cores the
rollout actor and the learner each get one thread (STVG_TORCH_THREADS=1) and must share the
machine with everything else on it, so the overlap is only as good as the idle core allows.

    .venv/bin/python bench/pipeline_speed.py [--steps 10] [--prompts 4] [--quick] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_SLACK = 1.15


def run_mode(mode: str, workdir: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Train `args.steps` steps in `mode`; per-step times (warm-up step dropped) from MLflow."""
    from mlflow.tracking import MlflowClient

    from trainer.config import load_run_config
    from trainer.job import run_training
    from trainer.presets import resolve

    overrides = [
        f"name=pipeline-{mode}", f"mode={mode}", f"total_steps={args.steps}", f"prompts_per_step={args.prompts}",
        f"output_dir={workdir / mode}", f"model.cache_dir={args.cache_dir}", "quiet=true",
        f"tracking.tracking_uri=sqlite:///{workdir}/mlflow.db", "tracking.num_images=0",
        "data.synthetic_train_videos=8", "data.synthetic_heldout_videos=0", "eval.at_end=false",
        f"rollout.max_new_tokens={args.max_new_tokens}", f"grpo.group_size={args.group_size}",
        "grpo.filter_zero_variance=false", "grpo.kl_coef=0.0", f"learner.micro_batch_size={args.micro_batch}",
        "checkpoint.every_n_steps=0", "checkpoint.export_hf=false",
    ]
    cfg = load_run_config(resolve(None), overrides)
    started = time.perf_counter()
    summary = run_training(cfg)
    wall = time.perf_counter() - started
    client = MlflowClient(tracking_uri=summary.tracking_uri)
    out: dict[str, list[float]] = {"wall_s": [wall]}
    for key in ("time/step_s", "time/rollout_s", "time/learn_s", "time/sync_s", "time/reward_s"):
        history = sorted(client.get_metric_history(summary.run_id, key), key=lambda m: m.step)
        out[key] = [m.value for m in history if m.step > 1]  # step 1 warms up (and async has no prefetch)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="GRPO steps per mode (the first is not counted)")
    parser.add_argument("--quick", action="store_true", help="4 steps per mode")
    parser.add_argument("--prompts", type=int, default=4, help="prompts per step (fewer make steps so short that "
                        "per-step fixed costs weigh more; bench/README.md has the figures)")
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--cache-dir", default="runs/cache", help="tiny model and synthetic videos cache")
    args = parser.parse_args()
    if args.quick:
        args.steps = 4
    if args.steps < 3:
        parser.error("--steps must be >= 3 (the first step is a warm-up)")

    with tempfile.TemporaryDirectory(prefix="stvg-pipeline-") as tmp:
        runs = {mode: run_mode(mode, Path(tmp), args) for mode in ("sync", "async")}
    med = {mode: {k: statistics.median(v) for k, v in run.items() if v} for mode, run in runs.items()}
    t_rollout, t_learn = med["sync"]["time/rollout_s"], med["sync"]["time/learn_s"]
    ideal = max(t_rollout, t_learn) / (t_rollout + t_learn)
    ratio = med["async"]["time/step_s"] / med["sync"]["time/step_s"]
    over_ideal = ratio / ideal
    met = over_ideal <= TARGET_SLACK

    print(f"GRPO, tiny model, {args.prompts} prompts x {args.group_size} completions, {args.max_new_tokens} new "
          f"tokens, {args.steps} steps per mode (medians of steps 2..{args.steps})")
    print(f"{'mode':>6} {'step s':>8} {'rollout s':>10} {'learn s':>8} {'sync s':>7} {'wall s':>7}")
    for mode in ("sync", "async"):
        m = med[mode]
        print(f"{mode:>6} {m['time/step_s']:>8.2f} {m['time/rollout_s']:>10.2f} {m['time/learn_s']:>8.2f} "
              f"{m.get('time/sync_s', 0):>7.2f} {m['wall_s']:>7.1f}")
    print(f"sync: T_rollout {t_rollout:.2f} s, T_learn {t_learn:.2f} s -> ideal async/sync "
          f"max/(sum) = {ideal:.2f}")
    print(f"measured async/sync step time: {ratio:.2f}  ({over_ideal:.2f}x the ideal; target <= "
          f"{TARGET_SLACK:.2f}x: {'met' if met else 'NOT met'})")
    figure = (f"async/sync {ratio:.2f} against the ideal {ideal:.2f} ({over_ideal:.2f}x; sync step "
              f"{med['sync']['time/step_s']:.2f} s = rollout {t_rollout:.2f} + learn {t_learn:.2f}, async "
              f"{med['async']['time/step_s']:.2f} s)")
    print("RESULT " + json.dumps({"bench": "pipeline_speed", "value": round(over_ideal, 3), "unit": "x ideal",
                                  "figure": figure, "ratio": round(ratio, 3), "ideal": round(ideal, 3),
                                  "ratio_over_ideal": round(over_ideal, 3), "target": f"<= {TARGET_SLACK} x ideal",
                                  "met": met, "sync_step_s": round(med["sync"]["time/step_s"], 3),
                                  "async_step_s": round(med["async"]["time/step_s"], 3),
                                  "t_rollout_s": round(t_rollout, 3), "t_learn_s": round(t_learn, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
