"""Resolving stored device keys to the interfaces actually present."""

from __future__ import annotations

import ipaddress
import zlib

import pytest
from vragent.config import RouterConfig
from vragent.topology import GuestIf, SyncLink, Topology, VrrpLink, resolve, table_for
from vragent_lab.netns import ROUTER_MACS

from tests.unit.builders import (
    apply_bags,
    cloudstack_pair_topology,
    isolated_bags,
    isolated_links,
    isolated_topology,
    link,
    sample_bag,
    sample_config,
    sample_docs,
    sample_links,
    sample_topology,
)


def test_sample_vpc() -> None:
    _, topo = sample_topology()
    assert topo.router_type == "vpcrouter"
    assert topo.control == {"eth0": "169.254.0.10/16"}
    assert topo.missing == ()
    (pub,) = topo.public
    assert (pub.ifname, pub.key, pub.table, pub.gateway) == ("eth1", "eth1", 101, "100.64.10.1")
    assert [a.public_ip for a in pub.addresses] == ["100.64.10.10", "100.64.10.11",
                                                    "100.64.10.12"]
    assert pub.snat_ip == "100.64.10.10"
    assert pub.source_nat is True
    assert topo.guests == (
        GuestIf("eth2", "eth2", "10.10.1.1", ipaddress.IPv4Network("10.10.1.0/24"), None),
        GuestIf("eth3", "eth3", "10.10.2.1", ipaddress.IPv4Network("10.10.2.0/24"), None),
        GuestIf("eth4", "eth4", "172.30.0.1", ipaddress.IPv4Network("172.30.0.0/24"), None,
                private_gateway=True),
    )
    assert topo.guest_names == ["eth2", "eth3", "eth4"]
    assert topo.public_names == ["eth1"]


def test_resolution_is_by_mac_not_by_name() -> None:
    # The kernel named the NICs differently (hot-plug order): MACs decide.
    renamed = {"eth0": link("eth0"),
               "ens5": link("ens5", ROUTER_MACS["eth1"]),
               "eth1": link("eth1", ROUTER_MACS["eth2"]),
               "eth2": link("eth2", ROUTER_MACS["eth3"]),
               "eth9": link("eth9", ROUTER_MACS["eth4"])}
    topo = resolve(sample_config(), renamed)
    (pub,) = topo.public
    assert (pub.ifname, pub.key, pub.table) == ("ens5", "eth1", table_for("ens5"))
    assert [(g.ifname, g.key) for g in topo.guests] == [("eth1", "eth2"), ("eth2", "eth3"),
                                                        ("eth9", "eth4")]
    assert topo.guest_by_key("eth2") == topo.guests[0]  # by stored key
    assert topo.guest_by_key("eth9") == topo.guests[2]  # or by interface name


def test_missing_interfaces_reported() -> None:
    links = {k: v for k, v in sample_links().items() if k not in ("eth1", "eth4")}
    topo = resolve(sample_config(), links)
    assert topo.public == ()
    assert topo.guest_names == ["eth2", "eth3"]
    assert topo.missing == (
        "ips.eth1: no interface with MAC 02:00:0a:00:00:01 is present",
        "ips.eth4: no interface with MAC 02:00:0a:00:00:04 is present",
    )


def test_guest_without_its_ips_entry_reported_when_absent() -> None:
    docs = sample_docs()
    del docs["ips"]["eth3"]
    links = {k: v for k, v in sample_links().items() if k != "eth3"}
    topo = resolve(RouterConfig.from_docs(docs), links)
    assert topo.missing == ("guestnetwork.eth3: no interface with MAC 02:00:0a:00:00:03",)


def test_address_without_mac_found_by_key() -> None:
    ips = {"type": "ips", "ip_address": [{"public_ip": "100.64.10.10", "netmask": "24",
                                          "source_nat": True, "gateway": "100.64.10.1",
                                          "nic_dev_id": 1}]}
    cfg = RouterConfig.from_docs(apply_bags([sample_bag("cmd_line.json"), ips]))
    topo = resolve(cfg, {"eth0": link("eth0"), "eth1": link("eth1", "02:aa:00:00:00:01")})
    assert topo.public_names == ["eth1"]
    assert resolve(cfg, {"eth0": link("eth0")}).missing == (
        "ips.eth1: no interface with MAC (none) is present",)


def test_control_only_for_present_links() -> None:
    cfg = sample_config()
    assert resolve(cfg, {}).control == {}
    assert resolve(cfg, {"eth0": link("eth0")}).control == {"eth0": "169.254.0.10/16"}


@pytest.mark.parametrize(("ifname", "table"), [("eth0", 100), ("eth1", 101), ("eth12", 112)])
def test_table_for_eth(ifname: str, table: int) -> None:
    assert table_for(ifname) == table


def test_table_for_other_names_is_stable_and_out_of_eth_range() -> None:
    for name in ("ens5", "enp0s3", "pub0", "eth1.100"):
        t = table_for(name)
        assert t == 1000 + zlib.crc32(name.encode()) % 30000
        assert 1000 <= t < 31000
        assert t != 254  # never the main table


