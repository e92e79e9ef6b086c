"""What a RayJob is doing, in one word, from its status and (if Kueue manages it) its Workload.

KubeRay reports `status.jobDeploymentStatus` (New, Initializing, Running, Complete, Failed,
Suspending, Suspended, Retrying, Waiting, ...) and `status.jobStatus` (PENDING, RUNNING, SUCCEEDED,
FAILED, STOPPED); Kueue keeps `spec.suspend` true until it admits the job and records why in the
Workload's conditions (QuotaReserved, Admitted, Evicted, Preempted, Finished).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.k8s.rayjob import PRIORITY_LABEL, QUEUE_LABEL


@dataclass
class JobState:
    name: str
    namespace: str
    phase: str
    """queued, evicted, suspended, starting, running, retrying, succeeded, failed, stopped or unknown."""
    admitted: bool | None
    """Kueue admission; None when no Workload is visible (not queued, or Kueue not installed)."""
    suspended: bool
    deployment_status: str
    job_status: str
    queue: str
    priority: str
    message: str
    start_time: str
    ray_cluster: str
    ray_auth: str = "disabled"
    """token when the RayJob asks KubeRay for Ray token authentication (spec.rayClusterSpec.authOptions)."""


def _condition(workload: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for condition in ((workload or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _is_true(condition: dict[str, Any] | None) -> bool:
    return bool(condition) and condition.get("status") == "True"


def workload_for(rayjob: dict[str, Any], workloads: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """The Kueue Workload owned by this RayJob: matched by owner uid (a deleted and re-created job
    of the same name leaves an older Workload behind), by name only when the job has no uid."""
    meta = rayjob.get("metadata") or {}
    key, value = ("uid", meta["uid"]) if meta.get("uid") else ("name", meta.get("name"))
    for workload in workloads or []:
        for owner in (workload.get("metadata") or {}).get("ownerReferences") or []:
            if owner.get("kind") == "RayJob" and owner.get(key) == value:
                return workload
    return None


def job_state(rayjob: dict[str, Any], workload: dict[str, Any] | None = None) -> JobState:
    meta, spec, status = rayjob.get("metadata") or {}, rayjob.get("spec") or {}, rayjob.get("status") or {}
    labels = meta.get("labels") or {}
    deployment = status.get("jobDeploymentStatus") or ""
    job_status = status.get("jobStatus") or ""
    suspended = bool(spec.get("suspend"))
    admitted = None if workload is None else _is_true(_condition(workload, "Admitted"))
    message = status.get("message") or ""

    if deployment == "Complete":
        phase = {"SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "stopped"}.get(job_status, "succeeded")
    elif deployment == "Failed":
        phase = "failed"
        message = message or status.get("reason") or ""
    elif suspended or deployment in ("Suspended", "Suspending"):
        evicted = _condition(workload, "Evicted")
        if _is_true(evicted):
            phase, message = "evicted", evicted.get("message") or message
        elif workload is not None and not admitted:
            reserved = _condition(workload, "QuotaReserved")
            phase = "queued"
            message = (reserved or {}).get("message") or message or "waiting for quota"
        else:
            phase = "suspended"
    elif deployment == "Running" or job_status == "RUNNING":
        phase = "running"
    elif deployment == "Retrying":
        phase = "retrying"
    elif deployment in ("", "New", "Initializing", "Waiting", "Validated") or job_status == "PENDING":
        phase = "starting"
    else:
        phase = "unknown"
    return JobState(
        name=meta.get("name", "?"), namespace=meta.get("namespace", "?"), phase=phase, admitted=admitted,
        suspended=suspended, deployment_status=deployment, job_status=job_status,
        queue=labels.get(QUEUE_LABEL, ""), priority=labels.get(PRIORITY_LABEL, ""), message=message,
        start_time=status.get("startTime") or meta.get("creationTimestamp") or "",
        ray_cluster=status.get("rayClusterName") or "",
        ray_auth=_auth_mode(spec),
    )


def _auth_mode(spec: dict[str, Any]) -> str:
    options = (spec.get("rayClusterSpec") or {}).get("authOptions")
    return "disabled" if options is None else options.get("mode") or "token"  # KubeRay's default mode
