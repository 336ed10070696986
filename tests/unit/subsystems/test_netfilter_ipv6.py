"""Netfilter in both families: the ipv6firewallrules bag, ACLs whose CIDR
lists carry IPv6, routed mode. Upstream followed: systemvm/.../configure.py
(CsIpv6Firewall, CsAcl.AclDevice.__process_ip6, CsAcl.add_routing_rules),
core/.../facade/SetIpv6FirewallRulesConfigItem.java, model/FirewallRule.java."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from vragent.config import RouterConfig
from vragent.features.netfilter import subsystem as netfilter
from vragent.features.netfilter.model_acl import AclRule
from vragent.features.netfilter.subsystem import ND_ACCEPT, Ruleset, acl_rules
from vragent.reconcile import desired_states
from vragent.topology import resolve

from tests.conftest import REFERENCE
from tests.unit.builders import (
    apply_bags,
    isolated_bags,
    isolated_links,
    load,
    sample_bag,
    sample_docs,
    sample_links,
    settings,
)

from .golden_files import check_golden

V6FW = load(REFERENCE / "ipv6firewallrules-1.json")
TIER1_V6 = "fd00:10:1::/64"


def _render(cfg: RouterConfig, topo: Any, problems: list[str] | None = None) -> Ruleset:
    d = desired_states(cfg, topo, settings())["netfilter"]
    assert netfilter.verify(d) == (problems or [])
    return netfilter.render(d)


def _chains(rs: Ruleset) -> dict[str, tuple[str, ...]]:
    return {c.name: c.rules for c in rs.chains}


def _dual_stack_tier1() -> dict[str, Any]:
    g = sample_bag("guest_network_tier1.json")
    return {**g, "router_guest_ip6": "fd00:10:1::1", "router_guest_ip6_gateway": "fd00:10:1::1",
            "router_guest_ip6_cidr": TIER1_V6}


def dual_stack(*bags: dict[str, Any]) -> tuple[RouterConfig, Any]:
    docs = apply_bags([_dual_stack_tier1(), *bags], copy.deepcopy(sample_docs()))
    cfg = RouterConfig.from_docs(docs)
    return cfg, resolve(cfg, sample_links())


def routed_isolated(*bags: dict[str, Any], routed: bool = True) -> tuple[RouterConfig, Any]:
    base = isolated_bags(default_egress_policy=False)
    if routed:
        base[0] = copy.deepcopy(base[0])
        base[0]["cmd_line"]["is_routed"] = "true"
    cfg = RouterConfig.from_docs(apply_bags([*base, *bags]))
    return cfg, resolve(cfg, isolated_links())


ROUTING_RULES = {"type": "firewallrules", "rules": [
    # createRoutingFirewallRule as the firewallrules bag carries it: no src_ip.
    {"id": 20, "protocol": "tcp", "src_port_range": [8080, 8080], "revoked": False,
     "source_cidr_list": ["0.0.0.0/0"], "dest_cidr_list": ["10.20.1.0/24"],
     "purpose": "Firewall", "traffic_type": "Ingress", "default_egress_policy": False},
    {"id": 21, "protocol": "icmp", "icmp_type": -1, "icmp_code": -1, "revoked": False,
     "source_cidr_list": ["100.64.20.0/24"], "purpose": "Firewall",
     "traffic_type": "Ingress", "default_egress_policy": False},
]}


# -- golden renders ----------------------------------------------------------------
# Of the chains these features write (the input chain and NAT also carry other
# features' openings, which their own golden files review).


def _excerpt(rs: Ruleset, *prefixes: str) -> str:
    return "".join(f"chain {c.name} ({c.hook or 'regular'})\n"
                   + "".join(f"\t{r}\n" for r in c.rules)
                   for c in rs.chains if c.name.startswith(prefixes))


def test_golden_dual_stack_vpc() -> None:
    acl = sample_bag("network_acl_tier1.json")
    acl["ingress_rules"].append({"type": "icmp", "cidr": "0.0.0.0/0,::/0", "icmp_type": -1,
                                 "icmp_code": -1, "allowed": True})
    acl["ingress_rules"].append({"type": "tcp", "cidr": "fd00:64::/64,100.64.0.0/16",
                                 "first_port": 443, "last_port": 443, "allowed": True})
    rs = _render(*dual_stack(V6FW, acl))
    check_golden("netfilter/dual_stack_vpc.txt", _excerpt(rs, "fw6_", "acl_", "forward_"))


def test_golden_routed_isolated() -> None:
    rs = _render(*routed_isolated(ROUTING_RULES))
    check_golden("netfilter/routed_isolated.txt",
                 _excerpt(rs, "fw_routed", "fw_egress", "forward_", "nat_postrouting"))


# -- ipv6firewallrules ---------------------------------------------------------------


def test_ipv6_firewall_chains_per_prefix() -> None:
    c = _chains(_render(*dual_stack(V6FW)))
    assert c["fw6_in_fd00_10_1___64"] == (
        ND_ACCEPT,
        "ip6 saddr fd00:64::/64 tcp dport 22 accept",
        "ip6 daddr fd00:10:1::/64 icmpv6 type 128 accept",
        "counter drop",
    )
    # Default egress deny: the egress rules are what is allowed.
    assert c["fw6_out_fd00_10_1___64"] == ("ip6 daddr fd00:64::/64 udp dport 53 accept",
                                          "counter drop")


def test_ipv6_firewall_after_established_and_before_acls() -> None:
    c = _chains(_render(*dual_stack(V6FW)))
    assert c["forward_egress"][:3] == ("ct state established,related accept",
                                       "ct state invalid drop",
                                       "ip6 saddr fd00:10:1::/64 jump fw6_out_fd00_10_1___64")
    assert c["forward_ingress"][:3] == ("ct state established,related accept",
                                        "ct state invalid drop",
                                        "ip6 daddr fd00:10:1::/64 jump fw6_in_fd00_10_1___64")
    # Neighbour discovery to the router itself, before anything can drop it.
    assert c["input"].index(ND_ACCEPT) < c["input"].index("counter drop")


def test_ipv6_default_egress_allow_inverts_the_rules() -> None:
    bag = copy.deepcopy(V6FW)
    for r in bag["rules"]:
        r["default_egress_policy"] = True
    bag["rules"].append({"id": 1, "protocol": "all", "revoked": False, "source_cidr_list": [],
                         "traffic_type": "Egress", "default_egress_policy": True,
                         "guest_ip6_cidr": TIER1_V6})
    c = _chains(_render(*dual_stack(bag)))
    assert c["fw6_out_fd00_10_1___64"] == ("ip6 daddr fd00:64::/64 udp dport 53 drop",
                                          "accept")


def test_revoking_every_rule_keeps_the_prefix_closed() -> None:
    revoked = copy.deepcopy(V6FW)
    for r in revoked["rules"]:
        r["revoked"] = True
    c = _chains(_render(*dual_stack(V6FW, revoked)))
    # Upstream's table vanishes with its last rule (everything in); here the
    # prefix keeps its firewall with nothing allowed.
    assert c["fw6_in_fd00_10_1___64"] == (ND_ACCEPT, "counter drop")
    assert c["fw6_out_fd00_10_1___64"] == ("counter drop",)


def test_ipv6_prefix_written_with_host_bits_is_the_network() -> None:
    bag = copy.deepcopy(V6FW)
    bag["rules"] = [{**bag["rules"][0], "source_cidr_list": ["fd00:64::5/64"],
                     "guest_ip6_cidr": "fd00:10:1::1/64"}]
    c = _chains(_render(*dual_stack(bag)))
    assert "ip6 saddr fd00:64::/64 tcp dport 22 accept" in c["fw6_in_fd00_10_1___64"]


# -- ACLs whose CIDR lists carry IPv6 --------------------------------------------------


@pytest.mark.parametrize(("cidr", "expected"), [
    ("0.0.0.0/0", ["icmp type 8 accept"]),
    ("0.0.0.0/0,::/0", ["icmp type 8 accept", "icmpv6 type 8 accept"]),
    ("fd00::/8", ["ip6 saddr fd00::/8 icmpv6 type 8 accept"]),
    ("10.0.0.0/8,fd00::/8", ["ip saddr 10.0.0.0/8 icmp type 8 accept",
                             "ip6 saddr fd00::/8 icmpv6 type 8 accept"]),
    ("::/0", ["meta nfproto ipv6 icmpv6 type 8 accept"]),
])
def test_acl_icmp_per_family(cidr: str, expected: list[str]) -> None:
    r = AclRule.model_validate({"type": "icmp", "cidr": cidr, "icmp_type": 8, "icmp_code": -1,
                                "allowed": True})
    assert acl_rules(r, True) == expected


def test_acl_any_icmp_in_both_families() -> None:
    r = AclRule.model_validate({"type": "icmp", "cidr": "0.0.0.0/0,::/0", "icmp_type": -1,
                                "icmp_code": -1, "allowed": False})
    assert acl_rules(r, False) == ["meta l4proto icmp drop", "meta l4proto ipv6-icmp drop"]


# -- routed mode ----------------------------------------------------------------------


def test_routed_router_does_no_source_nat() -> None:
    nat = _chains(_render(*routed_isolated(ROUTING_RULES)))["nat_postrouting"]
    assert not any("snat ip to 100.64.20.10" in r and "ip saddr !=" in r for r in nat)
    natted = _chains(_render(*routed_isolated(routed=False)))["nat_postrouting"]
    assert any("snat ip to 100.64.20.10" in r and "ip saddr !=" in r for r in natted)


def test_routed_inbound_goes_through_the_routing_firewall() -> None:
    c = _chains(_render(*routed_isolated(ROUTING_RULES)))
    assert c["fw_routed_in"] == (
        "ip daddr 10.20.1.0/24 tcp dport 8080 accept",
        "ip saddr 100.64.20.0/24 meta l4proto icmp accept",
        "counter drop",
    )
    ingress = c["forward_ingress"]
    assert ingress[0] == "ct state established,related accept"
    assert ingress.index('oifname "eth0" jump fw_routed_in') < ingress.index(
        'oifname "eth0" counter drop')


def test_routing_rule_without_src_ip_refused_unless_routed() -> None:
    cfg, topo = routed_isolated(ROUTING_RULES, routed=False)
    d = desired_states(cfg, topo, settings())["netfilter"]
    problems = netfilter.verify(d)
    assert any(p.startswith("firewallrules.20: an Ingress rule needs src_ip") for p in problems)


@pytest.mark.parametrize(("sources", "expected"), [
    (["0.0.0.0/0"], ["meta l4proto icmp accept"]),
    (["0.0.0.0/0", "::/0"], ["meta l4proto icmp accept", "meta l4proto ipv6-icmp accept"]),
    (["fd00::/8"], ["ip6 saddr fd00::/8 meta l4proto ipv6-icmp accept"]),
])
def test_routing_rule_icmp_per_family(sources: list[str], expected: list[str]) -> None:
    from vragent.features.netfilter.model_firewall import FirewallRule
    from vragent.features.netfilter.subsystem import _routed_rules

    rule = FirewallRule.model_validate({"id": 5, "protocol": "icmp", "traffic_type": "Ingress",
                                        "source_cidr_list": sources, "icmp_type": -1,
                                        "icmp_code": -1})
    assert _routed_rules(rule) == expected
