"""firewallrules bags on the isolated router: ingress to public IPs, egress policy.

upstream: systemvm/debian/opt/cloud/bin/configure.py CsAcl.AclIP (add_rule, ingress
and egress), cs/CsAddress.py CsIP.fw_router (FIREWALL_<ip> chain ending in DROP,
FW_OUTBOUND -> FW_EGRESS_RULES), Java CommandSetupHelper.createFirewallRulesCommands
and VirtualNetworkApplianceManagerImpl.createDefaultEgressFirewallRule (the id-0 rule).
"""

from __future__ import annotations

from ..harness import Router
from .conftest import (
    FAR,
    ISO_NET,
    ISO_PUB,
    ISO_PUB_GW,
    ISO_VM,
    apply_bags,
    egress_system_rule,
    eventually_pings,
    firewall_rules,
    forward_rule,
    forward_rules,
    fw_rule,
    iso_ips,
    pings,
    seen_as,
    serve,
)


def _icmp_in(revoked: bool = False) -> dict[str, object]:
    return fw_rule(5, "icmp", "Ingress", src_ip=ISO_PUB, source_cidr_list=["0.0.0.0/0"],
                   icmp=(-1, -1), revoked=revoked, already_added=revoked)


def test_public_ip_without_ingress_rule_drops_ping(iso: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_router (mangle FIREWALL_<ip> ... -j DROP runs
    before filter INPUT's icmp accept): no ingress rule, no ping to the public IP."""
    apply_bags(iso, iso_ips())
    assert not pings(iso, "out", ISO_PUB, timeout=0.5)


def test_icmp_ingress_rule_admits_ping_and_revoking_blocks_it(iso: Router) -> None:
    """upstream: configure.py CsAcl.AclIP.add_rule (icmp, icmp_type -1 => any) and
    cs_firewallrules.py merge (revoked deletes the rule)."""
    apply_bags(iso, iso_ips(), firewall_rules(_icmp_in()))
    assert eventually_pings(iso, "out", ISO_PUB)
    apply_bags(iso, firewall_rules(_icmp_in(revoked=True)))
    assert not pings(iso, "out", ISO_PUB, timeout=0.5)


def test_egress_policy_allow_system_rule_lets_vm_out(iso: Router) -> None:
    """upstream: configure.py CsAcl.AclIP.add_rule — the default rule (protocol all, no
    source CIDRs) appends -A FW_EGRESS_RULES -j ACCEPT when default_egress_policy is true."""
    apply_bags(iso, iso_ips(), firewall_rules(egress_system_rule(True)))
    with serve(iso, "out", 7200):
        assert seen_as(iso, "vm", FAR, 7200) == ISO_PUB


def test_egress_policy_allow_user_rule_blocks_its_port(iso: Router) -> None:
    """upstream: configure.py CsAcl.AclIP.add_rule — with policy allow, user egress rules
    are inserted on top as DROP (deny list)."""
    user = fw_rule(12, "tcp", "Egress", ports=(81, 81), source_cidr_list=[ISO_NET],
                   default_egress_policy=True)
    apply_bags(iso, iso_ips(), firewall_rules(egress_system_rule(True), user))
    with serve(iso, "out", 80), serve(iso, "out", 81):
        assert seen_as(iso, "vm", FAR, 80) == ISO_PUB
        assert seen_as(iso, "vm", FAR, 81, timeout=0.5) is None


def test_egress_policy_deny_system_rule_blocks_vm(iso: Router) -> None:
    """upstream: configure.py CsAcl.AclIP.add_rule — default rule with policy false
    appends -A FW_EGRESS_RULES -j DROP."""
    apply_bags(iso, iso_ips(), firewall_rules(egress_system_rule(False)))
    with serve(iso, "out", 80):
        assert seen_as(iso, "vm", FAR, 80, timeout=0.5) is None


def test_egress_policy_deny_user_rule_allows_its_port(iso: Router) -> None:
    """upstream: configure.py CsAcl.AclIP.add_rule — with policy deny, user egress rules
    are ACCEPT (allow list) and everything else is dropped."""
    user = fw_rule(13, "tcp", "Egress", ports=(80, 80), source_cidr_list=[ISO_NET],
                   default_egress_policy=False)
    apply_bags(iso, iso_ips(), firewall_rules(egress_system_rule(False), user))
    with serve(iso, "out", 80), serve(iso, "out", 81):
        assert seen_as(iso, "vm", FAR, 80) == ISO_PUB
        assert seen_as(iso, "vm", FAR, 81, timeout=0.5) is None


def test_ingress_rule_opens_port_forward(iso: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_router (FIREWALL_<ip> DROP before nat DNAT) and
    configure.py CsAcl.AclIP.add_rule (-A FIREWALL_<ip> -p tcp --dport 2222 -j RETURN)."""
    apply_bags(iso, iso_ips(),
               forward_rules(forward_rule(ISO_PUB, "2222:2222", ISO_VM, "22:22")))
    with serve(iso, "vm", 22):
        assert seen_as(iso, "out", ISO_PUB, 2222, timeout=0.5) is None
        apply_bags(iso, firewall_rules(
            fw_rule(20, "tcp", "Ingress", src_ip=ISO_PUB, ports=(2222, 2222),
                    source_cidr_list=["0.0.0.0/0"])))
        assert seen_as(iso, "out", ISO_PUB, 2222) == ISO_PUB_GW


def test_ingress_rule_source_cidr_restricts_clients(iso: Router) -> None:
    """upstream: configure.py CsAcl.AclIP.add_rule (one -s <cidr> rule per
    source_cidr_list entry)."""
    apply_bags(iso, iso_ips(),
               forward_rules(forward_rule(ISO_PUB, "2222:2222", ISO_VM, "22:22")),
               firewall_rules(fw_rule(21, "tcp", "Ingress", src_ip=ISO_PUB, ports=(2222, 2222),
                                      source_cidr_list=["100.64.99.0/24"])))
    with serve(iso, "vm", 22):
        assert seen_as(iso, "out", ISO_PUB, 2222, src=FAR) == FAR
        assert seen_as(iso, "out", ISO_PUB, 2222, src=ISO_PUB_GW, timeout=0.5) is None
