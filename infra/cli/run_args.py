"""Arguments shared by the commands that take a run config (train, sft, eval, submit)."""

from __future__ import annotations

import argparse


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=None,
                        help="YAML run config or preset name (default: the embedded demo preset)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="dotted overrides, e.g. total_steps=10 grpo.group_size=8 resume=auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; one line per step")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (defaults < file < overrides) as YAML and exit")


def print_config(cfg) -> None:
    import yaml

    from infra.config import to_dict

    print(yaml.safe_dump(to_dict(cfg), sort_keys=False), end="")


def load_from_args(args: argparse.Namespace):
    from trainer.config import load_run_config
    from trainer.presets import resolve

    config, overrides = args.config, list(args.overrides)
    if config is not None and "=" in config:  # `stvg train total_steps=2`: no config, only overrides
        config, overrides = None, [config, *overrides]
    if getattr(args, "quiet", False):
        overrides.append("quiet=true")
    return load_run_config(resolve(config), overrides)


def run_job(args: argparse.Namespace, job, what: str = "steps", next_hint: str = "") -> int:
    """The body of `stvg train` and `stvg sft`: load the config, print it or run `job(cfg)`."""
    cfg = load_from_args(args)
    if args.print_config:
        print_config(cfg)
        return 0
    print_summary(job(cfg), cfg, what, next_hint)
    return 0


def print_summary(summary, cfg, what: str = "steps", next_hint: str = "") -> None:
    """Where to look after a run: checkpoint, eval metrics, MLflow."""
    from infra.tracking.client import ui_hint

    print()
    print(f"done: {summary.steps} {what} of {cfg.name}")
    if summary.checkpoint_uri:
        print(f"  checkpoint:  {summary.checkpoint_uri}")
        if next_hint:
            print(f"  {next_hint}{summary.checkpoint_uri}")
    evals = {k: v for k, v in summary.last_metrics.items()
             if k.startswith("eval/") and not (k == "eval/bad_video_skips" and v == 0)}  # shown when some were left out
    before = metrics_at_step(summary.tracking_uri, summary.run_id, sorted(evals), 0) if evals else {}
    if before:  # eval.at_start: the held-out figures of the starting model, then of the trained one
        print("  held-out:    " + ", ".join(f"{k[5:]} {before[k]:.2f} -> {v:.2f}" for k, v in sorted(evals.items())
                                            if k in before))
    elif evals:
        print("  eval:        " + ", ".join(f"{k[5:]} {v:.2f}" for k, v in sorted(evals.items())))
    print(f"  MLflow run:  {summary.run_id}")
    print(f"  MLflow UI:   {ui_hint(summary.tracking_uri)}")


def metrics_at_step(tracking_uri: str, run_id: str, names, step: int) -> dict[str, float]:
    """The values an MLflow run logged for `names` at `step` ({} when it logged none, or the store
    cannot be read: the summary is best effort)."""
    try:
        from mlflow.tracking import MlflowClient

        from infra.tracking.names import metric_name

        client = MlflowClient(tracking_uri=tracking_uri)
        out = {}
        for name in names:
            values = [m.value for m in client.get_metric_history(run_id, metric_name(name)) if m.step == step]
            if values:
                out[name] = values[-1]
        return out
    except Exception:  # noqa: BLE001 - a summary line must never fail a finished run
        return {}
