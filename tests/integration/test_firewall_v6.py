"""Real IPv6 (and IPv4) packets through the sample VPC's router: the
ipv6firewallrules bag, ACLs whose CIDR lists carry IPv6, and routed mode.

Upstream followed: systemvm/.../configure.py (CsIpv6Firewall; CsAcl.AclDevice
__process_ip6 and __process_routing_ip4; CsAcl.add_routing_rules), the bag as
core/.../facade/SetIpv6FirewallRulesConfigItem.java writes it, and the routed
router's faults to beat: apache/cloudstack #12962 (replies to inbound
connections dropped by a default-deny egress chain) and #10970 (IPv6).

The router's IPv6 addresses, forwarding and default route come from the
guestnetwork bag as CloudStack sends it (router_guest_ip6*, router_ip6*:
cs/CsVpcGuestNetwork.py), realised by the interfaces, sysctl and routes
features; the test only gives the hosts theirs.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent_lab.netns import OUTSIDE, VM1, VM2, in_ns, wait_for

from .harness import ALL_BAGS, SAMPLE, Router, connect, ns_of, server, vpc_lab

TIER1_V6 = "fd00:10:1::/64"
ROUTER_TIER1_V6 = "fd00:10:1::1"
VM1_V6 = "fd00:10:1::10"
PUBLIC_V6 = "fd00:64::/64"
ROUTER_PUBLIC_V6 = "fd00:64::1"
OUTSIDE_V6 = "fd00:64::2"
SNAT_IP = "100.64.10.10"


def _bag(tmp: Path, name: str, doc: dict[str, Any]) -> Path:
    path = tmp / name
    path.write_text(json.dumps(doc))
    return path


def _dual_stack_tier1(tmp: Path) -> Path:
    doc = json.loads((SAMPLE / "guest_network_tier1.json").read_text())
    doc.update(router_guest_ip6=ROUTER_TIER1_V6, router_guest_ip6_gateway=ROUTER_TIER1_V6,
               router_guest_ip6_cidr=TIER1_V6, router_ip6=ROUTER_PUBLIC_V6,
               router_ip6_gateway=OUTSIDE_V6, router_ip6_cidr=PUBLIC_V6)
    return _bag(tmp, "guest_network_tier1_v6.json", doc)


def _addr(ns: str, cidr: str, dev: str) -> None:
    if cidr.split("/")[0] not in in_ns(ns, ["ip", "-6", "-o", "addr", "show", "dev", dev]):
        in_ns(ns, ["ip", "-6", "addr", "add", cidr, "dev", dev, "nodad"])


def _ipv6_lab(router: Router) -> None:
    """VM1 and the outside host on the router's IPv6 networks, routing through it."""
    r, vm1, out = router.ns, ns_of(router, "vm1"), ns_of(router, "out")
    # The agent's, from the bag.
    assert ROUTER_TIER1_V6 in in_ns(r, ["ip", "-6", "-o", "addr", "show", "dev", "eth2"])
    assert ROUTER_PUBLIC_V6 in in_ns(r, ["ip", "-6", "-o", "addr", "show", "dev", "eth1"])
    _addr(vm1, f"{VM1_V6}/64", "eth0")
    in_ns(vm1, ["ip", "-6", "route", "replace", "default", "via", ROUTER_TIER1_V6])
    _addr(out, f"{OUTSIDE_V6}/64", "eth0")
    in_ns(out, ["ip", "-6", "route", "replace", TIER1_V6, "via", ROUTER_PUBLIC_V6])
    # Both hosts answer the router itself (its own traffic, no forwarding
    # filter): neighbour discovery done and links past DAD before any verdict.
    for host in (VM1_V6, OUTSIDE_V6):
        wait_for(lambda host=host: _ping6(r, host), timeout=15, what=f"{host} from the router")


def _ping6(ns: str, host: str, wait: float = 1) -> bool:
    proc = subprocess.run(["ip", "netns", "exec", ns, "ping", "-6", "-n", "-q", "-c", "1",
                           "-W", str(wait), host], capture_output=True, check=False)
    return proc.returncode == 0


