"""Benchmark: proof that it learns. SFT warm start, then GRPO, on synthetic videos, on a CPU.

    1. data:  synthetic train / held-out videos (one moving shape each, 20 s, 112x112; see below)
    2. SFT:   `stvg sft learning-sft` (trainer.sft.run_sft), stopped early
    3. eval:  the SFT checkpoint, greedy, on the held-out split ("before")
    4. GRPO:  `stvg train learning-grpo model.path=<SFT checkpoint>` (trainer.job.run_training)
    5. eval:  the GRPO checkpoint, same samples, same protocol ("after")
    6. print the before/after table (format rate, mean reward and each term, m_tIoU, m_vIoU) and
       whether each target is met; the reward curve goes to a PNG and, with the before/after
       figures, into the GRPO run in MLflow.

Targets (2 CPU cores, 30 minutes in all): after SFT the format rate is above 90 %; GRPO raises the
held-out m_tIoU by at least 5 points and the mean reward by at least 10 % over the SFT checkpoint.

The task is the smallest the tiny random model (1 M parameters) learns in minutes, found by trial
(docs/learning-run.md): VTG answers (`<think></think><answer>s to e</answer>`), one moving shape per
video (no distractors), shapes 25-35 % of the frame, 8 frames at 112 px (64 video tokens per prompt).
Evaluations are greedy on fixed held-out samples (256 by default), so before and after see the same
prompts.

    .venv/bin/python bench/learning_run.py [--quick] [--workdir runs/learning-run]
                                            [--sft-steps N] [--grpo-steps N] [--eval-samples 256]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_FORMAT = 0.90
TARGET_TIOU_POINTS = 5.0
TARGET_REWARD_GAIN = 0.10
TARGET_MINUTES = 30.0


# ---- data: one moving shape per video -----------------------------------------------------------

def make_split(out: Path, name: str, count: int, seed: int, *, size: int, fps: float) -> Path:
    """`count` videos into out/videos and their HC-STVG v2 annotations into out/<name>.json.

    Scenes are those of infra.data.synth with a single object (the target, no distractors) whose
    side is 25-35 % of the frame; the query names it ("the red square moving left")."""
    import numpy as np

    from infra.data.shapes import DIRECTIONS, PALETTE, SHAPES, MovingObject, background
    from infra.data.synth import Scene, _path, check_settings, render
    from infra.data.tracks import dump_by_key

    annotations_path, settings_path = out / f"{name}.json", out / f"{name}.settings.json"
    settings = {"count": count, "seed": seed, "size": size, "fps": fps, "objects": 1}
    if annotations_path.is_file() and settings_path.is_file() and json.loads(settings_path.read_text()) == settings:
        return annotations_path
    frames = check_settings(size, size, fps, count)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    annotations = {}
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        length = max(2, int(round(rng.uniform(0.2, 0.6) * frames)))
        first = int(rng.integers(0, frames - length + 1))
        side = rng.uniform(0.25, 0.35) * size
        direction = str(rng.choice(list(DIRECTIONS)))
        start, end = _path(rng, direction, side, size, size)
        target = MovingObject(1, str(rng.choice(list(PALETTE))), str(rng.choice(SHAPES)), direction, side,
                              (first, first + length), start, end)
        video = f"learn-s{seed}-{i:05d}.mp4"
        boxes = render(out / "videos" / video, Scene((target,), frames), size, size, fps,
                       background(rng, size, size))[1]
        annotations[video] = {
            "bbox": [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in (boxes[f] for f in range(first, first + length))],
            "st_time": round(first / fps, 6), "ed_time": round((first + length) / fps, 6), "img_num": frames,
            "img_size": [size, size], "st_frame": first, "English": target.describe(),
        }
    annotations_path.write_text(dump_by_key(annotations), encoding="utf-8")
    settings_path.write_text(json.dumps(settings))
    return annotations_path


def make_data(data: Path, train_videos: int, heldout_videos: int) -> None:
    """Both splits, videos side by side in data/videos (their names carry the split's seed)."""
    make_split(data, "train", train_videos, 1, size=112, fps=5.0)
    make_split(data, "heldout", heldout_videos, 1001, size=112, fps=5.0)


# ---- evaluation of a checkpoint --------------------------------------------------------------------

def evaluate_checkpoint(uri: str, cfg, samples, workers: int) -> dict[str, float]:
    """Greedy answers of the checkpoint's hf/ model from a fresh rollout pool, scored as in training
    (trainer.evaluation), plus each reward term's mean (eval/term/<name>)."""
    from rollout.pool import RolloutPool
    from trainer.evaluation import run_evaluation
    from rollout.models.source import checkpoint_model
    from trainer.sft import term_means

    model_dir = checkpoint_model(uri, Path(cfg.model.cache_dir))
    pool = RolloutPool(str(model_dir), dataclasses.replace(cfg.rollout, num_workers=workers))
    try:
        result = run_evaluation(pool, samples, task=cfg.task, source=cfg.data.source,
                                max_new_tokens=cfg.rollout.max_new_tokens, temperature=0.0, seed=cfg.seed)
    finally:
        pool.shutdown()
    return {**result.metrics, **term_means(result.completions, cfg.task)}


def with_ray(fn, *args):
    """Run fn in a local Ray session (the stvg jobs start their own)."""
    import ray

    from infra.loopback import init_local_ray

    init_local_ray(num_cpus=max(os.cpu_count() or 1, 2), include_dashboard=False, log_to_driver=False,
                   runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}})
    try:
        return fn(*args)
    finally:
        ray.shutdown()


