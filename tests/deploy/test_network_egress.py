"""Where the gateway pod may connect, as its NetworkPolicies say, destination by destination.

The policies are evaluated as a CNI would for an ipBlock peer: a connection is allowed when
some egress rule of some policy selecting the pod allows both the address (a rule without
``to`` allows every address) and the port (a rule without ``ports`` allows every port).
Webhook receivers and Databricks workspaces on public HTTPS are reached; the cloud metadata
service and in-cluster plain HTTP are not; the ha overlay reaches its PostgreSQL.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.deploy.kustomize import render
from tests.deploy.manifests import BASE, DEPLOY, load_docs

Doc = dict[str, Any]
PUBLIC_V4 = "52.14.200.10"  # a cloud provider's public address, as a workspace's is
PUBLIC_V6 = "2600:1f18::10"


def _peer_allows(peer: Doc, address: str) -> bool:
    block = peer.get("ipBlock")
    if block is None:  # a namespace or pod selector: in-cluster pods, not an address test
        return False
    ip = ipaddress.ip_address(address)
    network = ipaddress.ip_network(block["cidr"])
    if ip.version != network.version or ip not in network:
        return False
    return not any(ip in ipaddress.ip_network(cidr) for cidr in block.get("except", []))


def _rule_allows(rule: Doc, address: str, port: int, protocol: str) -> bool:
    ports = rule.get("ports")
    port_ok = ports is None or any(
        p.get("protocol", "TCP") == protocol and p.get("port") == port for p in ports
    )
    peers = rule.get("to")
    return port_ok and (peers is None or any(_peer_allows(peer, address) for peer in peers))


def allows(policies: list[Doc], address: str, port: int, protocol: str = "TCP") -> bool:
    egress = [p["spec"] for p in policies if "Egress" in p["spec"]["policyTypes"]]
    return any(_rule_allows(r, address, port, protocol) for s in egress for r in s["egress"])


def base_policies() -> list[Doc]:
    return [d for d in load_docs(BASE / "networkpolicy.yaml") if d["kind"] == "NetworkPolicy"]


def test_the_evaluator_reads_except_ports_and_open_rules() -> None:
    """The evaluation itself, on a policy written for it."""
    policy = {
        "spec": {
            "policyTypes": ["Egress"],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}]},
                {
                    "to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                    "ports": [{"protocol": "TCP", "port": 443}],
                },
            ],
        }
    }
    assert allows([policy], "10.1.1.1", 53, "UDP")
    assert allows([policy], PUBLIC_V4, 443)
    assert not allows([policy], "10.1.1.1", 443)
    assert not allows([policy], PUBLIC_V4, 80)
    assert not allows([policy], PUBLIC_V6, 443)


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6])
def test_webhook_receivers_and_workspaces_on_public_https_are_reached(address: str) -> None:
    """Databricks, Entra ID and a tenant's webhook receiver: HTTPS to a public address."""
    assert allows(base_policies(), address, 443)


@pytest.mark.parametrize(
    ("address", "port"),
    [
        ("169.254.169.254", 80),  # the cloud metadata service
        ("169.254.169.254", 443),
        ("100.100.100.200", 443),  # carrier-grade NAT (Alibaba's metadata service)
        ("fe80::1", 443),
        ("fd00:ec2::254", 443),  # the AWS metadata service over IPv6
        (PUBLIC_V4, 80),  # plain HTTP, even to a public receiver
        (PUBLIC_V4, 8443),
        ("10.96.0.20", 8080),  # an in-cluster receiver on plain HTTP needs its own rule
    ],
)
def test_what_no_rule_opens(address: str, port: int) -> None:
    assert not allows(base_policies(), address, port)


@pytest.mark.parametrize("port", [443, 6443])
def test_the_kubernetes_api_server_on_a_private_address_is_reached(port: int) -> None:
    """The API server's endpoint, after Service translation, on either port it listens on."""
    assert allows(base_policies(), "10.0.0.1", port)
    assert allows(base_policies(), "172.20.0.1", port)


def test_dns_is_reached_over_udp_and_tcp() -> None:
    assert allows(base_policies(), "10.96.0.10", 53, "UDP")
    assert allows(base_policies(), "10.96.0.10", 53, "TCP")


def test_the_ha_overlay_reaches_its_postgresql_and_single_does_not() -> None:
    """The ha ledger is PostgreSQL on 5432; single's SQLite needs no network."""
    ha = [d for d in render(DEPLOY / "overlays" / "ha") if d["kind"] == "NetworkPolicy"]
    single = [d for d in render(DEPLOY / "overlays" / "single") if d["kind"] == "NetworkPolicy"]
    assert allows(ha, "10.20.30.40", 5432)
    assert not allows(single, "10.20.30.40", 5432)
    assert not allows(ha, "169.254.169.254", 5432)
    assert not allows(ha, PUBLIC_V4, 5432)


def test_every_policy_selects_the_gateway_pods() -> None:
    """A policy that selected nothing would open nothing; one selecting more would open too
    much."""
    for policy in render(DEPLOY / "overlays" / "ha"):
        if policy["kind"] == "NetworkPolicy":
            assert policy["spec"]["podSelector"]["matchLabels"] == {
                "app.kubernetes.io/name": "lakegate",
                "app.kubernetes.io/component": "gateway",
            }
