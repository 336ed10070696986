"""A routed isolated network (CloudStack 4.20 routed mode, boot parameter
is_routed=true): no NAT, the routing firewall from the firewallrules bag.

upstream: systemvm/debian/opt/cloud/bin/configure.py CsAcl.add_routing_rules
(fw_chain_ingress: the ingress rules, then drop; fw_chain_egress: the egress
exceptions, then the default policy), cs/CsDatabag.py CsCmdLine; the fault to
beat: apache/cloudstack #12962 (with a default-deny egress policy the VM's
answers to allowed inbound connections were dropped).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vragent_lab.netns import Lab, in_ns

from ..harness import Router
from .conftest import (
    FAR,
    ISO_CMDLINE,
    ISO_DATA_NICS,
    ISO_NET,
    ISO_PUB,
    ISO_PUB_GW,
    ISO_VM,
    _fresh_router,
    apply_bags,
    egress_system_rule,
    firewall_rules,
    fw_rule,
    iso_ips,
    serve,
)
from .conftest import seen_as as _seen_as


@pytest.fixture
def routed(iso_lab: Lab, tmp_path: Path) -> Router:
    router = _fresh_router(iso_lab, tmp_path, {**ISO_CMDLINE, "is_routed": "true"},
                           ISO_DATA_NICS)
    # The outside routes the network's own addresses to the router.
    in_ns(f"{iso_lab.prefix}out", ["ip", "route", "replace", ISO_NET, "via", ISO_PUB])
    return router


def seen_as(router: Router, client: str, host: str, port: int, timeout: float = 2.0) -> str | None:
    return _seen_as(router, client, host, port, timeout=timeout)


def test_routing_firewall_decides_inbound_replies_pass_no_nat(routed: Router) -> None:
    apply_bags(routed, iso_ips(), firewall_rules(
        # createRoutingFirewallRule: an ingress rule that guards no public IP.
        fw_rule(30, "tcp", "Ingress", ports=(8080, 8080), source_cidr_list=["0.0.0.0/0"],
                dest_cidr_list=[ISO_NET]),
        # Default egress deny, port 7000 out allowed.
        egress_system_rule(False),
        fw_rule(31, "tcp", "Egress", ports=(7000, 7000), source_cidr_list=[ISO_NET],
                dest_cidr_list=["0.0.0.0/0"]),
    ))
    with serve(routed, "vm", 8080), serve(routed, "vm", 8081), \
            serve(routed, "out", 7000), serve(routed, "out", 7001):
        # Allowed in, to the VM's own address, from the client's own address;
        # the VM's answers pass the default-deny egress (#12962).
        assert seen_as(routed, "out", ISO_VM, 8080) == ISO_PUB_GW
        assert seen_as(routed, "out", ISO_VM, 8081, timeout=0.5) is None
        # Out as itself (no source NAT), the answers back in.
        assert seen_as(routed, "vm", FAR, 7000) == ISO_VM
        assert seen_as(routed, "vm", FAR, 7001, timeout=0.5) is None


def test_routing_firewall_matches_each_rules_sources_destinations_protocol(
        routed: Router) -> None:
    """configure.py CsAcl.add_routing_rules: "ip saddr <source_cidr_list>
    ip daddr <dest_cidr_list> <protocol> dport <ports> accept" in
    fw_chain_ingress, then drop. Each part of a rule narrows what it admits."""
    apply_bags(routed, iso_ips(), firewall_rules(
        fw_rule(40, "tcp", "Ingress", ports=(8080, 8080), source_cidr_list=[f"{FAR}/32"],
                dest_cidr_list=[f"{ISO_VM}/32"]),
        # Another destination of the network: not the VM.
        fw_rule(41, "udp", "Ingress", ports=(9000, 9000), source_cidr_list=["0.0.0.0/0"],
                dest_cidr_list=["10.1.1.99/32"]),
        fw_rule(42, "udp", "Ingress", ports=(9001, 9001), source_cidr_list=["0.0.0.0/0"],
                dest_cidr_list=[ISO_NET]),
        egress_system_rule(True),
    ))
    with serve(routed, "vm", 8080), serve(routed, "vm", 9000, "udp"), \
            serve(routed, "vm", 9001, "udp"), serve(routed, "vm", 9001):
        # The allowed source only, as itself.
        assert _seen_as(routed, "out", ISO_VM, 8080, src=FAR) == FAR
        assert _seen_as(routed, "out", ISO_VM, 8080, timeout=0.5) is None
        # A rule for another destination admits nothing to the VM.
        assert _seen_as(routed, "out", ISO_VM, 9000, proto="udp", timeout=0.5) is None
        # UDP to the network, and the VM's answer back (established).
        assert _seen_as(routed, "out", ISO_VM, 9001, proto="udp", src=FAR) == FAR
        # TCP on the UDP rule's port: the protocol is part of the rule.
        assert _seen_as(routed, "out", ISO_VM, 9001, timeout=0.5) is None


def test_not_routed_refuses_a_routing_rule(iso: Router) -> None:
    proc = apply_bags(iso, iso_ips(), firewall_rules(
        fw_rule(30, "tcp", "Ingress", ports=(8080, 8080), source_cidr_list=["0.0.0.0/0"])),
        check=False)
    assert proc.returncode != 0
    assert "firewallrules.30: an Ingress rule needs src_ip" in proc.stderr
