"""`stvg submit`: run a training config on Kubernetes as a KubeRay RayJob (docs/kubernetes.md).

The run config is loaded and validated here, then its resolved form (overrides applied) goes into
a ConfigMap mounted at /etc/stvg/run.yaml, and the RayJob runs `stvg train /etc/stvg/run.yaml`;
a NetworkPolicy keeps every other pod away from the run's Ray ports (cluster.network_policy).
The cluster layout comes from the config's `cluster:` section; --namespace/--queue/--priority are
shorthands for cluster.namespace/queue/priority_class overrides.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from infra.cli.plan import add_plan_arguments
from infra.errors import ConfigError, UserError

log = logging.getLogger("stvg.submit")


# `stvg submit CONFIG --namespace ml k=v`: overrides may follow options (see infra.cli).
INTERMIXED_ARGS = True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="run config YAML or preset name (e.g. qwen25vl-7b-stvg-o1)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. grpo.group_size=8 cluster.learner.replicas=2")
    parser.add_argument("--namespace", "-n", default=None, help="namespace of the run (default: cluster.namespace)")
    parser.add_argument("--queue", default=None, help="Kueue LocalQueue (default: cluster.queue; empty = no Kueue)")
    parser.add_argument("--priority", default=None,
                        help="Kueue WorkloadPriorityClass, e.g. stvg-high (default: cluster.priority_class)")
    parser.add_argument("--name", default=None,
                        help="RayJob name (default: <run name>-<UTC timestamp>; at most 47 characters)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the ConfigMap, NetworkPolicy and RayJob as YAML instead of creating them")
    parser.add_argument("--force", action="store_true",
                        help="submit even when `stvg plan` says the run does not fit (or cannot plan it)")
    add_plan_arguments(parser)
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")


def cluster_overrides(args: argparse.Namespace) -> list[str]:
    """The flag shorthands as overrides, placed after the user's so the flags win."""
    extra = []
    for flag, key in (("namespace", "cluster.namespace"), ("queue", "cluster.queue"),
                      ("priority", "cluster.priority_class")):
        value = getattr(args, flag)
        if value is not None:
            # `--queue ""` turns queueing off; a bare `key=` would mean null to omegaconf.
            extra.append(f"{key}={value}" if value else f"{key}=''")
    return [*args.overrides, *extra]


def check_ray_resources(resolved: dict[str, Any], cluster: Any) -> None:
    """The run must ask for its group's Ray resource (or its workers land on the wrong pods) and
    must fit in the group (or Ray waits forever for resources no pod advertises)."""
    from infra.k8s.config import LEARNER_RESOURCE, ROLLOUT_RESOURCE

    for section, resource in (("learner", LEARNER_RESOURCE), ("rollout", ROLLOUT_RESOURCE)):
        part = resolved.get(section) or {}
        asked = (part.get("resources_per_worker") or {}).get(resource)
        if not asked:
            raise ConfigError(
                f"{section}.resources_per_worker.{resource} is not set: on Kubernetes the {section} pods "
                f"advertise the Ray resource {resource}; add `{section}.resources_per_worker.{resource}=1` "
                f"(or set it in the config) so {section} workers land on their own group")
        group = getattr(cluster, section)
        supply = group.bounds[1] * group.ray_slots
        workers = int(part.get("num_workers") or 1)
        if workers * asked > supply:
            raise ConfigError(
                f"{section}.num_workers={workers} x {resource}={asked:g} needs {workers * asked:g} units but "
                f"cluster.{section} provides {supply} ({group.bounds[1]} pods x {group.ray_slots}); raise "
                f"cluster.{section}.replicas (or max_replicas) or cluster.{section}.gpus_per_worker/slots")


def check_plan(run_config: Any, args: argparse.Namespace) -> None:
    """Refuse a run that does not fit its cluster (docs/plan.md), in one line; --force submits anyway."""
    from infra.plan.plan import PlanOptions, make_plan
    from infra.plan.report import one_line

    try:
        plan = make_plan(run_config, PlanOptions(model_config=args.model_config))
    except UserError as err:
        if not args.force:
            raise UserError(f"cannot plan the run: {err} (--force submits without a plan)") from None
        log.warning("submitting without a plan (--force): %s", err)
        return
    if plan.fits:
        log.info("stvg plan: %s", one_line(plan))
    elif args.force:
        log.warning("stvg plan: %s; submitting anyway (--force)", one_line(plan))
    else:
        raise ConfigError(f"{one_line(plan)}; `stvg plan` shows the details, --force submits anyway")


def build_manifests(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Load + validate the run config, check that it fits, and render [ConfigMap, NetworkPolicy, RayJob]
    (no NetworkPolicy with cluster.network_policy=false)."""
    from infra.config import to_dict
    from infra.k8s.rayjob import check_job_name, default_job_name, render_manifests
    from trainer.config import load_run_config
    from trainer.presets import resolve
    from trainer.reachability import require_shared

    run_config = load_run_config(resolve(args.config), cluster_overrides(args))
    resolved = to_dict(run_config)
    check_ray_resources(resolved, run_config.cluster)
    # Every pod of a RayJob is another node: checkpoints must go where all of them (and a retry) reach.
    require_shared("checkpoint.uri", run_config.checkpoint.uri or "runs/<name>/checkpoints",
                   [v.mount_path for v in run_config.cluster.volumes if not v.read_only] + run_config.cluster.shared_paths,
                   "learner pods write their shards there, and a pod's own disk vanishes with it")
    check_plan(run_config, args)
    name = check_job_name(args.name) if args.name else default_job_name(run_config.name)
    return render_manifests(name, run_config.cluster, resolved)


def create(manifests: list[dict[str, Any]], kubeconfig: str | None, context: str | None) -> dict[str, Any]:
    """Create the ConfigMap, the NetworkPolicy (before any pod of the run exists, so none is ever
    reachable from the whole namespace) and then the RayJob, which then owns the other two; if the
    RayJob cannot be created, the objects made before it are removed again."""
    from infra.k8s.client import KubeApi

    api = KubeApi(kubeconfig, context)
    (rayjob,) = [obj for obj in manifests if obj["kind"] == "RayJob"]
    before = [obj for obj in manifests if obj is not rayjob]
    made: list[dict[str, Any]] = []
    try:
        for obj in before:
            api.create(obj)
            made.append(obj)
        created = api.create(rayjob)
    except Exception:
        for obj in reversed(made):
            meta = obj["metadata"]
            try:
                api.delete(obj)
            except Exception as cleanup:  # the original error matters more
                log.warning("could not remove %s %s/%s: %s", obj["kind"], meta["namespace"], meta["name"], cleanup)
        raise
    for obj in made:
        try:
            api.set_owner(obj, created)
        except Exception as err:  # the run is submitted; only garbage collection of the object is lost
            log.warning("%s %s is not owned by the RayJob (delete it yourself later): %s",
                        obj["kind"], obj["metadata"]["name"], err)
    return created


def run(args: argparse.Namespace) -> int:
    from infra.k8s.rayjob import dump_yaml

    manifests = build_manifests(args)
    if args.dry_run:
        sys.stdout.write(dump_yaml(manifests))
        return 0
    created = create(manifests, args.kubeconfig, args.context)
    meta = created["metadata"]
    labels = meta.get("labels") or {}
    queue = labels.get("kueue.x-k8s.io/queue-name")
    where = f" in Kueue queue {queue}" if queue else ""
    print(f"submitted RayJob {meta['namespace']}/{meta['name']}{where}")
    print(f"  follow it: stvg status --namespace {meta['namespace']} {meta['name']}")
    return 0
