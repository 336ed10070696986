"""Address families in the model, the topology and the rule builders
(vragent/family.py): a dual-stack tier is carried as data, IPv4 renders as it
always did, and what a builder writes follows the address it is about.

The tier's IPv6 fields are those upstream reads from the guestnetwork bag:
router_guest_ip6, router_guest_ip6_gateway and router_guest_ip6_cidr
(systemvm/debian/opt/cloud/bin/cs/CsAddress.py add_address_route,
cs/CsDatabag.py CsGuestNetwork.get_dev_ip6gateway), on the sample tier bag
as the management server builds it."""

from __future__ import annotations

import ipaddress

import pytest
from vragent import family
from vragent.bags import parse_bag
from vragent.errors import BagError
from vragent.feature import Between, Traffic
from vragent.features.netfilter import subsystem as netfilter
from vragent.models import GuestNetwork
from vragent.reconcile import desired_states

from tests.unit.builders import sample_bag, sample_docs, sample_topology, settings, with_bags

DUAL = {"router_guest_ip6": "fd00:10:10:1::2", "router_guest_ip6_gateway": "fd00:10:10:1::1",
        "router_guest_ip6_cidr": "fd00:10:10:1::/64"}


def _input(cfg: object, topo: object) -> tuple[str, ...]:
    d = desired_states(cfg, topo, settings())["netfilter"]  # type: ignore[arg-type]
    return next(c for c in netfilter.render(d).chains if c.name == "input").rules


def test_family_of_an_address_or_network() -> None:
    assert family.of("10.0.0.1") is family.V4
    assert family.of("10.0.0.0/8") is family.V4
    assert family.of("fd00::1") is family.V6 and family.of("::/0") is family.V6
    assert str(family.V6) == "IPv6"


def test_a_dual_stack_tier_is_carried_by_the_model_and_the_topology() -> None:
    bag = parse_bag({**sample_bag("guest_network_tier1.json"), **DUAL})
    assert isinstance(bag, GuestNetwork)
    assert bag.network6 == ipaddress.IPv6Network("fd00:10:10:1::/64")
    cfg, topo = with_bags(sample_docs(), {**sample_bag("guest_network_tier1.json"), **DUAL})
    tier = next(g for g in topo.guests if g.network6 is not None)
    assert (tier.ip6, tier.gateway6) == ("fd00:10:10:1::2", "fd00:10:10:1::1")
    assert tier.families == (family.V4, family.V6)
    assert topo.families == (family.V4, family.V6)
    # Nothing else is IPv6: the other tiers and a plain VPC speak IPv4 only.
    assert [g.families for g in topo.guests if g is not tier] == [(family.V4,)] * (
        len(topo.guests) - 1)
    assert sample_topology()[1].families == (family.V4,)


@pytest.mark.parametrize(("field", "value"), [
    ("router_guest_ip6", "10.0.0.1"), ("router_guest_ip6", "fe80::1%eth0"),
    ("router_guest_ip6_gateway", "fd00::zz"), ("router_guest_ip6_cidr", "fd00::1"),
    ("router_guest_ip6_cidr", "10.0.0.0/24"),
])
def test_bad_ipv6_fields_are_refused_by_name(field: str, value: str) -> None:
    with pytest.raises(BagError) as exc:
        parse_bag({**sample_bag("guest_network_tier1.json"), field: value})
    assert any(p.startswith(f"{field}: ") for p in exc.value.problems), exc.value.problems


def test_empty_ipv6_fields_mean_none() -> None:
    bag = parse_bag({**sample_bag("guest_network_tier1.json"), "router_guest_ip6": "",
                     "router_guest_ip6_cidr": ""})
    assert isinstance(bag, GuestNetwork) and bag.network6 is None


def test_icmp_of_every_family_the_router_speaks() -> None:
    cfg, topo = sample_topology()
    rules = _input(cfg, topo)
    assert "meta l4proto icmp accept" in rules
    assert "meta l4proto ipv6-icmp accept" not in rules
    cfg, topo = with_bags(sample_docs(), {**sample_bag("guest_network_tier1.json"), **DUAL})
    rules = _input(cfg, topo)
    # Neighbour discovery is ICMPv6: a dual-stack router never drops it.
    assert rules.index("meta l4proto icmp accept") + 1 == \
        rules.index("meta l4proto ipv6-icmp accept")


def test_rule_builders_follow_the_address_family() -> None:
    assert netfilter._match("10.0.0.1", "daddr") == "ip daddr 10.0.0.1"
    assert netfilter._match("fd00::1", "saddr") == "ip6 saddr fd00::1"
    assert netfilter._nat("snat", "100.64.10.10") == "snat ip to 100.64.10.10"
    assert netfilter._nat("dnat", "10.10.1.10", 22) == "dnat ip to 10.10.1.10:22"
    assert netfilter._nat("dnat", "fd00::5", 22) == "dnat ip6 to [fd00::5]:22"
    assert netfilter._nat("snat", "fd00::1") == "snat ip6 to fd00::1"


def _ruleset_with(traffic: Traffic) -> dict[str, tuple[str, ...]]:
    cfg, topo = sample_topology()
    d = netfilter.with_traffic(desired_states(cfg, topo, settings())["netfilter"], traffic)
    return {c.name: c.rules for c in netfilter.render(d).chains}


def test_what_a_feature_forwards_and_keeps_out_of_nat_is_rendered_per_family() -> None:
    """A feature's Traffic.forward and .nat_exempt (a VPN's, once it lands):
    forwarded once nothing before dropped it, and never source-NATed."""
    plain = _ruleset_with(Traffic())
    tunnel = Between(saddr=("10.10.0.0/16", "fd00:10::/48"),
                     daddr=("172.16.5.0/24", "fd00:99::/48"))
    web = Between(daddr=("10.20.0.0/16",), proto="tcp", ports=(443,))
    chains = _ruleset_with(Traffic(forward=(tunnel, web), nat_exempt=(tunnel,)))
    assert chains["forward_final"] == (
        *plain["forward_final"][:-1],
        "ip saddr 10.10.0.0/16 ip daddr 172.16.5.0/24 accept",
        "ip6 saddr fd00:10::/48 ip6 daddr fd00:99::/48 accept",
        "ip daddr 10.20.0.0/16 tcp dport 443 accept",
        "counter drop")
    # Exempt before any SNAT rule of the public link.
    assert chains["nat_postrouting"] == (
        "ip saddr 10.10.0.0/16 ip daddr 172.16.5.0/24 accept",
        "ip6 saddr fd00:10::/48 ip6 daddr fd00:99::/48 accept",
        *plain["nat_postrouting"])
    # Sides of different families never meet; nothing at all is never a rule.
    assert netfilter._between(Between(saddr=("10.0.0.0/8",), daddr=("fd00::/8",))) == []
    assert netfilter._between(Between()) == []
