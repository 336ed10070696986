"""A redundant pair with a dual-stack tier: keepalived moves the tier's IPv6
gateway and its shared link-local default router with mastership, conntrackd
replicates IPv6 flows.

Upstream shares IPv4 gateways only (cs/CsRedundant.py _collect_ips,
keepalived.conf.templ), names IPv4 addresses only in conntrackd's filter
(conntrackd.conf.templ, CsRedundant._collect_ignore_ips), and a pair's
radvd.conf carries no prefix (cs/CsVpcGuestNetwork.py add_radvd_conf;
apache/cloudstack#13121).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from vragent.config import RouterConfig
from vragent.errors import BagError
from vragent.features.conntrack import subsystem as conntrack
from vragent.features.ra import daemon as ra_daemon
from vragent.features.ra import subsystem as ra
from vragent.features.vrrp import feature as vrrp_feature
from vragent.features.vrrp import subsystem as vrrp
from vragent.topology import LINK_LOCAL_GATEWAY, Topology, resolve

from tests.unit.builders import (
    apply_bags,
    cloudstack_pair_docs,
    pair_docs,
    sample_bag,
    sample_links,
    settings,
    with_bags,
)

from .golden_files import check_golden

PREFIX1 = "fd00:a:a:1::/64"
GATEWAY1 = "fd00:a:a:1::1"
PREFIX2 = "fd00:a:a:2::/64"
GATEWAY2 = "fd00:a:a:2::1"


def dual_stack(name: str, prefix: str, gateway: str, own: str | None = None,
               base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A sample tier's guestnetwork bag with the IPv6 fields CloudStack adds
    (SetGuestNetworkConfigItem / CommandSetupHelper.createVpcAssociatePrivateIPCommands:
    router_guest_ip6, router_guest_ip6_gateway, router_guest_ip6_cidr)."""
    bag = dict(base if base is not None else sample_bag(name))
    bag.update({"router_guest_ip6": own or gateway, "router_guest_ip6_gateway": gateway,
                "router_guest_ip6_cidr": prefix})
    return bag


def pair_v6() -> tuple[RouterConfig, Topology]:
    """The sample pair (sync link) with both tiers dual-stack."""
    return with_bags(pair_docs(),
                     dual_stack("guest_network_tier1.json", PREFIX1, GATEWAY1),
                     dual_stack("guest_network_tier2.json", PREFIX2, GATEWAY2))


def cloudstack_pair_v6() -> tuple[RouterConfig, Topology]:
    """CloudStack mode: the router's own addresses on tier 1 (10.10.1.2,
    fd00:a:a:1::2) and the shared gateways (SetGuestNetworkConfigItem)."""
    bag = dual_stack("guest_network_tier1.json", PREFIX1, GATEWAY1, own="fd00:a:a:1::2")
    bag.update({"router_guest_gateway": "10.10.1.1", "router_guest_ip": "10.10.1.2"})
    cfg = RouterConfig.from_docs(apply_bags([bag], cloudstack_pair_docs()))
    return cfg, resolve(cfg, sample_links())


def desired(scenario: tuple[RouterConfig, Topology]) -> vrrp.Desired:
    cfg, topo = scenario
    d = vrrp.desired(cfg, topo, settings())
    assert vrrp.verify(d) == []
    return d


def block(text: str, opening: str) -> list[str]:
    lines = text.splitlines()
    start = [line.strip() for line in lines].index(opening)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(i for i in range(start + 1, len(lines))
               if lines[i].strip() == "}" and len(lines[i]) - 1 == indent)
    return [line.strip() for line in lines[start + 1:end] if not line.strip().startswith("#")]


# -- keepalived ----------------------------------------------------------------------


def test_dual_stack_tiers_share_their_ipv6_gateway_and_a_link_local_router() -> None:
    d = desired(pair_v6())
    assert (f"{GATEWAY1}/64", "eth2") in d.excluded
    assert (f"{GATEWAY2}/64", "eth3") in d.excluded
    assert d.link_local == (("fe80::1/64", "eth2"), ("fe80::1/64", "eth3"))
    excluded = block(vrrp.render(d), "virtual_ipaddress_excluded {")
    assert f"{GATEWAY1}/64 dev eth2" in excluded
    assert "fe80::1/64 dev eth2" in excluded
    assert "fe80::1/64 dev eth3" in excluded


def test_adverts_stay_ipv4_on_the_fixed_address() -> None:
    # keepalived takes one family per instance in virtual_ipaddress; the
    # IPv6 addresses only ever go to the excluded list.
    v4, v6 = vrrp.render(desired(with_bags(pair_docs()))), vrrp.render(desired(pair_v6()))
    assert block(v6, "virtual_ipaddress {") == block(v4, "virtual_ipaddress {") == [
        "10.255.0.254/24 dev eth5"]
    assert block(v6, "unicast_peer {") == block(v4, "unicast_peer {")


def test_ipv6_on_a_tier_changes_only_the_excluded_block() -> None:
    # A reload, never an election change: the rest of the file is the same.
    before = vrrp.render(desired(with_bags(pair_docs()))).splitlines()
    after = vrrp.render(desired(pair_v6())).splitlines()

    def outside(lines: list[str]) -> list[str]:
        start = [line.strip() for line in lines].index("virtual_ipaddress_excluded {")
        end = next(i for i in range(start, len(lines)) if lines[i].strip() == "}")
        return lines[:start] + lines[end + 1:]

    assert outside(before) == outside(after)
    assert before != after


def test_ipv4_only_tier_gets_no_ipv6_address() -> None:
    cfg, topo = with_bags(pair_docs(), dual_stack("guest_network_tier1.json", PREFIX1,
                                                  GATEWAY1))
    d = desired((cfg, topo))
    assert d.link_local == (("fe80::1/64", "eth2"),)
    assert not any(":" in addr for addr, dev in d.excluded if dev != "eth2")