def _rule(rid: int, traffic: str, proto: str, **extra: Any) -> dict[str, Any]:
    return {"id": rid, "protocol": proto, "revoked": False, "already_added": False,
            "purpose": "Ipv6Firewall", "traffic_type": traffic,
            "default_egress_policy": False, "guest_ip6_cidr": TIER1_V6,
            "source_cidr_list": [], "dest_cidr_list": [], **extra}


# -- ipv6firewallrules ------------------------------------------------------------------


def test_ipv6_firewall_allows_drops_and_passes_established(router: Router,
                                                            tmp_path: Path) -> None:
    bag = {"type": "ipv6firewallrules", "rules": [
        _rule(1, "Ingress", "tcp", src_port_range=[22, 22], source_cidr_list=[PUBLIC_V6]),
        _rule(2, "Egress", "tcp", src_port_range=[7000, 7000], dest_cidr_list=[PUBLIC_V6]),
    ]}
    # The tier's ACL lets everything through: the IPv6 firewall alone decides.
    acl = json.loads((SAMPLE / "network_acl_tier1.json").read_text())
    acl["ingress_rules"] = [{"type": "all", "cidr": "0.0.0.0/0,::/0", "allowed": True}]
    router.apply(*ALL_BAGS, _dual_stack_tier1(tmp_path), _bag(tmp_path, "acl.json", acl),
                 _bag(tmp_path, "v6fw.json", bag))
    _ipv6_lab(router)
    vm1, out = ns_of(router, "vm1"), ns_of(router, "out")
    with server(vm1, 22), server(vm1, 8080), server(out, 7000), server(out, 7001):
        # Allowed in; the VM's answers pass a default-deny egress chain
        # (established: upstream #12962).
        assert connect(out, VM1_V6, 22) == OUTSIDE_V6
        # Not allowed in.
        assert connect(out, VM1_V6, 8080, timeout=0.5) is None
        # Allowed out, and the answers come back through the closed ingress.
        assert connect(vm1, OUTSIDE_V6, 7000) == VM1_V6
        # Default egress policy deny.
        assert connect(vm1, OUTSIDE_V6, 7001, timeout=0.5) is None
        # IPv4 of the same tier is the ACL's and NAT's business, untouched.
        assert connect(vm1, OUTSIDE, 7001) == SNAT_IP
    # No ICMPv6 rule lets echo in; neighbour discovery is never blocked: the
    # router answers the VM on the tier and the VM reaches the outside.
    assert not _ping6(out, VM1_V6)
    assert _ping6(vm1, ROUTER_TIER1_V6)


# -- ACLs whose CIDR lists carry IPv6 ----------------------------------------------------


def test_acl_with_ipv6_cidrs_judges_ipv6_traffic(router: Router, tmp_path: Path) -> None:
    acl = json.loads((SAMPLE / "network_acl_tier1.json").read_text())
    acl["ingress_rules"] = [
        {"type": "tcp", "cidr": PUBLIC_V6, "first_port": 22, "last_port": 22, "allowed": True},
        # IPv4 only: says nothing of IPv6 clients.
        {"type": "tcp", "cidr": "100.64.0.0/16", "first_port": 8080, "last_port": 8080,
         "allowed": True},
        # ICMP echo from the outside's IPv6 network only (ICMPv6 type 128).
        {"type": "icmp", "cidr": PUBLIC_V6, "icmp_type": 128, "icmp_code": -1,
         "allowed": True},
    ]
    router.apply(*ALL_BAGS, _dual_stack_tier1(tmp_path), _bag(tmp_path, "acl.json", acl))
    _ipv6_lab(router)
    vm1, out = ns_of(router, "vm1"), ns_of(router, "out")
    with server(vm1, 22), server(vm1, 8080):
        assert connect(out, VM1_V6, 22) == OUTSIDE_V6
        assert connect(out, VM1_V6, 8080, timeout=0.5) is None
    in_ns(out, ["ip", "route", "replace", "10.10.0.0/16", "via", SNAT_IP])
    assert _ping6(out, VM1_V6)
    # ICMP (IPv4) is not allowed by an IPv6 item.
    assert not _ping4(out, VM1)
    assert _ping6(vm1, ROUTER_TIER1_V6)


