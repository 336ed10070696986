"""The VPC's public IPv6 (guestnetwork router_ip6 / router_ip6_gateway /
router_ip6_cidr, as SetGuestNetworkConfigItem.java sends them) on a redundant
pair: shared like the public IPv4 addresses.

Upstream (cs/CsVpcGuestNetwork.py add_address_route) adds router_ip6 and the
default route via router_ip6_gateway on eth1 whatever the router's redundant
state, so both routers of a pair would hold the address; its keepalived.conf
(cs/CsRedundant.py _collect_ips, keepalived.conf.templ) moves IPv4 only.
Here keepalived moves it (virtual_ipaddress_excluded; it adds IPv6 addresses
with IFA_F_NODAD and sends the unsolicited neighbour advertisements), the
interfaces feature never adds it on a pair, and the default route is the
routes feature's on both routers, onlink, as the IPv4 one is.
"""

from __future__ import annotations

from typing import Any

from vragent.config import RouterConfig
from vragent.features.interfaces import subsystem as interfaces
from vragent.features.netfilter import subsystem as netfilter
from vragent.features.routes import subsystem as routes
from vragent.features.sysctl import subsystem as sysctl
from vragent.features.vrrp import subsystem as vrrp
from vragent.reconcile import desired_states
from vragent.system.iproute import MAIN, Route
from vragent.topology import Topology, eui64_link_local, resolve

from tests.unit.builders import (
    apply_bags,
    cloudstack_pair_docs,
    pair_docs,
    sample_bag,
    sample_docs,
    sample_links,
    settings,
    with_bags,
)

from .golden_files import check_golden

PUBLIC6 = {"router_ip6": "fd64:10::10", "router_ip6_gateway": "fd64:10::1",
           "router_ip6_cidr": "fd64:10::/64"}
ADDRESS6 = "fd64:10::10/64"
PREFIX1 = "fd00:a:a:1::/64"
GATEWAY1 = "fd00:a:a:1::1"


def tier1(own6: str = GATEWAY1, gateway6: str | None = GATEWAY1,
          base: dict[str, Any] | None = None, public: bool = True) -> dict[str, Any]:
    bag = dict(base if base is not None else sample_bag("guest_network_tier1.json"))
    bag.update({"router_guest_ip6": own6, "router_guest_ip6_cidr": PREFIX1})
    if gateway6 is not None:
        bag["router_guest_ip6_gateway"] = gateway6
    if public:
        bag.update(PUBLIC6)
    return bag


def pair() -> tuple[RouterConfig, Topology]:
    return with_bags(pair_docs(), tier1())


def cloudstack_pair(own6: str = "fd00:a:a:1::2",
                    gateway6: str | None = GATEWAY1) -> tuple[RouterConfig, Topology]:
    base = sample_bag("guest_network_tier1.json")
    base.update({"router_guest_gateway": "10.10.1.1", "router_guest_ip": "10.10.1.2"})
    cfg = RouterConfig.from_docs(apply_bags([tier1(own6, gateway6, base)],
                                            cloudstack_pair_docs()))
    return cfg, resolve(cfg, sample_links())


def single() -> tuple[RouterConfig, Topology]:
    cfg = RouterConfig.from_docs(apply_bags([tier1()], sample_docs()))
    return cfg, resolve(cfg, sample_links())


def link(scenario: tuple[RouterConfig, Topology], ifname: str) -> interfaces.LinkSpec:
    d = interfaces.desired(*scenario, settings())
    return next(s for s in d.links if s.ifname == ifname)


def vrrp_desired(scenario: tuple[RouterConfig, Topology]) -> vrrp.Desired:
    d = vrrp.desired(*scenario, settings())
    assert vrrp.verify(d) == []
    return d


# -- keepalived ----------------------------------------------------------------


def test_keepalived_moves_the_public_ipv6_on_the_public_nic() -> None:
    for scenario in (pair(), cloudstack_pair()):
        d = vrrp_desired(scenario)
        assert (ADDRESS6, "eth1") in d.excluded
        # The prefix is router_ip6_cidr's, the device the source-NAT IP's.
        assert f"        {ADDRESS6} dev eth1" in vrrp.render(d).text().splitlines()


def test_cloudstack_keepalived_moves_the_shared_public_mac_s_link_local_address() -> None:
    # Both routers' public NICs carry the source-NAT IP's MAC (02:00:0a:00:00:01):
    # the kernel would give each the same link-local address, and the master
    # needs one to solicit router_ip6_gateway for the tiers' traffic.
    assert eui64_link_local("02:00:0a:00:00:01") == "fe80::aff:fe00:1"
    assert ("fe80::aff:fe00:1/64", "eth1") in vrrp_desired(cloudstack_pair()).excluded
    # With a sync link each router has its own MAC and link-local address.
    assert not [a for a, dev in vrrp_desired(pair()).excluded if a.startswith("fe80")
                and dev == "eth1"]


