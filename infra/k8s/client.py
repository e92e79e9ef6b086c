"""Kubernetes API access for `stvg submit` and `stvg status`, with every failure as one clear line.

Only what the two commands need: create a ConfigMap, a NetworkPolicy and a RayJob (and make the
RayJob own the first two, or delete them again), read RayJobs and Kueue Workloads. API errors
become `UserError`s that say what happened and what to do (401 credentials, 403 RBAC, 404 missing
CRD or namespace, 409 name taken, 422 rejected spec, unreachable server).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from infra.errors import UserError

RAY_GROUP, RAY_VERSION, RAYJOB_PLURAL = "ray.io", "v1", "rayjobs"
KUEUE_GROUP, KUEUE_VERSION, WORKLOAD_PLURAL = "kueue.x-k8s.io", "v1beta2", "workloads"
REQUEST_TIMEOUT = (5, 30)  # (connect, read) seconds


def _status_message(err: Any) -> tuple[str, dict[str, Any], bool]:
    """(message, details, is_status) of an error body. A Kubernetes `Status` object means the API
    exists and answered; a plain-text "404 page not found" means the API itself is not served."""
    try:
        body = json.loads(err.body or "")
    except (TypeError, ValueError):
        body = None
    if not isinstance(body, dict) or body.get("kind") != "Status":
        return str(err.reason or "no message"), {}, False
    return str(body.get("message") or err.reason or "no message"), body.get("details") or {}, True


def describe_api_error(err: Exception, action: str, target: str, server: str = "?") -> UserError | None:
    """One-line UserError for a failed API call (`action` e.g. 'create', `target` e.g. 'RayJob ml/run1');
    None when `err` is neither an API answer nor a network failure (a bug: let it surface)."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(err, ApiException):
        message, details, is_status = _status_message(err)
        status = err.status
        if status == 401:
            return UserError(f"cannot {action} {target}: the API server at {server} rejected the credentials "
                             f"(401 Unauthorized); refresh the kubeconfig (e.g. `aws eks update-kubeconfig`)")
        if status == 403:
            return UserError(f"cannot {action} {target}: forbidden (403): {message}; ask a cluster admin for "
                             f"RBAC on this resource in this namespace")
        if status == 404:
            if details.get("kind") == "namespaces" or 'namespaces "' in message:
                return UserError(f"cannot {action} {target}: the namespace does not exist (404); create it or "
                                 f"pass --namespace")
            if not is_status and "RayJob" in target:
                return UserError(f"cannot {action} {target}: the cluster does not serve {RAY_GROUP}/{RAY_VERSION} "
                                 f"RayJobs (404): install the KubeRay operator and its CRDs (docs/kubernetes.md)")
            return UserError(f"{target} not found (404)")
        if status == 409:
            return UserError(f"cannot {action} {target}: it already exists (409); choose another --name or "
                             f"delete the old one")
        if status == 422:
            return UserError(f"cannot {action} {target}: the API server rejected the spec (422): {message}")
        return UserError(f"cannot {action} {target}: HTTP {status} {err.reason}: {message}")
    reason = _connection_reason(err)
    if reason is not None:
        return UserError(f"cannot {action} {target}: the Kubernetes API server at {server} is unreachable "
                         f"({reason}); check the kubeconfig context, the network or VPN")
    return None


def _connection_reason(err: Exception) -> str | None:
    """A short reason if `err` is a network-level failure (urllib3 / socket), else None."""
    import socket

    import urllib3.exceptions as u3

    seen = err
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        # Before the timeout check: urllib3's NewConnectionError subclasses its ConnectTimeoutError.
        if isinstance(seen, u3.NewConnectionError):
            text = str(seen)
            return "connection refused" if "refused" in text.lower() else text.split(": ", 1)[-1]
        if isinstance(seen, (socket.timeout, TimeoutError, u3.TimeoutError)):
            return "timed out"
        if isinstance(seen, u3.MaxRetryError):
            seen = seen.reason
            continue
        if isinstance(seen, (u3.HTTPError, ConnectionError, OSError)):
            return type(seen).__name__ + (f": {seen}" if str(seen) else "")
        seen = seen.__cause__ or seen.__context__
    return None