def _ping4(ns: str, host: str) -> bool:
    proc = subprocess.run(["ip", "netns", "exec", ns, "ping", "-4", "-n", "-q", "-c", "1",
                           "-W", "1", host], capture_output=True, check=False)
    return proc.returncode == 0


# -- routed mode -------------------------------------------------------------------------


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[Router]:
    """The sample VPC's router booted routed (is_routed=true): no NAT."""
    with vpc_lab(tmp_path) as r:
        path = r.root / "var/cache/cloud/cmd_line.json"
        doc = json.loads(path.read_text())
        doc["cmd_line"]["is_routed"] = "true"
        path.write_text(json.dumps(doc))
        r.run("boot")
        yield r


def test_routed_vpc_no_nat_acl_decides_replies_pass(routed: Router, tmp_path: Path) -> None:
    router = routed
    bags = [b for b in ALL_BAGS if b not in ("forwarding_rules.json", "staticnat_rules.json")]
    router.apply(*bags, _dual_stack_tier1(tmp_path))
    _ipv6_lab(router)
    vm1, out = ns_of(router, "vm1"), ns_of(router, "out")
    # The outside routes the VPC's own addresses to the router.
    in_ns(out, ["ip", "route", "replace", "10.10.0.0/16", "via", SNAT_IP])
    with server(vm1, 22), server(vm1, 8080), server(out, 7000):
        for vm, client in ((VM1, OUTSIDE), (VM1_V6, OUTSIDE_V6)):
            # The ACL allows 22 in: the VM's own address, the client's own address.
            assert connect(out, vm, 22) == client
            # ...and nothing else.
            assert connect(out, vm, 8080, timeout=0.5) is None
        # Replies to connections from inside pass; the VM leaves as itself.
        assert connect(vm1, OUTSIDE, 7000) == VM1
        assert connect(vm1, OUTSIDE_V6, 7000) == VM1_V6


def test_routed_tier_acl_without_egress_rules_admits_answers_not_new_egress(
        routed: Router, tmp_path: Path) -> None:
    """A routed tier's ACL judges egress even when it has no egress rule
    (configure.py CsAcl.AclDevice.__process_routing_ip4: "<dev>_egress_policy"
    ends in drop): the VM opens nothing outward, yet its answers to what the
    ACL let in pass, and the other routed tier is unaffected. Both families."""
    router = routed
    acl = json.loads((SAMPLE / "network_acl_tier1.json").read_text())
    acl["egress_rules"] = []
    bags = [b for b in ALL_BAGS
            if b not in ("forwarding_rules.json", "staticnat_rules.json", "network_acl_tier1.json")]
    router.apply(*bags, _bag(tmp_path, "network_acl_tier1_ingress_only.json", acl),
                 _dual_stack_tier1(tmp_path))
    _ipv6_lab(router)
    vm1, vm2, out = ns_of(router, "vm1"), ns_of(router, "vm2"), ns_of(router, "out")
    in_ns(out, ["ip", "route", "replace", "10.10.0.0/16", "via", SNAT_IP])
    with server(vm1, 22), server(out, 7000):
        for vm, client in ((VM1, OUTSIDE), (VM1_V6, OUTSIDE_V6)):
            # In on 22 as the ACL allows, and the VM's answers back out.
            assert connect(out, vm, 22) == client
        # Nothing new out of tier 1, in either family.
        assert connect(vm1, OUTSIDE, 7000, timeout=0.5) is None
        assert connect(vm1, OUTSIDE_V6, 7000, timeout=0.5) is None
        # Tier 2's ACL allows all egress: it leaves as itself (no NAT).
        assert connect(vm2, OUTSIDE, 7000) == VM2


def test_not_routed_the_vm_leaves_by_the_source_nat_ip(router: Router) -> None:
    # The contrast: the same VPC booted without is_routed is NATed.
    router.apply(*ALL_BAGS)
    with server(ns_of(router, "out"), 7000):
        assert connect(ns_of(router, "vm1"), OUTSIDE, 7000) == SNAT_IP