def test_keepalived_has_no_public_ipv6_without_router_ip6() -> None:
    cfg, topo = with_bags(pair_docs(), tier1(public=False))
    assert not [a for a, dev in vrrp_desired((cfg, topo)).excluded if dev == "eth1" and ":" in a]


def test_golden_keepalived_conf_with_a_public_ipv6() -> None:
    check_golden("pair_ipv6/keepalived_public6.conf", vrrp.render(vrrp_desired(pair())).text())


# -- interfaces: static on a single router, keepalived's on a pair --------------


def test_a_single_router_adds_router_ip6_itself() -> None:
    spec = link(single(), "eth1")
    assert ADDRESS6 in spec.addresses
    assert not spec.vrrp_owned


def test_a_pair_never_adds_router_ip6() -> None:
    for scenario in (pair(), cloudstack_pair()):
        spec = link(scenario, "eth1")
        assert ADDRESS6 not in spec.addresses
        assert ADDRESS6 in spec.protected
        assert spec.vrrp_owned


def test_cloudstack_own_ipv6_equal_to_the_gateway_is_keepalived_s_only() -> None:
    # Reported by the v6-pair work: router_guest_ip6 == router_guest_ip6_gateway
    # on a pair with distinct IPv4 addresses; both routers added it statically.
    scenario = cloudstack_pair(own6=GATEWAY1, gateway6=GATEWAY1)
    spec = link(scenario, "eth2")
    assert f"{GATEWAY1}/64" not in spec.addresses
    assert f"{GATEWAY1}/64" in spec.protected
    assert "10.10.1.2/24" in spec.addresses
    assert (f"{GATEWAY1}/64", "eth2") in vrrp_desired(scenario).excluded
    # No gateway in the bag: vrrp shares router_guest_ip6, so it is not ours either.
    spec = link(cloudstack_pair(own6=GATEWAY1, gateway6=None), "eth2")
    assert f"{GATEWAY1}/64" not in spec.addresses
    assert f"{GATEWAY1}/64" in spec.protected


def test_cloudstack_own_ipv6_distinct_from_the_gateway_stays_ours() -> None:
    spec = link(cloudstack_pair(), "eth2")
    assert "fd00:a:a:1::2/64" in spec.addresses
    assert f"{GATEWAY1}/64" in spec.protected
    assert f"{GATEWAY1}/64" not in spec.addresses


# -- the default route: as the IPv4 one ---------------------------------------


def test_the_ipv6_default_route_is_on_both_routers_onlink_like_ipv4() -> None:
    for scenario in (pair(), cloudstack_pair()):
        d = routes.desired(*scenario, settings())
        v4 = next(r for r in d.routes if r.table == MAIN and r.dst == "default"
                  and ":" not in r.gateway)
        assert Route(MAIN, "default", "fd64:10::1", "eth1", True) in d.routes
        assert v4.onlink


# -- CloudStack mode: the shared public MAC -------------------------------------


def test_cloudstack_public_nic_keeps_ipv6_without_a_link_local_address() -> None:
    values = dict(sysctl.desired(*cloudstack_pair(), settings()).values)
    assert values["net/ipv6/conf/eth1/disable_ipv6"] == "0"
    assert values["net/ipv6/conf/eth1/addr_gen_mode"] == "1"
    assert values["net/ipv6/conf/eth1/accept_dad"] == "0"
    keys = [k for k, _ in sysctl.desired(*cloudstack_pair(), settings()).values]
    # Applied in order: no link-local address of the shared MAC comes up.
    assert keys.index("net/ipv6/conf/eth1/addr_gen_mode") < \
        keys.index("net/ipv6/conf/eth1/disable_ipv6")
    # Without a public IPv6 the shared NIC has no IPv6 at all, as before.
    cfg = RouterConfig.from_docs(cloudstack_pair_docs())
    values = dict(sysctl.desired(cfg, resolve(cfg, sample_links()), settings()).values)
    assert values.get("net/ipv6/conf/eth1/disable_ipv6") == "1"


def test_cloudstack_public_guard_lets_out_only_the_held_public_ipv6() -> None:
    d = desired_states(*cloudstack_pair(), settings())["netfilter"]
    chains = {c.name: c.rules for c in netfilter.render(d).chains}
    guard = chains["public_guard"]
    assert 'oifname "eth1" ip6 saddr fd64:10::10 fib saddr type local accept' in guard
    # The master's solicitations, from the shared MAC's link-local address.
    assert 'oifname "eth1" ip6 saddr fe80::aff:fe00:1 accept' in guard
    # The tiers' IPv6 traffic is not NATed: it leaves with the hosts' addresses.
    assert 'oifname "eth1" ip6 saddr fd00:a:a:1::/64 accept' in guard
    assert guard[-1] == 'oifname "eth1" drop'