# ---- the run -----------------------------------------------------------------------------------------

def configs(args: argparse.Namespace, data: Path, workdir: Path):
    from trainer.config import load_run_config
    from trainer.presets import resolve

    shared = [f"model.cache_dir={workdir / 'cache'}", f"tracking.tracking_uri=sqlite:///{workdir}/mlruns/mlflow.db",
              f"data.train_annotations={data / 'train.json'}", f"data.heldout_annotations={data / 'heldout.json'}",
              f"data.video_root={data / 'videos'}", f"eval.max_samples={args.eval_samples}", "quiet=true",
              "eval.at_end=false"]  # the bench evaluates both checkpoints itself, the same way
    sft = load_run_config(resolve("learning-sft"), [*shared, f"output_dir={workdir / 'sft'}",
                                                    f"total_steps={args.sft_steps}"])
    grpo_overrides = [*shared, f"output_dir={workdir / 'grpo'}", f"total_steps={args.grpo_steps}"]
    return sft, grpo_overrides


def run(args: argparse.Namespace) -> dict[str, Any]:
    from mlflow.tracking import MlflowClient

    from infra.tracking import Tracker
    from infra.viz import plot_reward_curve
    from trainer.config import load_run_config
    from trainer.job import run_training
    from trainer.preparation import prepare_data
    from trainer.presets import resolve
    from trainer.sft import run_sft

    workdir, data = Path(args.workdir).resolve(), Path(args.data_dir).resolve()
    for stage in ("sft", "grpo"):  # every run of the bench starts from scratch (the data is kept)
        shutil.rmtree(workdir / stage, ignore_errors=True)
    started = time.perf_counter()
    times: dict[str, float] = {}
    make_data(data, args.train_videos, args.heldout_videos)
    times["data"] = time.perf_counter() - started
    sft_cfg, grpo_overrides = configs(args, data, workdir)
    heldout = prepare_data(sft_cfg)[1][: args.eval_samples]

    def timed(stage: str, fn, *fn_args):
        mark = time.perf_counter()
        try:
            return fn(*fn_args)
        finally:
            times[stage] = time.perf_counter() - mark

    sft = timed("sft", run_sft, sft_cfg)
    before = timed("eval_before", with_ray, evaluate_checkpoint, sft.checkpoint_uri, sft_cfg, heldout, 2)
    grpo_cfg = load_run_config(resolve("learning-grpo"), [*grpo_overrides, f"model.path={sft.checkpoint_uri}"])
    grpo = timed("grpo", run_training, grpo_cfg)
    after = timed("eval_after", with_ray, evaluate_checkpoint, grpo.checkpoint_uri, grpo_cfg, heldout, 2)
    times["total"] = time.perf_counter() - started

    client = MlflowClient(tracking_uri=grpo.tracking_uri)
    history = sorted(client.get_metric_history(grpo.run_id, "reward/mean"), key=lambda m: m.step)
    image = plot_reward_curve([m.step for m in history], [m.value for m in history],
                              {"held-out reward (greedy)": [(0, before["eval/reward_mean"]),
                                                            (grpo.steps, after["eval/reward_mean"])]},
                              title="reward/mean (GRPO from SFT)", same_axis=True)
    png = workdir / "reward_curve.png"
    image.save(png)
    tracker = Tracker.start(grpo_cfg.tracking, run_id=grpo.run_id)
    try:
        tracker.log_metrics({**{f"bench/before/{k[5:]}": v for k, v in before.items()},
                             **{f"bench/after/{k[5:]}": v for k, v in after.items()}}, grpo.steps)
        tracker.log_artifact(png)
        tracker.set_tags({"sft_checkpoint": sft.checkpoint_uri, "sft_run_id": sft.run_id})
    finally:
        tracker.close("FINISHED")
    return {"before": before, "after": after, "times": times, "png": str(png), "sft": sft, "grpo": grpo,
            "grpo_steps": grpo.steps}


