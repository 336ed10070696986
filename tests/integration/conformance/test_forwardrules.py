"""forwardrules bags (port forwarding) on the VPC router.

upstream: systemvm/debian/opt/cloud/bin/configure.py CsForwardingRules.forward_vpc
(DNAT, -s <source_cidr_list>), cs_forwardingrules.py merge (ruleCompare /
cidrsConflict: one public port, several disjoint source CIDR lists) and
CsForwardingRules.forward_ftp_helper (CT --helper ftp for a forward to port 21).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from ..harness import Router
from .conftest import (
    FAR,
    OUT,
    PUB2,
    TOOLS,
    VM1,
    VM2,
    acl1,
    acl2,
    acl_rule,
    apply_bags,
    forward_rule,
    forward_rules,
    ns,
    reach,
    seen_as,
    serve,
    tier1,
    tier2,
    vpc_ips,
)

# Both tiers admit tcp/udp on every port from anywhere, explicit 1-65535 ranges.
OPEN_IN = [acl_rule("tcp", "0.0.0.0/0", ports=(1, 65535)),
           acl_rule("udp", "0.0.0.0/0", ports=(1, 65535))]
OPEN_OUT = [acl_rule("all", "0.0.0.0/0")]


def _base(vpc: Router, *more: dict[str, Any]) -> None:
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1(OPEN_IN, OPEN_OUT),
               acl2(OPEN_IN, OPEN_OUT), *more)


def test_dnat_keeps_client_address_and_revoke_removes_it(vpc: Router) -> None:
    """upstream: configure.py CsForwardingRules.forward_vpc (-A PREROUTING -d <pub>/32
    -p tcp --dport 2222 -j DNAT --to-destination vm:22) and cs_forwardingrules.py merge
    (revoke deletes)."""
    _base(vpc, forward_rules(forward_rule(PUB2, "2222:2222", VM1, "22:22")))
    with serve(vpc, "vm1", 22):
        assert reach(vpc, "out", PUB2, 2222) == f"vm1 {OUT}"
        apply_bags(vpc, forward_rules(forward_rule(PUB2, "2222:2222", VM1, "22:22",
                                                   revoke=True)))
        assert reach(vpc, "out", PUB2, 2222, timeout=0.5) is None


def test_udp_forward(vpc: Router) -> None:
    """upstream: configure.py CsForwardingRules.forward_vpc (-p udp)."""
    _base(vpc, forward_rules(forward_rule(PUB2, "5353:5353", VM1, "5353:5353",
                                          protocol="udp")))
    with serve(vpc, "vm1", 5353, "udp"):
        assert seen_as(vpc, "out", PUB2, 5353, proto="udp") == OUT


def test_same_public_port_to_two_vms_by_source_cidr(vpc: Router) -> None:
    """upstream: cs_forwardingrules.py merge (ruleCompare with cidrsConflict: disjoint
    source_cidr_list strings are different rules) and configure.py
    CsForwardingRules.forward_vpc (-s <source_cidr_list>)."""
    _base(vpc, forward_rules(
        forward_rule(PUB2, "2222:2222", VM1, "22:22", source_cidr_list=f"{OUT}/32"),
        forward_rule(PUB2, "2222:2222", VM2, "22:22",
                     source_cidr_list="100.64.99.0/24,100.64.98.0/24"),
    ))
    with serve(vpc, "vm1", 22), serve(vpc, "vm2", 22):
        assert reach(vpc, "out", PUB2, 2222, src=OUT) == f"vm1 {OUT}"
        assert reach(vpc, "out", PUB2, 2222, src=FAR) == f"vm2 {FAR}"


def test_forward_outside_its_source_cidrs_is_not_forwarded(vpc: Router) -> None:
    """upstream: configure.py CsForwardingRules.forward_vpc (-s <source_cidr_list> on the
    DNAT rule: other clients are not translated)."""
    _base(vpc, forward_rules(
        forward_rule(PUB2, "2222:2222", VM1, "22:22", source_cidr_list="100.64.99.0/24")))
    with serve(vpc, "vm1", 22):
        assert reach(vpc, "out", PUB2, 2222, src=FAR) == f"vm1 {FAR}"
        assert reach(vpc, "out", PUB2, 2222, src=OUT, timeout=0.5) is None


def _ftp_get(vpc: Router, client: str, host: str, port: int) -> dict[str, Any]:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns(vpc, client), sys.executable, TOOLS, "ftpget", host,
         str(port), "2"],
        capture_output=True, text=True, check=False, timeout=20,
    )
    result: dict[str, Any] = json.loads(proc.stdout or "{}")
    return result


def test_ftp_passive_data_connection_through_port_forward(vpc: Router) -> None:
    """upstream: configure.py CsForwardingRules.forward_ftp_helper (raw PREROUTING
    -p tcp --dport 21 -j CT --helper ftp): nf_nat_ftp rewrites the 227 reply to the
    public IP and the data connection is DNATed to the VM."""
    _base(vpc, forward_rules(forward_rule(PUB2, "21:21", VM1, "21:21")))
    server = subprocess.Popen(
        ["ip", "netns", "exec", ns(vpc, "vm1"), sys.executable, TOOLS, "ftpserve", "21",
         VM1, "hello-ftp-data"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        got = _ftp_get(vpc, "out", PUB2, 21)
    finally:
        server.kill()
        server.wait()
    assert got.get("greeting", "").startswith("220"), got
    assert got.get("reply_ip") == PUB2, got
    assert got.get("data") == "hello-ftp-data", got
