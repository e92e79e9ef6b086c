"""`stvg plan CONFIG [k=v ...]`: GPU memory per learner rank and rollout engine, video tokens, step
time and a verdict for a run config, from the model's config.json alone (docs/plan.md).

The cluster side is the config's `cluster:` section; the flags below are shorthands for its keys.
"""

from __future__ import annotations

import argparse
import json

from infra.errors import ConfigError

INTERMIXED_ARGS = True


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `stvg plan` and `stvg submit` share."""
    parser.add_argument("--model-config", default="", metavar="NAME|FILE",
                        help="plan with this config.json or shipped config (qwen2.5-vl-3b/7b/32b/72b) instead of "
                             "model.path's, e.g. when model.path exists only inside the pods")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML or preset name (e.g. qwen25vl-7b-stvg-o1)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, as for stvg train")
    add_plan_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    hardware = parser.add_argument_group("cluster (shorthands for cluster.* overrides)")
    hardware.add_argument("--gpu-type", default=None,
                          help="GPU of both groups (cluster.learner/rollout.gpu_type), e.g. h100-80gb")
    hardware.add_argument("--gpu-memory-gib", type=float, default=None,
                          help="memory of one GPU in GiB when it differs from the type's")
    hardware.add_argument("--nodes", type=int, default=None,
                          help="learner nodes (cluster.learner.replicas), one ZeRO-3 rank per GPU")
    hardware.add_argument("--gpus-per-node", type=int, default=None,
                          help="GPUs per learner node (cluster.learner.gpus_per_worker)")
    video = parser.add_argument_group("the videos (default: synthetic data's, else the worst case: square at "
                                      "rollout.max_long_side, 60 s)")
    video.add_argument("--video-size", default=None, metavar="WxH", help="resolution of the dataset's videos")
    video.add_argument("--video-seconds", type=float, default=None, help="length of the dataset's videos")
    assume = parser.add_argument_group("assumptions")
    assume.add_argument("--margin", type=float, default=0.10, help="fraction of GPU memory kept free (0.10)")
    assume.add_argument("--mfu", type=float, default=0.4, help="model-FLOPs utilisation for the step time (0.4)")
    assume.add_argument("--network-gbps", type=float, default=100.0,
                        help="learner-to-rollout bandwidth for the weight sync, Gbit/s (100)")


def hardware_overrides(args: argparse.Namespace, cfg) -> list[str]:
    """--gpu-type & co. as cluster overrides; --nodes/--gpus-per-node also set learner.num_workers."""
    out = []
    for group in ("learner", "rollout"):
        if args.gpu_type is not None:
            out.append(f"cluster.{group}.gpu_type={args.gpu_type}")
        if args.gpu_memory_gib is not None:
            out.append(f"cluster.{group}.gpu_memory_gib={args.gpu_memory_gib}")
    if args.nodes is not None or args.gpus_per_node is not None:
        nodes = args.nodes if args.nodes is not None else cfg.cluster.learner.replicas
        per_node = args.gpus_per_node if args.gpus_per_node is not None else cfg.cluster.learner.gpus_per_worker
        if nodes < 1 or per_node < 1:
            raise ConfigError(f"--nodes={nodes} and --gpus-per-node={per_node} must both be at least 1")
        out += [f"cluster.learner.replicas={nodes}", f"cluster.learner.gpus_per_worker={per_node}",
                "cluster.learner.min_replicas=null", "cluster.learner.max_replicas=null",
                f"learner.num_workers={nodes * per_node}"]
    return out


def plan_options(args: argparse.Namespace):
    from infra.plan.plan import PlanOptions
    from infra.plan.timing import Assumptions

    if not 0 <= args.margin < 1:
        raise ConfigError(f"--margin={args.margin} must be in [0, 1)")
    if not 0 < args.mfu <= 1 or args.network_gbps <= 0:
        raise ConfigError(f"--mfu={args.mfu} must be in (0, 1] and --network-gbps={args.network_gbps} above 0")
    if args.video_seconds is not None and args.video_seconds <= 0:
        raise ConfigError(f"--video-seconds={args.video_seconds} must be above 0")
    return PlanOptions(video_size=_size(args.video_size) if args.video_size else None,
                       video_seconds=args.video_seconds, margin=args.margin, model_config=args.model_config,
                       assume=Assumptions(mfu=args.mfu, network_gbps=args.network_gbps))


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--video-size={text!r} must look like 1280x720") from None
    if width < 1 or height < 1:
        raise ConfigError(f"--video-size={text!r} must be positive")
    return width, height


def run(args: argparse.Namespace) -> int:
    from infra.plan.plan import make_plan
    from infra.plan.report import render, to_json
    from trainer.config import load_run_config
    from trainer.presets import resolve

    cfg = load_run_config(resolve(args.config), args.overrides)
    extra = hardware_overrides(args, cfg)
    if extra:
        cfg = load_run_config(resolve(args.config), [*args.overrides, *extra])
    plan = make_plan(cfg, plan_options(args))
    if args.json:
        print(json.dumps(to_json(plan), indent=2))
    else:
        print(render(plan), end="")
    return 0 if plan.fits else 1
