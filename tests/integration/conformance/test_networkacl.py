"""networkacl bags on the VPC router: per-tier ingress/egress ACLs.

upstream: systemvm/debian/opt/cloud/bin/configure.py CsAcl.AclDevice (rule
generation, first match wins in ACL item order) and cs/CsAddress.py
CsIP.fw_vpcrouter (ACL_INBOUND_<dev> ending in DROP; ACL_OUTBOUND_<dev>).
"""

from __future__ import annotations

from ..harness import Router
from .conftest import (
    ALLOW_ALL,
    FAR,
    GW1,
    GW2,
    SNAT_IP,
    VM1,
    VM2,
    acl1,
    acl2,
    acl_rule,
    apply_bags,
    eventually_pings,
    pings,
    seen_as,
    serve,
    tier1,
    tier2,
    vpc_ips,
)

# Tier 2 may go anywhere: tests about tier 1's ingress use vm2 as the client.
TIER2_OPEN = acl2([], ALLOW_ALL)


def test_tier_without_egress_rules_allows_all_egress(vpc: Router) -> None:
    """CloudStack's documented ACL default (all outgoing traffic allowed until an
    egress rule exists); the 4.x configure.py CsAcl.AclDevice adds the final
    egress DROP only "if one or more egress rules exist". Current apache
    master adds none at all (see README, "CloudStack semantics")."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1([], []))
    with serve(vpc, "out", 7123):
        assert seen_as(vpc, "vm1", FAR, 7123) == SNAT_IP


def test_egress_rules_allow_listed_port_and_drop_the_rest(vpc: Router) -> None:
    """Egress rules present: the listed ones pass, then DROP (the documented
    default, and 4.x configure.py CsAcl.AclDevice)."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2(),
               acl1([], [acl_rule("tcp", "0.0.0.0/0", ports=(80, 80))]))
    with serve(vpc, "out", 80), serve(vpc, "out", 81):
        assert seen_as(vpc, "vm1", FAR, 80) == SNAT_IP
        assert seen_as(vpc, "vm1", FAR, 81, timeout=0.5) is None


def test_ingress_is_denied_by_default(vpc: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_vpcrouter (-A ACL_INBOUND_ethX -j DROP always)."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1([], ALLOW_ALL), TIER2_OPEN)
    with serve(vpc, "vm1", 8080):
        assert seen_as(vpc, "vm2", VM1, 8080, timeout=0.5) is None


def test_ingress_rule_admits_its_port_only(vpc: Router) -> None:
    """upstream: configure.py CsAcl.AclDevice.AclRule (-A ACL_INBOUND_ethX -p tcp
    -s <cidr> -m tcp --dport P -j ACCEPT)."""
    ingress = [acl_rule("tcp", "10.10.2.0/24", ports=(8080, 8080))]
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1(ingress, ALLOW_ALL), TIER2_OPEN)
    with serve(vpc, "vm1", 8080), serve(vpc, "vm1", 9090):
        assert seen_as(vpc, "vm2", VM1, 8080) == VM2
        assert seen_as(vpc, "vm2", VM1, 9090, timeout=0.5) is None


def test_tcp_udp_ports_zero_mean_all_ports(vpc: Router) -> None:
    """upstream: SetNetworkAclConfigItem / NetworkACLTO.getStringPortRange ("0:0" for
    a rule without ports) and configure.py CsAcl.AclDevice (nft paths: 0 => all ports)."""
    ingress = [acl_rule("tcp", "10.10.2.0/24", ports=(0, 0)),
               acl_rule("udp", "10.10.2.0/24", ports=(0, 0))]
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1(ingress, ALLOW_ALL), TIER2_OPEN)
    with serve(vpc, "vm1", 8080), serve(vpc, "vm1", 9090), serve(vpc, "vm1", 5353, "udp"):
        assert seen_as(vpc, "vm2", VM1, 8080) == VM2
        assert seen_as(vpc, "vm2", VM1, 9090) == VM2
        assert seen_as(vpc, "vm2", VM1, 5353, proto="udp") == VM2


def test_any_cidr_with_ipv6_part_matches_every_ipv4_source(vpc: Router) -> None:
    """upstream: SetNetworkACLCommand.generateFwRules (empty cidr list =>
    "0.0.0.0/0,::/0") and configure.py removeUndesiredCidrs (IPv6 part dropped)."""
    ingress = [acl_rule("tcp", "0.0.0.0/0,::/0", ports=(8080, 8080))]
    egress = [acl_rule("all", "0.0.0.0/0,::/0")]
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1(ingress, ALLOW_ALL), acl2([], egress))
    with serve(vpc, "vm1", 8080), serve(vpc, "out", 7124):
        assert seen_as(vpc, "vm2", VM1, 8080) == VM2
        assert seen_as(vpc, "vm2", FAR, 7124) == SNAT_IP


def test_default_deny_list_blocks_all_egress(vpc: Router) -> None:
    """upstream: the stock default_deny ACL list (Egress all 0.0.0.0/0 DROP) rendered by
    configure.py CsAcl.AclDevice as -p all -d 0.0.0.0/0 -j DROP."""
    deny = [acl_rule("all", "0.0.0.0/0", allowed=False)]
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1(deny, deny), TIER2_OPEN)
    with serve(vpc, "out", 7125), serve(vpc, "out", 7126, "udp"):
        assert seen_as(vpc, "vm1", FAR, 7125, timeout=0.5) is None
        assert seen_as(vpc, "vm1", FAR, 7126, proto="udp", timeout=0.5) is None
        assert not pings(vpc, "vm1", FAR, timeout=0.5)


def test_egress_acl_does_not_cover_the_router_itself(vpc: Router) -> None:
    """upstream: cs/CsAddress.py CsIP.fw_vpcrouter (mangle PREROUTING ... ! -d <gw>/32
    -j ACL_OUTBOUND_ethX): traffic to the tier's own gateway skips the egress ACL."""
    deny = [acl_rule("all", "0.0.0.0/0", allowed=False)]
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1(deny, deny))
    assert eventually_pings(vpc, "vm1", GW1)


def test_icmp_any_type_rule_admits_ping(vpc: Router) -> None:
    """upstream: configure.py CsAcl.AclDevice.AclRule (icmp_type -1 => --icmp-type any)."""
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1([], ALLOW_ALL), TIER2_OPEN)
    assert eventually_pings(vpc, "vm2", GW2)  # the path works; only the ACL decides
    assert not pings(vpc, "vm2", VM1, timeout=0.5)
    apply_bags(vpc, acl1([acl_rule("icmp", "0.0.0.0/0", icmp=(-1, -1))], ALLOW_ALL))
    assert eventually_pings(vpc, "vm2", VM1)


def test_first_matching_rule_wins(vpc: Router) -> None:
    """upstream: configure.py CsAcl.AclDevice (rules inserted in ACL item order before the
    chain's last rule: first match wins)."""
    drop_first = [acl_rule("tcp", f"{VM2}/32", ports=(8080, 8080), allowed=False),
                  acl_rule("tcp", "10.10.2.0/24", ports=(8080, 8080))]
    apply_bags(vpc, vpc_ips(), tier1(), tier2(), acl1(drop_first, ALLOW_ALL), TIER2_OPEN)
    with serve(vpc, "vm1", 8080):
        assert seen_as(vpc, "vm2", VM1, 8080, timeout=0.5) is None
        apply_bags(vpc, acl1(list(reversed(drop_first)), ALLOW_ALL))
        assert seen_as(vpc, "vm2", VM1, 8080) == VM2
