"""staticnatrules bags (1:1 NAT).

upstream: systemvm/debian/opt/cloud/bin/configure.py
CsForwardingRules.processStaticNatRule (nat PREROUTING DNAT all protocols, POSTROUTING
-o <dev> -s <vm>/32 -j SNAT --to-source <pub> inserted in front of the source NAT rule).
"""

from __future__ import annotations

from ..harness import Router
from .conftest import (
    FAR,
    ISO_PUB2,
    ISO_PUB_GW,
    ISO_VM,
    OUT,
    PUB3,
    SNAT_IP,
    acl1,
    acl2,
    acl_rule,
    apply_bags,
    egress_system_rule,
    firewall_rules,
    fw_rule,
    iso_ips,
    seen_as,
    serve,
    static_nat_rule,
    static_nat_rules,
    tier1,
    tier2,
    vpc_ips,
)

VM2 = "10.10.2.10"
OPEN_OUT = [acl_rule("all", "0.0.0.0/0")]
IN_80 = [acl_rule("tcp", "0.0.0.0/0", ports=(80, 80))]


def _vpc_base(vpc: Router) -> None:
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1([], OPEN_OUT), acl2(IN_80, OPEN_OUT),
               static_nat_rules(static_nat_rule(PUB3, VM2)))


def test_inbound_reaches_vm_with_client_address(vpc: Router) -> None:
    """upstream: configure.py CsForwardingRules.processStaticNatRule (-A PREROUTING
    -d <pub>/32 -j DNAT --to-destination <vm>); revoke removes it."""
    _vpc_base(vpc)
    with serve(vpc, "vm2", 80):
        assert seen_as(vpc, "out", PUB3, 80) == OUT
        apply_bags(vpc, static_nat_rules(static_nat_rule(PUB3, VM2, revoke=True)))
        assert seen_as(vpc, "out", PUB3, 80, timeout=0.5) is None


def test_outbound_leaves_with_static_nat_ip(vpc: Router) -> None:
    """upstream: configure.py CsForwardingRules.processStaticNatRule (front:
    -A POSTROUTING -o <dev> -s <vm>/32 -j SNAT --to-source <pub>); other VMs keep
    the source NAT IP."""
    _vpc_base(vpc)
    with serve(vpc, "out", 7300):
        assert seen_as(vpc, "vm2", FAR, 7300) == PUB3
        assert seen_as(vpc, "vm1", FAR, 7300) == SNAT_IP


def test_isolated_static_nat_gated_by_ingress_firewall(iso: Router) -> None:
    """upstream: configure.py CsForwardingRules.processStaticNatRule and
    cs/CsAddress.py CsIP.fw_router (FIREWALL_<pub> still applies to the static NAT IP)."""
    apply_bags(iso, iso_ips(ISO_PUB2), firewall_rules(egress_system_rule(True)),
               static_nat_rules(static_nat_rule(ISO_PUB2, ISO_VM)))
    with serve(iso, "vm", 80), serve(iso, "out", 7301):
        assert seen_as(iso, "out", ISO_PUB2, 80, timeout=0.5) is None
        apply_bags(iso, firewall_rules(
            fw_rule(30, "tcp", "Ingress", src_ip=ISO_PUB2, ports=(80, 80),
                    source_cidr_list=["0.0.0.0/0"])))
        assert seen_as(iso, "out", ISO_PUB2, 80) == ISO_PUB_GW
        assert seen_as(iso, "vm", FAR, 7301) == ISO_PUB2
