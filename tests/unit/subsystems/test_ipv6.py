"""IPv6 on one router: a dual-stack VPC as CloudStack 4.17+ describes it.

The bags are SetGuestNetworkConfigItem.java's and VmDhcpConfig.java's
(apache/cloudstack core/.../virtualnetwork/facade/, model/GuestNetwork.java:
router_guest_ip6*, cidr6, dns6, router_ip6*; dhcpentry ipv6_address,
ipv6_duid), as the reference bags tests/fixtures/cloudstack/*-ipv6-1.json.
What they become follows cs/CsVpcGuestNetwork.py (addresses, default route,
radvd.conf) and upstream's edithosts.sh (DHCPv6 hosts by DUID). Golden files:
golden/ipv6/.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from vragent.config import RouterConfig
from vragent.features.dhcp import feature as dhcp_feature
from vragent.features.dhcp import subsystem as dhcp
from vragent.features.interfaces import subsystem as interfaces
from vragent.features.ra import daemon as ra_daemon
from vragent.features.ra import subsystem as ra
from vragent.features.routes import subsystem as routes
from vragent.features.sysctl import subsystem as sysctl
from vragent.reconcile import desired_states
from vragent.topology import Public6, Topology, resolve

from tests.conftest import REFERENCE
from tests.unit.builders import (
    apply_bags,
    load,
    sample_bag,
    sample_docs,
    sample_links,
    settings,
    with_bags,
)
from tests.unit.models.checks import assert_rejected

from .golden_files import check_golden

TIER1_V6 = {
    "router_guest_ip6": "fd10:10:1::1", "router_guest_ip6_gateway": "fd10:10:1::1",
    "router_guest_ip6_cidr": "fd10:10:1::/64", "cidr6": "64",
    "dns6": "fd64:10::53",
    "router_ip6": "fd64:10::10", "router_ip6_gateway": "fd64:10::1",
    "router_ip6_cidr": "fd64:10::/64",
}
TIER2_V6 = {
    # Written long-hand: the kernel writes back "fd10:10:2::1".
    "router_guest_ip6": "fd10:10:2:0::1", "router_guest_ip6_gateway": "fd10:10:2:0::1",
    "router_guest_ip6_cidr": "fd10:10:2::/64", "cidr6": "64",
    "router_ip6": "fd64:10::10", "router_ip6_gateway": "fd64:10::1",
    "router_ip6_cidr": "fd64:10::/64",
}
VM1_V6 = {"ipv6_address": "fd10:10:1::10", "ipv6_duid": "00:03:00:01:02:00:0a:01:00:0a"}


def dual_stack_bags() -> list[dict[str, Any]]:
    return [
        {**sample_bag("guest_network_tier1.json"), **TIER1_V6},
        {**sample_bag("guest_network_tier2.json"), **TIER2_V6},
        {**sample_bag("vm_dhcp_entry_vm1.json"), **VM1_V6},
    ]


def dual_stack() -> tuple[RouterConfig, Topology]:
    """The sample VPC with IPv6 on both tiers and the public side."""
    cfg = RouterConfig.from_docs(apply_bags(dual_stack_bags(), copy.deepcopy(sample_docs())))
    return cfg, resolve(cfg, sample_links())


def rendered(name: str, cfg: RouterConfig, topo: Topology) -> str:
    from vragent.reconcile import subsystems

    module = next(m for m in subsystems() if m.NAME == name)
    d = desired_states(cfg, topo, settings())[name]
    assert module.verify(d) == []
    return module.render(d).text()


# -- golden renders -------------------------------------------------------------


@pytest.mark.parametrize("name", [interfaces.NAME, routes.NAME, sysctl.NAME, dhcp.NAME,
                                  ra.NAME])
def test_golden(name: str) -> None:
    cfg, topo = dual_stack()
    assert topo.missing == ()
    text = rendered(name, cfg, topo)
    assert text
    check_golden(f"ipv6/dual_stack_{name}.txt", text)


def test_reference_bag_golden() -> None:
    """What the reference 4.20 bag alone advertises: its dns6 servers after the router."""
    cfg, topo = with_bags(sample_docs(), {**load(REFERENCE / "guestnetwork-ipv6-1.json"),
                                          "device": "eth2", "mac_address": "02:00:0a:00:00:02"})
    check_golden("ipv6/reference_ra.txt", rendered(ra.NAME, cfg, topo))


# -- topology --------------------------------------------------------------------


def test_topology_reads_the_ipv6_fields() -> None:
    _, topo = dual_stack()
    t1, t2 = (topo.guest_by_key(k) for k in ("eth2", "eth3"))
    assert t1 is not None and t2 is not None
    assert (t1.ip6, t1.gateway6, str(t1.network6), t1.dns6) == (
        "fd10:10:1::1", "fd10:10:1::1", "fd10:10:1::/64", ("fd64:10::53",))
    # As the kernel writes them back, so observed and wanted compare.
    assert (t2.ip6, t2.gateway6, t2.dns6) == ("fd10:10:2::1", "fd10:10:2::1", ())
    # On the source-NAT IP's NIC: upstream's VPC_PUBLIC_INTERFACE (eth1).
    assert topo.public6 == Public6("eth1", "fd64:10::10/64", "fd64:10::1")
    assert len(topo.families) == 2


def test_public_ipv6_prefix_falls_back_to_the_tiers() -> None:
    # Upstream puts router_ip6 on with the tier's prefix length.
    bag = {**sample_bag("guest_network_tier1.json"), **TIER1_V6,
           "router_guest_ip6_cidr": "fd10:10:1::/56"}
    del bag["router_ip6_cidr"]
    _, topo = with_bags(sample_docs(), bag)
    assert topo.public6 is not None and topo.public6.address == "fd64:10::10/56"


def test_ipv4_only_router_has_no_ipv6() -> None:
    cfg, topo = with_bags(sample_docs())
    assert topo.public6 is None
    assert len(topo.families) == 1
    assert not any(":" in a for s in interfaces.desired(cfg, topo, settings()).links
                   for a in s.addresses)
    assert not any("ipv6" in k for k, _ in sysctl.desired(cfg, topo, settings()).values)
    assert ra.render(ra.desired(cfg, topo, settings())) == ""


# -- interfaces -------------------------------------------------------------------


def test_interfaces_carry_the_ipv6_addresses() -> None:
    cfg, topo = dual_stack()
    links = {s.ifname: s for s in interfaces.desired(cfg, topo, settings()).links}
    assert "fd10:10:1::1/64" in links["eth2"].addresses
    assert "fd10:10:2::1/64" in links["eth3"].addresses
    assert "fd64:10::10/64" in links["eth1"].addresses
    assert not any(":" in a for a in links["eth4"].addresses)  # the private gateway


def test_a_pair_leaves_the_ipv6_gateway_to_keepalived() -> None:
    from tests.unit.builders import pair_docs

    bag = {**sample_bag("guest_network_tier1.json"), **TIER1_V6,
           "router_guest_ip": "10.10.1.2", "router_guest_ip6": "fd10:10:1::2"}
    cfg, topo = with_bags(pair_docs(), bag)
    spec = next(s for s in interfaces.desired(cfg, topo, settings()).links if s.ifname == "eth2")
    assert "fd10:10:1::2/64" in spec.addresses
    assert "fd10:10:1::1/64" in spec.protected and "fd10:10:1::1/64" not in spec.addresses


# -- routes and sysctls -------------------------------------------------------------


def test_ipv6_default_route_via_the_public_gateway() -> None:
    cfg, topo = dual_stack()
    d = routes.desired(cfg, topo, settings())
    assert routes.Route(routes.MAIN, "default", "fd64:10::1", "eth1") in d.routes
    # Still the IPv4 default too.
    assert routes.Route(routes.MAIN, "default", "100.64.10.1", "eth1") in d.routes


def test_sysctls_forward_ipv6_and_take_no_advertisements() -> None:
    cfg, topo = dual_stack()
    values = dict(sysctl.desired(cfg, topo, settings()).values)
    assert values["net/ipv6/conf/all/forwarding"] == "1"
    for dev in ("eth1", "eth2", "eth3"):
        assert values[f"net/ipv6/conf/{dev}/accept_ra"] == "0"
        assert values[f"net/ipv6/conf/{dev}/accept_dad"] == "0"
        assert values[f"net/ipv6/conf/{dev}/disable_ipv6"] == "0"
    assert "net/ipv6/conf/eth4/accept_ra" not in values


# -- router advertisements ------------------------------------------------------------


def test_radvd_advertises_the_prefix_and_rdnss() -> None:
    cfg, topo = dual_stack()
    d = ra.desired(cfg, topo, settings())
    assert d.tiers == (ra.Tier("eth2", "fd10:10:1::/64", ("fd10:10:1::1", "fd64:10::53")),
                       ra.Tier("eth3", "fd10:10:2::/64", ("fd10:10:2::1",)))
    text = ra.render(d)
    # Always, unlike upstream's identity test (apache/cloudstack#13121).
    assert "prefix fd10:10:1::/64" in text and "AdvAutonomous on;" in text


def test_a_pair_advertises_from_the_shared_link_local_address() -> None:
    from tests.unit.builders import pair_docs

    cfg, topo = with_bags(pair_docs(), *dual_stack_bags()[:2])
    d = ra.desired(cfg, topo, settings())
    assert {t.source for t in d.tiers} == {"fe80::1"}
    text = ra.render(d)
    assert re.search(r"AdvRASrcAddress\s*\{\s*fe80::1;\s*\};", text), text
    check_golden("ipv6/pair_ra.txt", text)
    # A standalone router advertises from the interface's own address.
    assert "AdvRASrcAddress" not in rendered(ra.NAME, *dual_stack())


def test_radvd_with_external_dns_only() -> None:
    docs = apply_bags([{"type": "cmdline", "cmd_line": {
        **sample_bag("cmd_line.json")["cmd_line"], "useextdns": "true"}}],
        copy.deepcopy(sample_docs()))
    cfg, topo = with_bags(docs, *dual_stack_bags())
    tiers = ra.desired(cfg, topo, settings()).tiers
    assert tiers[0].rdnss == ("fd64:10::53",)
    assert tiers[1].rdnss == ("fd10:10:2::1",)  # no dns6: the router still


def test_radvd_daemon_is_master_only_and_reloads_by_sighup() -> None:
    (d,) = ra_daemon.daemons(settings())
    assert d.master_only and d.reload_signal == "HUP"
    assert d.files[0].on_change == "reload" and d.files[0].checked
    assert d.check_argv(d.conf)[:2] == ["radvd", "--configtest"]


# -- DHCPv6 ----------------------------------------------------------------------------


def test_dhcpv6_serves_the_entry_by_duid() -> None:
    cfg, topo = dual_stack()
    d = dhcp.desired(cfg, topo, settings())
    files = dhcp.render(d)
    # One host with both leases: its MAC for DHCPv4, its DUID for DHCPv6.
    hosts = files["dnsmasq.dhcp-hosts"]
    assert ("02:00:0a:01:00:0a,id:00:03:00:01:02:00:0a:01:00:0a,10.10.1.10,[fd10:10:1::10],"
            "vm1,infinite\n") in hosts
    assert "fd10:10:1::10 vm1.vpc.lab vm1" in files["dnsmasq.hosts"]
    conf = files["dnsmasq.conf"]
    assert "dhcp-range=set:tier6-eth2,fd10:10:1::,static,64,infinite" in conf
    assert "dhcp-option=tag:tier6-eth2,option6:dns-server,[fd10:10:1::1],[fd64:10::53]" in conf
    assert "enable-ra" not in conf  # radvd advertises


def test_dhcpv6_port_opens_only_with_ipv6() -> None:
    cfg, topo = dual_stack()
    d = dhcp.desired(cfg, topo, settings())
    assert any(o.ports == (547,) for o in dhcp_feature.traffic(cfg, settings(), d).accept)
    cfg4, topo4 = with_bags(sample_docs())
    d4 = dhcp.desired(cfg4, topo4, settings())
    assert not any(547 in o.ports for o in dhcp_feature.traffic(cfg4, settings(), d4).accept)


def test_dhcpv6_entries_off_any_ipv6_tier_or_without_duid_are_warned() -> None:
    docs = apply_bags(dual_stack_bags(), copy.deepcopy(sample_docs()))
    cfg, topo = with_bags(docs, {**sample_bag("vm_dhcp_entry_vm2.json"),
                                 "ipv6_address": "fd99::5", "ipv6_duid": "00:03:00:01:02"},
                          {**sample_bag("vm_dhcp_entry_vm1.json"),
                           "ipv6_address": "fd10:10:1::10", "ipv6_duid": ""})
    d = dhcp.desired(cfg, topo, settings())
    assert d.hosts6 == ()
    assert any("fd99::5" in w and "no IPv6 tier" in w for w in d.warnings)
    assert any("no ipv6_duid" in w for w in d.warnings)


def test_an_ipv6_only_entry_is_served() -> None:
    docs = apply_bags(dual_stack_bags(), copy.deepcopy(sample_docs()))
    entry = {**sample_bag("vm_dhcp_entry_vm2.json"), **VM1_V6, "host_name": "v6only",
             "mac_address": "02:00:0a:01:00:0b"}
    del entry["ipv4_address"]
    cfg, topo = with_bags(docs, entry)
    files = dhcp.render(dhcp.desired(cfg, topo, settings()))
    assert "id:00:03:00:01:02:00:0a:01:00:0a,[fd10:10:1::10],v6only,infinite\n" in files[
        "dnsmasq.dhcp-hosts"]
    assert "fd10:10:1::10 v6only.vpc.lab v6only\n" in files["dnsmasq.hosts"]


def test_the_health_check_reads_a_dual_stack_host() -> None:
    # dhcp_check compares (MAC, IPv4, name): the bracketed IPv6 is not the name.
    from vragent.system.dnsmasq import host_fields

    line = "02:00:0a:01:00:0a,id:00:03:00:01:02:00:0a:01:00:0a,10.10.1.10,[fd10::10],vm1,infinite"
    assert host_fields(line) == ("02:00:0a:01:00:0a", "10.10.1.10", "vm1")


# -- bad input: refused, the field named ----------------------------------------------

# Newline, braces (radvd's blocks), "!" and FRR keywords (a config's comment
# and commands), quotes, NUL, a scope, whitespace.
HOSTILE = ["fd10::1\n", "fd10::1\ninterface eth0", "fd10::1{", "fd10::1}", "{}", "fd10::1!",
           "!", "fd10::1 neighbor", "router bgp 65000", "'fd10::1'", '"fd10::1"', "fd10::1\x00",
           "fd10::1%eth0", "fd10::1%x\n", " fd10::1", "fd10::1;"]
GUEST_FIELDS = ["router_guest_ip6", "router_guest_ip6_gateway", "router_guest_ip6_cidr",
                "cidr6", "dns6", "router_ip6", "router_ip6_gateway", "router_ip6_cidr"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("field", GUEST_FIELDS)
def test_guestnetwork_ipv6_fields_refuse_hostile_values(field: str, value: str) -> None:
    bag = {**sample_bag("guest_network_tier1.json"), **TIER1_V6, field: value}
    assert_rejected(bag, field)


@pytest.mark.parametrize("value", HOSTILE + ["00:03:00:01\n", "00:03:{}", "id:00:03"])
@pytest.mark.parametrize("field", ["ipv6_address", "ipv6_duid"])
def test_dhcpentry_ipv6_fields_refuse_hostile_values(field: str, value: str) -> None:
    bag = {**sample_bag("vm_dhcp_entry_vm1.json"), **VM1_V6, field: value}
    assert_rejected(bag, field)


@pytest.mark.parametrize("value", ["fd10::53,", ",fd10::53", "fd10::53, fd10::54",
                                   "10.0.0.53", "fd10::53,,fd10::54"])
def test_dns6_is_a_plain_list_of_ipv6_addresses(value: str) -> None:
    assert_rejected({**sample_bag("guest_network_tier1.json"), **TIER1_V6, "dns6": value},
                    "dns6")


@pytest.mark.parametrize(("drop", "keep"), [("router_guest_ip6_cidr", "router_guest_ip6"),
                                            ("router_ip6_gateway", "router_ip6")])
def test_ipv6_fields_that_go_together(drop: str, keep: str) -> None:
    bag = {**sample_bag("guest_network_tier1.json"), **TIER1_V6}
    del bag[drop]
    # A problem of the bag as a whole, naming both fields.
    assert_rejected(bag, "(bag)", keep, drop)


def test_reference_bags_parse() -> None:
    from vragent.bags import parse_bag

    g = parse_bag(load(REFERENCE / "guestnetwork-ipv6-1.json"))
    assert g.public6 == ("fd23:313a:2f53:3cbf::10", 64, "fd23:313a:2f53:3cbf::1")  # type: ignore[attr-defined]
    e = parse_bag(load(REFERENCE / "dhcpentry-ipv6-1.json"))
    assert e.ipv6_duid == "00:03:00:01:02:00:26:c3:00:02"  # type: ignore[attr-defined]
