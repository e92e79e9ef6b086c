"""What a set of NetworkPolicy objects (networking.k8s.io/v1) lets through, decided as the Kubernetes
API reference describes it, so the chart's policies can be tested by what they allow rather than by
their text:

- a pod is isolated for ingress (egress) when some policy in its namespace selects it with
  `podSelector` and lists Ingress (Egress) in `policyTypes` (which defaults to Ingress, plus Egress
  when the policy has an `egress` section); then only what some rule of those policies allows gets
  through, and a connection needs both the source's egress and the destination's ingress;
- a rule allows a peer when one of its `from`/`to` entries matches (none listed: every peer) and one
  of its `ports` matches (none listed: every port);
- an entry with only `podSelector` means pods of the policy's own namespace; with only
  `namespaceSelector`, every pod of the selected namespaces; with both, the selected pods of the
  selected namespaces; `ipBlock` matches addresses in `cidr` outside `except`;
- a label selector matches when every `matchLabels` pair and `matchExpressions` entry holds; an
  empty selector matches everything; namespaces carry `kubernetes.io/metadata.name`.
Named ports are not supported (the chart uses numbers).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional, Union


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str]
    ip: str = "10.244.0.10"
    namespace_labels: dict[str, str] = field(default_factory=dict)

    def ns_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.namespace_labels}


@dataclass(frozen=True)
class Address:
    """Something outside the cluster's pods: a browser, S3, a DNS server."""

    ip: str


Endpoint = Union[Pod, Address]


def selects(selector: Optional[dict[str, Any]], labels: dict[str, str]) -> bool:
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        holds = {"In": key in labels and labels[key] in values,
                 "NotIn": key not in labels or labels[key] not in values,
                 "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not holds:
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    if "ipBlock" in peer:
        address = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return (address in ipaddress.ip_network(block["cidr"])
                and not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except", [])))
    if not isinstance(other, Pod):
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], other.ns_labels()):
            return False
    elif other.namespace != policy_namespace:
        return False
    return "podSelector" not in peer or selects(peer["podSelector"], other.labels)


def _port_matches(ports: Optional[list[dict[str, Any]]], port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        if isinstance(entry["port"], str):
            raise NotImplementedError("named ports")
        if entry["port"] <= port <= entry.get("endPort", entry["port"]):
            return True
    return False


def _types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def _direction_allows(policies: list[dict[str, Any]], pod: Pod, direction: str, other: Endpoint,
                      port: int, protocol: str) -> bool:
    """Whether `pod`'s policies let `other` in (Ingress) or let `pod` reach `other` (Egress)."""
    mine = [p for p in policies if p["metadata"]["namespace"] == pod.namespace
            and selects(p["spec"].get("podSelector"), pod.labels) and direction in _types(p)]
    if not mine:
        return True  # not isolated in this direction
    key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in mine:
        namespace = policy["metadata"]["namespace"]
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, namespace, other) for peer in peers)) \
                    and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def allowed(policies: list[dict[str, Any]], source: Endpoint, destination: Endpoint, port: int,
            protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to `destination`:`port` under `policies` (each with its
    metadata.namespace set, as the API server sets it)."""
    policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
    egress_ok = not isinstance(source, Pod) or _direction_allows(policies, source, "Egress", destination, port,
                                                                  protocol)
    ingress_ok = not isinstance(destination, Pod) or _direction_allows(policies, destination, "Ingress", source,
                                                                        port, protocol)
    return egress_ok and ingress_ok
