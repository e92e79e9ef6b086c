"""`stvg status`: where runs stand, from Kubernetes (RayJob + Kueue) and from MLflow.

    stvg status --namespace ml                 # every RayJob in ml, then recent MLflow runs
    stvg status --namespace ml grpo-7b-2026... # one RayJob in detail (admission, cluster, message)

The cluster part needs a kubeconfig (or in-cluster credentials); without one only MLflow is shown.
The MLflow part lists runs of --experiment at --tracking-uri ($MLFLOW_TRACKING_URI by default, else
the local store ./mlruns of the current folder, as `stvg train` uses) and says which store it read.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from infra.errors import UserError
from infra.k8s.rayjob import auth_secret_name

log = logging.getLogger("stvg.status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", default=None, help="a RayJob name: show it in detail")
    parser.add_argument("--namespace", "-n", default="default", help="namespace of the RayJobs (default: default)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, "
                                                             "else ./mlruns/mlflow.db of the current folder)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment (default: all)")
    parser.add_argument("--limit", type=int, default=20, help="most MLflow runs to list (default: 20)")
    parser.add_argument("--no-cluster", action="store_true", help="skip Kubernetes")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow")


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _admission(state) -> str:
    return "-" if state.admitted is None else ("yes" if state.admitted else "no")


def format_jobs(states: list) -> str:
    if not states:
        return "no RayJobs"
    rows = [[s.name, s.phase, _admission(s), s.queue or "-", s.priority or "-", s.start_time or "-"]
            for s in states]
    return _table(rows, ["RAYJOB", "STATE", "ADMITTED", "QUEUE", "PRIORITY", "STARTED"])


def format_job(state) -> str:
    lines = [f"RayJob {state.namespace}/{state.name}: {state.phase}",
             f"  admitted by Kueue: {_admission(state)}   suspended: {'yes' if state.suspended else 'no'}",
             f"  KubeRay: deployment {state.deployment_status or '-'}, job {state.job_status or '-'}",
             f"  queue: {state.queue or '-'}   priority: {state.priority or '-'}   started: {state.start_time or '-'}"]
    if state.ray_cluster:
        lines.append(f"  RayCluster: {state.ray_cluster}  (dashboard: kubectl -n {state.namespace} port-forward "
                     f"svc/{state.ray_cluster}-head-svc 8265)")
        if state.ray_auth == "token":
            lines.append(f"  Ray token (dashboard login; RAY_AUTH_TOKEN for `ray job` / `ray status`): kubectl -n "
                         f"{state.namespace} get secret {auth_secret_name(state.ray_cluster)} "
                         f"-o jsonpath='{{.data.auth_token}}' | base64 -d")
        else:
            lines.append("  Ray token authentication: disabled (anyone who reaches the head's ports can run code)")
    if state.message:
        lines.append(f"  message: {state.message}")
    return "\n".join(lines)


def format_runs(runs: list) -> str:
    if not runs:
        return "no MLflow runs"
    def num(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)
    rows = [[r.run_name or r.run_id[:8], r.status, num(r.step, "d"), num(r.last_reward, ".3f"),
             r.start_time.strftime("%Y-%m-%d %H:%M") if r.start_time else "-", r.checkpoint_uri or "-"]
            for r in runs]
    return _table(rows, ["RUN", "STATUS", "STEP", "REWARD", "STARTED (UTC)", "CHECKPOINT"])


def cluster_report(args: argparse.Namespace) -> str:
    from infra.k8s.client import KubeApi
    from infra.k8s.state import job_state, workload_for

    api = KubeApi(args.kubeconfig, args.context)
    if args.name:
        rayjob = api.get_rayjob(args.namespace, args.name)
        return format_job(job_state(rayjob, workload_for(rayjob, api.list_workloads(args.namespace))))
    rayjobs = api.list_rayjobs(args.namespace)
    workloads = api.list_workloads(args.namespace) if rayjobs else None
    return format_jobs([job_state(job, workload_for(job, workloads)) for job in rayjobs])


def mlflow_report(args: argparse.Namespace) -> str:
    """The runs of the tracking store, under a line saying which store that is and where its URI
    came from (a folder's default store is only the runs started from that folder)."""
    from infra.tracking import describe_source, list_runs, resolve_tracking_uri, ui_hint

    uri = resolve_tracking_uri(args.tracking_uri)
    store = f"MLflow store {uri} ({describe_source(args.tracking_uri)})"
    if args.experiment:
        store += f", experiment {args.experiment!r}"
    runs = list_runs(uri, args.experiment)[: args.limit]
    if not runs:
        return f"no MLflow runs in the {store}"
    return f"{store}:\n{format_runs(runs)}\nlook at them: {ui_hint(uri)}"


def run(args: argparse.Namespace) -> int:
    if args.no_cluster and args.no_mlflow:
        raise UserError("--no-cluster and --no-mlflow together leave nothing to show")
    failures = 0
    if not args.no_cluster:
        try:
            print(cluster_report(args))
        except UserError as err:
            # A named job needs the cluster; a listing can still show MLflow.
            if args.name or args.no_mlflow:
                raise
            print(f"Kubernetes: {err}")
            failures += 1
    if not args.no_mlflow:
        if not args.no_cluster:
            print()
        try:
            print(mlflow_report(args))
        except UserError as err:
            if failures or args.no_cluster:
                raise
            print(f"MLflow: {err}")
    return 0