def report(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    before, after, times = out["before"], out["after"], out["times"]
    rows = [("format rate (%)", "eval/term/format", 100.0), ("mean reward", "eval/reward_mean", 1.0),
            ("  term tiou", "eval/term/tiou", 1.0), ("  term format", "eval/term/format", 1.0),
            ("m_tIoU (%)", "eval/m_tIoU", 1.0), ("m_vIoU (%)", "eval/m_vIoU", 1.0)]
    print()
    print(f"held-out: {args.eval_samples} samples, greedy; task vtg (m_vIoU is 0: VTG predicts no boxes)")
    print(f"{'':18s}{'after SFT':>12s}{'after GRPO':>12s}{'change':>10s}")
    for label, key, scale in rows:
        b, a = before.get(key, 0.0) * scale, after.get(key, 0.0) * scale
        print(f"{label:18s}{b:12.3f}{a:12.3f}{a - b:+10.3f}")
    fmt = before.get("eval/term/format", 0.0)
    tiou_gain = after["eval/m_tIoU"] - before["eval/m_tIoU"]
    base = before["eval/reward_mean"]
    reward_gain = after["eval/reward_mean"] / base - 1.0 if base > 0 else float(after["eval/reward_mean"] > 0)
    minutes = times["total"] / 60
    checks = {
        "sft_format_above_90pct": fmt > TARGET_FORMAT,
        "grpo_m_tIoU_plus_5_points": tiou_gain >= TARGET_TIOU_POINTS,
        "grpo_reward_plus_10pct": reward_gain >= TARGET_REWARD_GAIN,
        "within_30_minutes": minutes <= TARGET_MINUTES,
    }
    print()
    print(f"target: SFT format rate > {100 * TARGET_FORMAT:.0f} %: {100 * fmt:.1f} % -> "
          f"{'met' if checks['sft_format_above_90pct'] else 'NOT met'}")
    print(f"target: GRPO m_tIoU +{TARGET_TIOU_POINTS:g} points: {tiou_gain:+.1f} -> "
          f"{'met' if checks['grpo_m_tIoU_plus_5_points'] else 'NOT met'}")
    print(f"target: GRPO mean reward +{100 * TARGET_REWARD_GAIN:.0f} %: {100 * reward_gain:+.1f} % -> "
          f"{'met' if checks['grpo_reward_plus_10pct'] else 'NOT met'}")
    print(f"target: all within {TARGET_MINUTES:.0f} min on this machine: {minutes:.1f} min -> "
          f"{'met' if checks['within_30_minutes'] else 'NOT met'}  (" +
          ", ".join(f"{k} {v / 60:.1f}" for k, v in times.items() if k != "total") + " min)")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other work: "
          f"timings are pessimistic)")
    print(f"reward curve: {out['png']}")
    print(f"MLflow: SFT run {out['sft'].run_id}, GRPO run {out['grpo'].run_id}: "
          f"mlflow ui --backend-store-uri {out['grpo'].tracking_uri}")
    if args.quick:
        print("(--quick: a smoke pass of the whole flow; its figures say nothing about the targets)")
    return {"bench": "learning_run", "value": round(tiou_gain, 2), "unit": "m_tIoU points",
            "figure": (f"SFT format {100 * fmt:.0f} %, GRPO m_tIoU {before['eval/m_tIoU']:.1f} -> "
                       f"{after['eval/m_tIoU']:.1f}, reward {before['eval/reward_mean']:.3f} -> "
                       f"{after['eval/reward_mean']:.3f} ({100 * reward_gain:+.1f} %), {minutes:.1f} min"),
            "target": "SFT format > 90 %; GRPO m_tIoU +5 pts, reward +10 %; <= 30 min",
            "met": all(checks.values()), "checks": checks, "quick": args.quick,
            "before": {k: round(v, 4) for k, v in before.items()}, "after": {k: round(v, 4) for k, v in after.items()},
            "minutes": round(minutes, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="runs/learning-run", help="data, runs, MLflow store, reward curve")
    parser.add_argument("--quick", action="store_true", help="smoke pass: tiny data, a few steps of each stage")
    parser.add_argument("--sft-steps", type=int, default=None, help="default: the learning-sft preset's")
    parser.add_argument("--grpo-steps", type=int, default=None, help="default: the learning-grpo preset's")
    parser.add_argument("--eval-samples", type=int, default=256, help="held-out samples per evaluation")
    parser.add_argument("--train-videos", type=int, default=1024)
    parser.add_argument("--heldout-videos", type=int, default=256)
    parser.add_argument("--data-dir", default="runs/learning-data", help="synthetic videos and annotations "
                        "(the learning-* presets read runs/learning-data)")
    parser.add_argument("--data-only", action="store_true", help="write the data and stop")
    parser.add_argument("--threads", default="2", help="torch threads of each learner rank and rollout actor "
                        "(STVG_TORCH_THREADS): in sync mode they take turns, so each may use both cores")
    args = parser.parse_args()
    if args.data_only:
        make_data(Path(args.data_dir), args.train_videos, args.heldout_videos)
        print(f"data written to {args.data_dir}")
        return 0
    if args.quick:
        args.train_videos, args.heldout_videos, args.eval_samples = 64, 32, 32
        args.sft_steps = args.sft_steps or 20
        args.grpo_steps = args.grpo_steps or 4
        if args.workdir == "runs/learning-run":
            args.workdir = "runs/learning-run-quick"
        if args.data_dir == "runs/learning-data":
            args.data_dir = "runs/learning-data-quick"
    os.environ["STVG_TORCH_THREADS"] = str(args.threads)
    from trainer.config import load_run_config
    from trainer.presets import resolve

    args.sft_steps = args.sft_steps or load_run_config(resolve("learning-sft")).total_steps
    args.grpo_steps = args.grpo_steps or load_run_config(resolve("learning-grpo")).total_steps
    args.eval_samples = min(args.eval_samples, args.heldout_videos)
    result = report(args, run(args))
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