class KubeApi:
    """The few API calls `stvg` makes, on one ApiClient built from a kubeconfig (or in-cluster)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None):
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=kubeconfig, context=context,
                                    client_configuration=configuration)
        except (ConfigException, FileNotFoundError, TypeError) as err:
            try:
                config.load_incluster_config(client_configuration=configuration)
            except ConfigException:
                where = kubeconfig or "~/.kube/config ($KUBECONFIG)"
                raise UserError(f"no Kubernetes cluster configured: cannot load {where}"
                                f"{f' (context {context})' if context else ''}: {err}") from None
        configuration.retries = 1  # fail fast: a user is waiting at the terminal
        # urllib3 logs each retry as a WARNING; the failure itself is reported as one line.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.networking = client.NetworkingV1Api(self.api_client)
        self.server = configuration.host

    def _call(self, action: str, target: str, fn, *args, **kwargs):
        try:
            return fn(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except Exception as err:  # ApiException or urllib3/socket errors, mapped to one line
            mapped = describe_api_error(err, action, target, self.server)
            if mapped is None:
                raise
            raise mapped from None

    def _namespaced(self, kind: str) -> tuple[Any, Any, Any]:
        """(create, patch, delete) calls of a built-in kind `stvg submit` creates."""
        if kind == "ConfigMap":
            return (self.core.create_namespaced_config_map, self.core.patch_namespaced_config_map,
                    self.core.delete_namespaced_config_map)
        if kind == "NetworkPolicy":
            return (self.networking.create_namespaced_network_policy, self.networking.patch_namespaced_network_policy,
                    self.networking.delete_namespaced_network_policy)
        raise ValueError(f"unsupported kind {kind}")

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create a ConfigMap, NetworkPolicy or RayJob; returns the object as stored (with uid)."""
        namespace, name, kind = obj["metadata"]["namespace"], obj["metadata"]["name"], obj["kind"]
        target = f"{kind} {namespace}/{name}"
        if kind == "RayJob":
            return self._call("create", target, self.custom.create_namespaced_custom_object,
                              RAY_GROUP, RAY_VERSION, namespace, RAYJOB_PLURAL, obj)
        create, _, _ = self._namespaced(kind)
        return self.api_client.sanitize_for_serialization(self._call("create", target, create, namespace, obj))

    def set_owner(self, obj: dict[str, Any], owner: dict[str, Any]) -> None:
        """Make the RayJob own a ConfigMap or NetworkPolicy, so deleting the job deletes it too."""
        meta = obj["metadata"]
        reference = {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
                     "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
        _, patch, _ = self._namespaced(obj["kind"])
        self._call("update", f"{obj['kind']} {meta['namespace']}/{meta['name']}", patch,
                   meta["name"], meta["namespace"], {"metadata": {"ownerReferences": [reference]}})

    def delete(self, obj: dict[str, Any]) -> None:
        """Delete a ConfigMap or NetworkPolicy `stvg submit` created."""
        meta = obj["metadata"]
        _, _, delete = self._namespaced(obj["kind"])
        self._call("delete", f"{obj['kind']} {meta['namespace']}/{meta['name']}", delete,
                   meta["name"], meta["namespace"])

    def get_rayjob(self, namespace: str, name: str) -> dict[str, Any]:
        return self._call("read", f"RayJob {namespace}/{name}", self.custom.get_namespaced_custom_object,
                          RAY_GROUP, RAY_VERSION, namespace, RAYJOB_PLURAL, name)

    def list_rayjobs(self, namespace: str) -> list[dict[str, Any]]:
        found = self._call("list", f"RayJobs in namespace {namespace}", self.custom.list_namespaced_custom_object,
                           RAY_GROUP, RAY_VERSION, namespace, RAYJOB_PLURAL)
        return list(found.get("items", []))

    def list_workloads(self, namespace: str) -> list[dict[str, Any]] | None:
        """Kueue Workloads of the namespace; None when Kueue is not installed (or not visible to us)."""
        from kubernetes.client.exceptions import ApiException

        try:
            found = self.custom.list_namespaced_custom_object(
                KUEUE_GROUP, KUEUE_VERSION, namespace, WORKLOAD_PLURAL, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as err:
            if err.status in (403, 404):
                return None
            raise describe_api_error(err, "list", f"Kueue Workloads in namespace {namespace}", self.server) from None
        except Exception as err:  # network failure after the RayJob call worked
            mapped = describe_api_error(err, "list", f"Kueue Workloads in namespace {namespace}", self.server)
            if mapped is None:
                raise
            raise mapped from None
        return list(found.get("items", []))