def test_snat_interface() -> None:
    _, topo = sample_topology()
    assert topo.snat_interface() == topo.public[0]
    assert Topology("vpcrouter").snat_interface() is None
    ips = {"type": "ips", "ip_address": [{"public_ip": "198.18.113.5", "netmask": "24",
                                          "vif_mac_address": "02:00:0a:00:00:05",
                                          "nic_dev_id": 5}]}
    cfg = RouterConfig.from_docs(apply_bags([sample_bag("cmd_line.json"), ips]))
    topo = resolve(cfg, {"eth5": link("eth5", "02:00:0a:00:00:05")})
    # No source-NAT address anywhere: the first public interface.
    assert topo.snat_interface() == topo.public[0]
    assert topo.public[0].source_nat is False


def test_connected_networks() -> None:
    _, topo = sample_topology()
    nets = {str(n) for n, _ in topo.connected()}
    assert nets == {"10.10.1.0/24", "10.10.2.0/24", "172.30.0.0/24", "100.64.10.0/24",
                    "169.254.0.0/16"}


def test_isolated_router_type() -> None:
    # Upstream's isolated layout (merge.py processCL, createGuestBootLoadArgs): the
    # guest NIC eth0 comes from the boot parameters, control is eth1, public eth2.
    _, topo = isolated_topology()
    assert topo.router_type == "router"
    assert topo.public_names == ["eth2"]
    assert topo.control == {"eth1": "169.254.1.5/16"}
    assert topo.guests == (
        GuestIf("eth0", "eth0", "10.20.1.1", ipaddress.IPv4Network("10.20.1.0/24"), None),)


# -- the pair's links, decided from the bags ----------------------------------------


def test_cloudstack_pair_links() -> None:
    """No sync link: VRRP on the source-NAT IP's NIC, conntrackd on the first tier."""
    _, topo = cloudstack_pair_topology()
    assert topo.redundant is True
    assert topo.vrrp == VrrpLink("eth1", "169.254.0.10", 32, "100.64.10.10", 24, None,
                                 borrowed_src=True)
    assert topo.sync == SyncLink("eth2", "10.10.1.2", None)
    # router_guest_ip is the router's own; router_guest_gateway the shared VIP.
    (t1, t2, pgw) = topo.guests
    assert (t1.ip, t1.vip, t1.gateway) == ("10.10.1.2", "10.10.1.1", "10.10.1.1")
    assert (t2.ip, t2.vip) == ("10.10.2.2", "10.10.2.1")
    assert (pgw.private_gateway, pgw.vip) == (True, None)
    assert topo.vrrp_devs == {"eth1", "eth2", "eth3"}


def test_cloudstack_pair_before_the_source_nat_ip_has_no_vrrp_link() -> None:
    docs = apply_bags([{**sample_bag("cmd_line.json"), "cmd_line": {
        **sample_bag("cmd_line.json")["cmd_line"], "redundant_router": "1"}}])
    cfg = RouterConfig.from_docs(docs)
    topo = resolve(cfg, sample_links())
    assert (topo.redundant, topo.vrrp, topo.sync) == (True, None, None)


def test_standalone_guest_gateway_is_its_own_address() -> None:
    # Upstream configures router_guest_ip only; a differing gateway is not an address.
    docs = sample_docs()
    docs["guestnetwork"]["eth2"]["router_guest_gateway"] = "10.10.1.0"
    cfg = RouterConfig.from_docs(docs)
    (t1, *_) = resolve(cfg, sample_links()).guests
    assert (t1.ip, t1.vip, t1.gateway) == ("10.10.1.1", None, "10.10.1.1")


def test_isolated_pair_guest_gateway_is_guestgw() -> None:
    bags = isolated_bags()
    bags[0]["cmd_line"].update({"redundant_router": "1", "eth0ip": "10.20.1.2",
                                "guestgw": "10.20.1.1"})
    cfg = RouterConfig.from_docs(apply_bags(bags))
    topo = resolve(cfg, isolated_links())
    (guest,) = topo.guests
    assert (guest.ifname, guest.ip, guest.vip) == ("eth0", "10.20.1.2", "10.20.1.1")
    assert topo.vrrp is not None and topo.vrrp.ifname == "eth2"
    assert topo.sync == SyncLink("eth0", "10.20.1.2", None)


def test_dhcp_only_router_serves_eth0() -> None:
    bags = [{"type": "cmdline", "cmd_line": {
        "type": "dhcpsrvr", "eth0ip": "10.30.0.1", "eth0mask": "255.255.255.0",
        "eth1ip": "169.254.3.3", "eth1mask": "255.255.0.0"}}]
    cfg = RouterConfig.from_docs(apply_bags(bags))
    topo = resolve(cfg, {"eth0": link("eth0"), "eth1": link("eth1")})
    assert topo.guest_names == ["eth0"]
    assert topo.control == {"eth1": "169.254.3.3/16"}
