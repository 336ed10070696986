"""Real packets through a router configured from the sample VPC bags.

Topology (vragent_lab.netns.sample_vpc): outside host on the public link, one
VM per guest tier, a private-gateway peer with a network behind it.
"""

from __future__ import annotations

import json
from pathlib import Path

from vragent_lab.netns import BEHIND_PGW, OUTSIDE, OUTSIDE_FAR, VM1, VM2

from .harness import ALL_BAGS, SAMPLE, Router, connect, ns_of, server

SNAT_IP, PF_IP, STATIC_IP = "100.64.10.10", "100.64.10.11", "100.64.10.12"


def _revoked(tmp: Path, name: str, key: str) -> Path:
    bag = json.loads((SAMPLE / name).read_text())
    for rule in bag[key]:
        rule["revoke"] = True
    out = tmp / f"revoke-{name}"
    out.write_text(json.dumps(bag))
    return out


def test_vm_to_outside_leaves_with_source_nat_ip(router: Router) -> None:
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "out"), 7000):
        assert connect(ns_of(router, "vm1"), OUTSIDE_FAR, 7000) == SNAT_IP
        assert connect(ns_of(router, "vm1"), OUTSIDE, 7000) == SNAT_IP


def test_port_forward_reaches_vm_and_revoking_removes_it(router: Router, tmp_path: Path) -> None:
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "vm1"), 22):
        # Inbound keeps the client's address: the VM sees who really connected.
        assert connect(ns_of(router, "out"), PF_IP, 2222) == OUTSIDE
        # A public port that is not forwarded leads nowhere.
        assert connect(ns_of(router, "out"), PF_IP, 22, timeout=0.5) is None
        router.apply(_revoked(tmp_path, "forwarding_rules.json", "rules"))
        assert connect(ns_of(router, "out"), PF_IP, 2222, timeout=0.5) is None


def test_hairpin_vm_reaches_public_ip_of_its_own_vpc(router: Router) -> None:
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "vm1"), 22):
        # The VM forwarded to is the client itself: without hairpin NAT the
        # reply would bypass the router and the connection would never open.
        assert connect(ns_of(router, "vm1"), PF_IP, 2222) == "10.10.1.1"
        assert connect(ns_of(router, "vm2"), PF_IP, 2222) == "10.10.1.1"


def test_static_nat_both_ways(router: Router, tmp_path: Path) -> None:
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "vm2"), 80), server(ns_of(router, "out"), 7000):
        assert connect(ns_of(router, "out"), STATIC_IP, 80) == OUTSIDE
        # Outbound, the VM uses its own public IP, not the source-NAT one.
        assert connect(ns_of(router, "vm2"), OUTSIDE_FAR, 7000) == STATIC_IP
        assert connect(ns_of(router, "vm1"), OUTSIDE_FAR, 7000) == SNAT_IP
        router.apply(_revoked(tmp_path, "staticnat_rules.json", "rules"))
        assert connect(ns_of(router, "out"), STATIC_IP, 80, timeout=0.5) is None
        assert connect(ns_of(router, "vm2"), OUTSIDE_FAR, 7000) == SNAT_IP


def test_acl_allows_one_port_and_denies_another_between_tiers(router: Router) -> None:
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "vm2"), 8080), server(ns_of(router, "vm2"), 9090):
        assert connect(ns_of(router, "vm1"), VM2, 8080) == VM1
        assert connect(ns_of(router, "vm1"), VM2, 9090, timeout=0.5) is None
    # Tier 1 admits ssh only: tier 2 reaching another port of VM1 is refused.
    with server(ns_of(router, "vm1"), 22), server(ns_of(router, "vm1"), 8080):
        assert connect(ns_of(router, "vm2"), VM1, 22) == VM2
        assert connect(ns_of(router, "vm2"), VM1, 8080, timeout=0.5) is None


def test_acl_change_takes_effect_and_rolls_back(router: Router, tmp_path: Path) -> None:
    router.apply(*ALL_BAGS)
    bag = json.loads((SAMPLE / "network_acl_tier2.json").read_text())
    bag["ingress_rules"][1]["allowed"] = True  # 9090 from tier 1
    changed = tmp_path / "acl.json"
    changed.write_text(json.dumps(bag))
    with server(ns_of(router, "vm2"), 9090):
        assert connect(ns_of(router, "vm1"), VM2, 9090, timeout=0.5) is None
        router.apply(changed)
        assert connect(ns_of(router, "vm1"), VM2, 9090) == VM1
        router.run("rollback")
        assert connect(ns_of(router, "vm1"), VM2, 9090, timeout=0.5) is None


def test_static_route_via_private_gateway(router: Router, tmp_path: Path) -> None:
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "pgw"), 7001):
        # Routed, not NATed: the network behind the private gateway sees the VM.
        assert connect(ns_of(router, "vm1"), BEHIND_PGW, 7001) == VM1
        router.apply(_revoked(tmp_path, "static_routes.json", "routes"))
        assert connect(ns_of(router, "vm1"), BEHIND_PGW, 7001, timeout=0.5) is None
