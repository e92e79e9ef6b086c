"""Benchmark: proof that it learns, measured honestly. SFT warm start, then GRPO, on synthetic videos.

    1. data:    train and dev splits (the presets' synthetic scenes, generated once into the cache)
                and a test split (another seed) that no choice of settings ever looked at
    2. SFT:     `stvg sft learning-<task>-sft` (trainer.sft.run_sft), stopped early
    3. eval:    the SFT checkpoint, greedy, on the test split ("after SFT")
    4. GRPO:    `stvg train learning-<task>-grpo model.path=<SFT checkpoint>`
    5. eval:    the GRPO checkpoint, same samples, same protocol ("after GRPO")
    6. SFT alone for the same wall time: the SFT run resumed from its checkpoint for as many more
       steps as GRPO's minutes buy at SFT's pace, then evaluated the same way. GRPO "improves on
       SFT" only where it beats this equal-compute baseline; the table says plainly if it does not.
    7. (--with-plain) the same SFT and GRPO steps in one plain PyTorch process (bench/plain_loop.py),
       timed side by side: the platform's wall time over the plain loop's, and each one's figures.
    8. the video-blind control: the GRPO checkpoint on the same samples, each with another sample's
       video; only a clear drop there (5 points of m_tIoU or of the main figure) shows the model
       reads the video (not timed with steps 1-6).
    9. the table, the targets, where a GRPO step's time goes, the reward curve (PNG, also in MLflow).

Tasks (--task): `stvg-o1`, the headline task (boxes in both lists, all five reward terms), and `vtg`
(time spans only). Both run on one large moving shape per video on the coded background, 8 frames
of 56x56 px and the compact instruction (docs/learning-run.md says why). `--seed` sets the data (synthetic seeds
1 + seed, +1000 for dev, +2000 for test), the tiny model's initialisation and the run seeds.

Targets (2 CPU cores, 45 minutes for steps 1-6): after SFT the format rate is above 90 %; GRPO raises
the main figure (m_vIoU for stvg-o1, m_tIoU for vtg) by at least 5 points and the mean reward by at
least 10 % over the SFT checkpoint. With --with-plain: the platform takes at most 2x the plain loop's
wall time for the same steps.

    python bench/learning_run.py [--task stvg-o1] [--seed 0] [--with-plain] [--quick]
                                 [--eval-split test|dev] [--sft-steps N] [--grpo-steps N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_FORMAT = 0.90
TARGET_POINTS = 5.0
TARGET_REWARD_GAIN = 0.10
TARGET_MINUTES = 45.0
TARGET_PLAIN_RATIO = 2.0
MAIN_FIGURE = {"stvg-o1": "eval/m_vIoU", "vtg": "eval/m_tIoU"}
TEST_SEED_OFFSET = 2000
"""Test split seed = data.synthetic_seed + 2000 (train: + 0, dev: + 1000, the platform's held-out)."""


# ---- configs and data ---------------------------------------------------------------------------

def stage_configs(task: str, seed: int, workdir: Path, *, sft_steps: int | None = None,
                  grpo_steps: int | None = None, overrides=()):
    """The two stages' RunConfigs from the learning-<task>-sft/-grpo presets, for this seed and
    workdir (the GRPO stage's model.path is filled in once the SFT checkpoint exists)."""
    from trainer.config import load_run_config
    from trainer.presets import resolve

    shared = [f"seed={seed}", f"model.tiny_seed={seed}", f"data.synthetic_seed={1 + seed}",
              f"model.cache_dir={workdir.parent / 'cache'}",
              f"tracking.tracking_uri=sqlite:///{workdir}/mlruns/mlflow.db", "quiet=true", *overrides]
    sft = load_run_config(resolve(f"learning-{task}-sft"), [
        *shared, f"output_dir={workdir / 'sft'}", *([f"total_steps={sft_steps}"] if sft_steps else [])])
    grpo = load_run_config(resolve(f"learning-{task}-grpo"), [
        *shared, f"output_dir={workdir / 'grpo'}", *([f"total_steps={grpo_steps}"] if grpo_steps else [])])
    return sft, grpo


def test_split(cfg) -> list:
    """The test split: the presets' scenes with seed data.synthetic_seed + 2000, as many videos as
    the dev split, generated once into the cache."""
    from infra.data.synth import load_synthetic, synthetic_dataset
    from rollout.video_cache import SYNTHETIC_DIR
    from trainer.preparation import node_video_dir, synthetic_splits

    settings = dataclasses.replace(synthetic_splits(cfg)["heldout"], seed=cfg.data.synthetic_seed + TEST_SEED_OFFSET)
    return load_synthetic(synthetic_dataset(settings, Path(node_video_dir(cfg)) / SYNTHETIC_DIR))


def swap_videos(samples: list) -> list:
    """Each sample with the next sample's video and its own query and ground truth: a model that reads
    the video scores lower on these than on its own videos; one that learned only where spans
    usually are scores the same (all synthetic videos share length, frame rate and size)."""
    return [dataclasses.replace(s, video=samples[(i + 1) % len(samples)].video) for i, s in enumerate(samples)]


# ---- evaluation of a checkpoint -------------------------------------------------------------------

def evaluate_checkpoint(uri: str, cfg, samples, workers: int = 2) -> dict[str, float]:
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

    threads = os.environ.get("STVG_TORCH_THREADS", "1")
    init_local_ray(num_cpus=max(os.cpu_count() or 1, 2), include_dashboard=False, log_to_driver=False,
                   runtime_env={"env_vars": {"OMP_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}})
    try:
        return fn(*args)
    finally:
        ray.shutdown()


# ---- where a platform GRPO step's time goes --------------------------------------------------------

PHASES = (("rollout: prompts (videos -> PromptInputs)", "time/rollout_prompt_s"),
          ("rollout: generation (HF generate)", "time/rollout_generate_s"),
          ("rollout: Ray dispatch and transfer", None),
          ("reward + advantages", "time/reward_s"),
          ("learner forward/backward/step (ZeRO-3)", "time/learn_s"),
          ("weight sync to the rollout pool", "time/sync_s"),
          ("between steps: MLflow, progress board", None))


def step_breakdown(tracking_uri: str, run_id: str) -> dict[str, float]:
    """Mean seconds per GRPO step of each phase, from the run's own metrics. The mean time between
    consecutive steps' metric timestamps (a whole loop iteration) minus the mean time/step_s is
    what the loop spends outside the timed step: logging to MLflow, pictures, the progress board."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)

    def mean(name: str) -> float:
        values = [m.value for m in client.get_metric_history(run_id, name)]
        return statistics.fmean(values) if values else 0.0

    stamps = sorted((m.step, m.timestamp) for m in client.get_metric_history(run_id, "reward/mean"))
    gaps = [(b[1] - a[1]) / 1000 / (b[0] - a[0]) for a, b in zip(stamps, stamps[1:]) if b[0] > a[0]]
    out = {name: mean(key) for name, key in PHASES if key}
    out["rollout: Ray dispatch and transfer"] = max(mean("time/rollout_s") - out[PHASES[0][0]] - out[PHASES[1][0]], 0)
    # MLflow timestamps and the step timer are separate clocks: a negative gap is their noise, not time
    out["between steps: MLflow, progress board"] = max(statistics.fmean(gaps) - mean("time/step_s"), 0.0) if gaps else 0.0
    out["step (timed)"] = mean("time/step_s")
    out["loop iteration"] = statistics.fmean(gaps) if gaps else 0.0
    return out


# ---- the run -----------------------------------------------------------------------------------------

def timed(times: dict[str, float], stage: str, fn, *args):
    mark = time.perf_counter()
    try:
        return fn(*args)
    finally:
        times[stage] = time.perf_counter() - mark


def run(args: argparse.Namespace) -> dict[str, Any]:
    from trainer.job import run_training
    from trainer.preparation import prepare_data
    from trainer.sft import run_sft

    workdir = Path(args.workdir).resolve()
    for stage in ("sft", "grpo", "mlruns"):  # every run of the bench starts from scratch (the data is kept)
        shutil.rmtree(workdir / stage, ignore_errors=True)
    started = time.perf_counter()
    times: dict[str, float] = {}
    sft_cfg, grpo_cfg = stage_configs(args.task, args.seed, workdir, sft_steps=args.sft_steps,
                                      grpo_steps=args.grpo_steps, overrides=args.overrides)
    train, dev = timed(times, "data", prepare_data, sft_cfg)
    samples = (test_split(sft_cfg) if args.eval_split == "test" else dev)[: args.eval_samples]

    sft = timed(times, "sft", run_sft, sft_cfg)
    before = timed(times, "eval_sft", with_ray, evaluate_checkpoint, sft.checkpoint_uri, sft_cfg, samples)
    grpo_cfg = dataclasses.replace(grpo_cfg, model=dataclasses.replace(grpo_cfg.model, path=sft.checkpoint_uri))
    grpo = timed(times, "grpo", run_training, grpo_cfg)
    after = timed(times, "eval_grpo", with_ray, evaluate_checkpoint, grpo.checkpoint_uri, grpo_cfg, samples)
    # the video-blind control (not part of the timed steps): the same answers asked about other videos
    after_swapped = with_ray(evaluate_checkpoint, grpo.checkpoint_uri, grpo_cfg, swap_videos(samples))

    # SFT alone for GRPO's minutes: resume the SFT run for as many steps as they buy at SFT's pace
    extra = max(1, round(sft_cfg.total_steps * times["grpo"] / times["sft"]))
    alone_cfg = dataclasses.replace(sft_cfg, resume="auto", total_steps=sft_cfg.total_steps + extra)
    alone = timed(times, "sft_alone", run_sft, alone_cfg)
    sft_alone = timed(times, "eval_sft_alone", with_ray, evaluate_checkpoint, alone.checkpoint_uri, sft_cfg, samples)
    times["total"] = time.perf_counter() - started

    out = {"before": before, "after": after, "after_swapped": after_swapped, "sft_alone": sft_alone, "times": times,
           "sft": sft, "grpo": grpo,
           "sft_steps": sft_cfg.total_steps, "grpo_steps": grpo_cfg.total_steps, "alone_steps": alone_cfg.total_steps,
           "breakdown": step_breakdown(grpo.tracking_uri, grpo.run_id), "samples": len(samples)}
    if args.with_plain:
        out["plain"] = run_plain(sft_cfg, grpo_cfg, train, samples, workdir)
    out["png"] = log_curve(grpo, grpo_cfg, before, after, workdir)
    return out


def run_plain(sft_cfg, grpo_cfg, train, samples, workdir: Path) -> dict[str, Any]:
    """The same SFT and GRPO steps in bench/plain_loop.py, timed without its evaluation."""
    import torch

    from bench.plain_loop import run_grpo, run_sft
    from trainer.preparation import resolve_model

    torch.set_num_threads(int(os.environ.get("STVG_TORCH_THREADS", "1")))
    times: dict[str, float] = {}
    sft = timed(times, "sft", run_sft, sft_cfg, resolve_model(sft_cfg).local_dir(), train)
    warm = sft.save(workdir / "plain-sft-hf")
    del sft
    grpo = timed(times, "grpo", run_grpo, grpo_cfg, warm, train)
    phases = grpo.phase_seconds()  # before the evaluation's generations add to them
    return {"times": times, "after": grpo.evaluate(samples), "phases": phases}


def log_curve(grpo, grpo_cfg, before: dict, after: dict, workdir: Path) -> str:
    """The GRPO run's reward curve with the held-out reward before and after, as a PNG (also in MLflow)."""
    from mlflow.tracking import MlflowClient

    from infra.tracking import Tracker
    from infra.viz import plot_reward_curve

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
    finally:
        tracker.close("FINISHED")
    return str(png)


# ---- the report -------------------------------------------------------------------------------------

def report(args: argparse.Namespace, out: dict[str, Any]) -> dict[str, Any]:
    before, after, alone, times = out["before"], out["after"], out["sft_alone"], out["times"]
    main_key = MAIN_FIGURE[args.task]
    terms = [k for k in before if k.startswith("eval/term/")]
    rows = [("format rate (%)", "eval/term/format", 100.0), ("mean reward", "eval/reward_mean", 1.0),
            *[(f"  term {k[10:]}", k, 1.0) for k in terms if k != "eval/term/format"],
            ("m_tIoU (%)", "eval/m_tIoU", 1.0), ("m_vIoU (%)", "eval/m_vIoU", 1.0)]
    print()
    print(f"task {args.task}, seed {args.seed}: {out['samples']} {args.eval_split} samples, greedy")
    print(f"{'':22s}{'after SFT':>11s}{'after GRPO':>11s}{'change':>9s}{'SFT alone':>11s}")
    print(f"{'  steps':22s}{out['sft_steps']:>11d}{out['sft_steps']:>6d}+{out['grpo_steps']:<4d}{'':9s}"
          f"{out['alone_steps']:>11d}")
    print(f"{'  minutes':22s}{times['sft'] / 60:11.1f}{(times['sft'] + times['grpo']) / 60:11.1f}{'':9s}"
          f"{(times['sft'] + times['sft_alone']) / 60:11.1f}")
    for label, key, scale in rows:
        b, a, s = (before.get(key, 0.0) * scale, after.get(key, 0.0) * scale, alone.get(key, 0.0) * scale)
        print(f"{label:22s}{b:11.3f}{a:11.3f}{a - b:+9.3f}{s:11.3f}")

    fmt = before.get("eval/term/format", 0.0)
    gain = after[main_key] - before[main_key]
    base = before["eval/reward_mean"]
    reward_gain = after["eval/reward_mean"] / base - 1.0 if base > 0 else float(after["eval/reward_mean"] > 0)
    beats_alone = after[main_key] > alone[main_key] and after["eval/reward_mean"] > alone["eval/reward_mean"]
    minutes = sum(v for k, v in times.items() if k != "total") / 60
    figure = main_key[5:]
    checks = {"sft_format_above_90pct": fmt > TARGET_FORMAT,
              f"grpo_{figure}_plus_5_points": gain >= TARGET_POINTS,
              "grpo_reward_plus_10pct": reward_gain >= TARGET_REWARD_GAIN,
              "within_45_minutes": minutes <= TARGET_MINUTES}
    print()
    print(f"target: SFT format rate > {100 * TARGET_FORMAT:.0f} %: {100 * fmt:.1f} % -> {_met(checks['sft_format_above_90pct'])}")
    print(f"target: GRPO {figure} +{TARGET_POINTS:g} points: {gain:+.1f} -> {_met(checks[f'grpo_{figure}_plus_5_points'])}")
    print(f"target: GRPO mean reward +{100 * TARGET_REWARD_GAIN:.0f} %: {100 * reward_gain:+.1f} % -> "
          f"{_met(checks['grpo_reward_plus_10pct'])}")
    print(f"target: steps 1-6 within {TARGET_MINUTES:.0f} min: {minutes:.1f} min -> {_met(checks['within_45_minutes'])}  ("
          + ", ".join(f"{k} {v / 60:.1f}" for k, v in times.items() if k != "total") + " min)")
    # when (m_tIoU) and, for stvg-o1, where (m_vIoU): a model that reads only when the target is
    # shows it in m_tIoU, while m_vIoU may be too small to fall by 5 points
    control = {key: (after[key], out["after_swapped"][key]) for key in dict.fromkeys(("eval/m_tIoU", main_key))}
    reads_video = any(own - swapped >= TARGET_POINTS for own, swapped in control.values())
    print("video-blind control, after GRPO, each sample's own video vs another sample's: "
          + ", ".join(f"{key[5:]} {own:.1f} vs {swapped:.1f}" for key, (own, swapped) in control.items())
          + f": the model {'reads' if reads_video else 'does NOT measurably read'} the video")
    verdict = "beats" if beats_alone else "does NOT beat"
    print(f"equal compute: SFT + GRPO {verdict} SFT alone for the same wall time ({figure} {after[main_key]:.1f} vs "
          f"{alone[main_key]:.1f}, reward {after['eval/reward_mean']:.3f} vs {alone['eval/reward_mean']:.3f})")

    print("\nwhere a platform GRPO step's time goes (mean seconds per step):")
    for name, seconds in out["breakdown"].items():
        print(f"  {name:44s}{seconds:8.3f}")
    result = {"bench": "learning_run", "value": round(gain, 2), "unit": f"{figure} points",
              "figure": (f"{args.task} seed {args.seed}: SFT format {100 * fmt:.0f} %, GRPO {figure} "
                         f"{before[main_key]:.1f} -> {after[main_key]:.1f}, reward {base:.3f} -> "
                         f"{after['eval/reward_mean']:.3f} ({100 * reward_gain:+.1f} %), SFT alone {alone[main_key]:.1f}; "
                         f"{minutes:.1f} min"),
               "target": f"SFT format > 90 %; GRPO {figure} +5 pts, reward +10 %; <= 45 min",
               "checks": checks, "beats_sft_alone": beats_alone, "reads_video": reads_video,
               "after_swapped_video": _rounded(out["after_swapped"]), "quick": args.quick, "task": args.task,
               "seed": args.seed, "eval_split": args.eval_split, "minutes": round(minutes, 2),
               "before": _rounded(before), "after": _rounded(after), "sft_alone": _rounded(alone),
               "breakdown": _rounded(out["breakdown"])}
    if "plain" in out:
        plain = out["plain"]
        platform = times["sft"] + times["grpo"]
        mine = plain["times"]["sft"] + plain["times"]["grpo"]
        ratio = platform / mine
        checks["platform_within_2x_plain"] = ratio <= TARGET_PLAIN_RATIO
        print(f"\nplain loop (bench/plain_loop.py), same steps: SFT {plain['times']['sft'] / 60:.1f} + GRPO "
              f"{plain['times']['grpo'] / 60:.1f} min; platform SFT {times['sft'] / 60:.1f} + GRPO {times['grpo'] / 60:.1f} "
              f"min -> {ratio:.2f}x ({_met(checks['platform_within_2x_plain'])}, target <= {TARGET_PLAIN_RATIO:g}x); "
              f"{figure} after GRPO: plain {plain['after'][main_key]:.1f}, platform {after[main_key]:.1f}")
        print("  plain loop per GRPO step: " + ", ".join(f"{k} {v:.3f} s" for k, v in plain["phases"].items()))
        result.update(plain_ratio=round(ratio, 2), plain=_rounded(plain["after"]), plain_minutes=_rounded(
            {k: v / 60 for k, v in plain["times"].items()}), plain_phases=_rounded(plain["phases"]))
    result["met"] = all(checks.values())
    print(f"\nmachine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other work: "
          f"timings are pessimistic)")
    print(f"reward curve: {out['png']}")
    print(f"MLflow: SFT run {out['sft'].run_id}, GRPO run {out['grpo'].run_id}: "
          f"mlflow ui --backend-store-uri {out['grpo'].tracking_uri}")
    if args.quick:
        print("(--quick: a smoke pass of the whole flow; its figures say nothing about the targets)")
    return result


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in values.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="stvg-o1", choices=sorted(MAIN_FIGURE))
    parser.add_argument("--seed", type=int, default=0, help="data, initialisation and run seeds")
    parser.add_argument("--eval-split", default="test", choices=("test", "dev"),
                        help="report on test (default); choose settings on dev only")
    parser.add_argument("--with-plain", action="store_true", help="also run bench/plain_loop.py side by side")
    parser.add_argument("--quick", action="store_true", help="smoke pass: a few steps of each stage")
    parser.add_argument("--sft-steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--grpo-steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--eval-samples", type=int, default=256, help="samples per evaluation")
    parser.add_argument("--workdir", default=None, help="default runs/learning-run/<task>-seed<seed>")
    parser.add_argument("--threads", default="1", help="torch threads of each learner rank, rollout actor and the "
                        "plain loop (STVG_TORCH_THREADS); 1 keeps runs comparable on a shared machine")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for both stages")
    args = parser.parse_args()
    args.workdir = args.workdir or f"runs/learning-run/{args.task}-seed{args.seed}"
    if args.quick:
        args.sft_steps, args.grpo_steps, args.eval_samples = args.sft_steps or 20, args.grpo_steps or 4, 16
        args.workdir += "-quick"
        args.overrides = ["data.synthetic_train_videos=32", "data.synthetic_heldout_videos=16", *args.overrides]
    os.environ["STVG_TORCH_THREADS"] = str(args.threads)
    result = report(args, run(args))
    print("RESULT " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
