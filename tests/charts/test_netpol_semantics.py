"""The NetworkPolicy evaluator the chart tests rely on (tests/charts/_netpol.py), checked on small
hand-written policies whose outcome the Kubernetes documentation states."""

from __future__ import annotations

from tests.charts._netpol import Address, Pod, allowed

WEB = Pod("prod", {"app": "web"})
DB = Pod("prod", {"app": "db"})
DEV_WEB = Pod("dev", {"app": "web"}, namespace_labels={"team": "a"})


def policy(spec: dict, namespace: str = "prod") -> dict:
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def test_no_policy_allows_everything():
    assert allowed([], WEB, DB, 5432) and allowed([], Address("8.8.8.8"), DB, 1)


def test_default_deny_ingress_isolates_the_selected_pods_only():
    deny = [policy({"podSelector": {}, "policyTypes": ["Ingress"]})]
    assert not allowed(deny, WEB, DB, 5432)
    assert allowed(deny, DB, Pod("dev", {"app": "db"}), 5432)  # another namespace is not isolated
    assert allowed(deny, DB, Address("8.8.8.8"), 53)  # egress is not isolated


def test_pod_and_namespace_selectors_in_one_entry_are_and_in_two_entries_or():
    both = [policy({"podSelector": {"matchLabels": {"app": "db"}},
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}},
                                           "podSelector": {"matchLabels": {"app": "web"}}}]}]})]
    either = [policy({"podSelector": {"matchLabels": {"app": "db"}},
                      "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}},
                                            {"podSelector": {"matchLabels": {"app": "web"}}}]}]})]
    dev_other = Pod("dev", {"app": "other"}, namespace_labels={"team": "a"})
    assert allowed(both, DEV_WEB, DB, 5432) and not allowed(both, WEB, DB, 5432)
    assert not allowed(both, dev_other, DB, 5432)
    assert allowed(either, DEV_WEB, DB, 5432) and allowed(either, WEB, DB, 5432)
    assert allowed(either, dev_other, DB, 5432)


def test_ports_protocols_and_ip_blocks():
    rules = [policy({"podSelector": {"matchLabels": {"app": "db"}},
                     "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
                                  "ports": [{"port": 5432}, {"port": 9000, "endPort": 9002, "protocol": "UDP"}]}]})]
    assert allowed(rules, Address("10.2.3.4"), DB, 5432)
    assert not allowed(rules, Address("10.1.3.4"), DB, 5432)  # in except
    assert not allowed(rules, Address("11.0.0.1"), DB, 5432)
    assert not allowed(rules, Address("10.2.3.4"), DB, 5433)
    assert allowed(rules, Address("10.2.3.4"), DB, 9001, "UDP") and not allowed(rules, Address("10.2.3.4"), DB, 9001)


def test_egress_needs_a_rule_once_the_source_is_isolated_for_egress():
    to_db = {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": 5432}]}
    egress = [policy({"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"], "egress": [to_db]})]
    assert allowed(egress, WEB, DB, 5432)
    assert not allowed(egress, WEB, Address("8.8.8.8"), 443)
    assert not allowed(egress, WEB, Pod("dev", {"app": "db"}), 5432)  # a bare podSelector is the policy's namespace