def test_cloudstack_mode_shares_the_gateway_and_leaves_the_own_address() -> None:
    d = desired(cloudstack_pair_v6())
    v6 = [(addr, dev) for addr, dev in d.excluded if ":" in addr]
    assert v6 == [(f"{GATEWAY1}/64", "eth2")]
    assert d.link_local == (("fe80::1/64", "eth2"),)
    assert not any(addr.startswith("fd00:a:a:1::2/") for addr, _ in d.excluded)


def test_the_master_announces_ipv4_by_arp_and_leaves_ipv6_to_keepalived() -> None:
    # Gratuitous ARP cannot carry an IPv6 address; keepalived sends the
    # unsolicited neighbour advertisements for its IPv6 addresses itself.
    cfg, topo = pair_v6()
    election = vrrp_feature.election(cfg, topo, settings())
    assert election is not None
    assert election.announce
    for ip, _dev in election.announce:
        assert ipaddress.ip_address(ip).version == 4
    assert ("10.10.1.1", "eth2") in election.announce


def test_gateway_outside_the_prefix_is_a_problem_naming_the_field() -> None:
    cfg, topo = with_bags(pair_docs(), dual_stack("guest_network_tier1.json", PREFIX1,
                                                  "fd00:b::1"))
    d = vrrp.desired(cfg, topo, settings())
    problems = vrrp.verify(d)
    assert problems and "router_guest_ip6_gateway=fd00:b::1" in problems[0]
    assert not any(":" in addr for addr, _ in d.excluded)


@pytest.mark.parametrize("value", ["fd00::1\n}", "fd00::1 dev eth0", "fe80::1%eth2",
                                   "{fd00::1}", "fd00::1!", '"fd00::1"', "fd00::1\x00"])
@pytest.mark.parametrize("field", ["router_guest_ip6", "router_guest_ip6_gateway"])
def test_hostile_ipv6_values_are_refused_with_the_field_named(field: str, value: str) -> None:
    bag = dual_stack("guest_network_tier1.json", PREFIX1, GATEWAY1)
    bag[field] = value
    docs = pair_docs()
    with pytest.raises(BagError) as err:
        apply_bags([bag], docs)
    assert field in str(err.value)


def test_golden_keepalived_conf_of_a_dual_stack_pair() -> None:
    check_golden("pair_ipv6/keepalived.conf", vrrp.render(desired(pair_v6())).text())


# -- conntrackd ----------------------------------------------------------------------


def test_conntrackd_replicates_ipv6_flows_and_icmpv6() -> None:
    cfg, topo = pair_v6()
    text = conntrack.render(conntrack.desired(cfg, topo, settings()))
    assert block(text, "Protocol Accept {") == ["TCP", "UDP", "ICMP", "IPv6-ICMP"]
    ignored = block(text, "Address Ignore {")
    # The router's own IPv6 conversations only: never a tier's prefix or gateway.
    assert [a for a in ignored if a.startswith("IPv6_address")] == [
        "IPv6_address ::1", "IPv6_address fe80::/10"]
    assert not any("fd00:" in a for a in ignored)


def test_ipv6_on_a_tier_restarts_no_conntrackd() -> None:
    # conntrackd has no reload: a changed file would cost the external cache.
    cfg4, topo4 = with_bags(pair_docs())
    cfg6, topo6 = pair_v6()
    assert conntrack.render(conntrack.desired(cfg6, topo6, settings())) == \
        conntrack.render(conntrack.desired(cfg4, topo4, settings()))


def test_golden_conntrackd_conf_of_a_dual_stack_pair() -> None:
    cfg, topo = pair_v6()
    check_golden("pair_ipv6/conntrackd.conf",
                 conntrack.render(conntrack.desired(cfg, topo, settings())).text())


# -- radvd ---------------------------------------------------------------------------


def test_radvd_runs_on_the_master_only() -> None:
    # The pair's run time starts and stops master-only daemons on each
    # transition (ha/lifecycle.py master_services; test_pair_ipv6 in
    # tests/integration/ha shows it with real radvd).
    (radvd,) = ra_daemon.daemons(settings())
    assert radvd.name == "radvd" and radvd.master_only is True


def test_a_pair_advertises_from_the_shared_link_local_address() -> None:
    cfg, topo = pair_v6()
    d = ra.desired(cfg, topo, settings())
    assert [(t.ifname, t.source) for t in d.tiers] == [("eth2", LINK_LOCAL_GATEWAY),
                                                       ("eth3", LINK_LOCAL_GATEWAY)]
    text = ra.render(d).text()
    assert text.count("AdvRASrcAddress {") == 2
    assert re.findall(r"AdvRASrcAddress \{\s*(\S+);\s*\};", text) == [LINK_LOCAL_GATEWAY] * 2
    # The address radvd advertises from is the one keepalived moves.
    assert {(f"{t.source}/64", t.ifname) for t in d.tiers} == set(desired(pair_v6()).link_local)


def test_a_standalone_router_advertises_from_its_own_address() -> None:
    cfg, topo = with_bags(pair_docs(drop=("redundant_router",)),
                          dual_stack("guest_network_tier1.json", PREFIX1, GATEWAY1))
    assert not cfg.redundant
    d = ra.desired(cfg, topo, settings())
    assert [t.source for t in d.tiers] == [None]
    assert "AdvRASrcAddress" not in ra.render(d).text()


def test_golden_radvd_conf_of_a_dual_stack_pair() -> None:
    cfg, topo = pair_v6()
    check_golden("pair_ipv6/radvd.conf", ra.render(ra.desired(cfg, topo, settings())).text())
