"""Routes: default route, per-uplink policy routing, static routes."""

from __future__ import annotations

from typing import Any

from vragent.config import RouterConfig
from vragent.features.routes import subsystem as routes
from vragent.features.routes.subsystem import (
    MAIN,
    PRIO_FROM,
    PRIO_FWMARK,
    PRIO_MAIN_SPECIFIC,
    Desired,
    Route,
    Rule,
    render,
    route_argv,
    rule_argv,
)
from vragent.topology import resolve

from tests.unit.builders import (
    apply_bags,
    isolated_topology,
    link,
    pair_docs,
    pair_links,
    pair_topology,
    sample_bag,
    sample_docs,
    sample_links,
    sample_topology,
    settings,
)


def _desired(docs: dict[str, Any], links: dict[str, Any] | None = None) -> Desired:
    cfg = RouterConfig.from_docs(docs)
    return routes.desired(cfg, resolve(cfg, links or sample_links()), settings())


def test_sample_vpc() -> None:
    cfg, topo = sample_topology()
    d = routes.desired(cfg, topo, settings())
    assert d.routes == {
        Route(MAIN, "default", "100.64.10.1", "eth1"),
        Route(101, "default", "100.64.10.1", "eth1"),
        Route(MAIN, "10.99.0.0/24", "172.30.0.254", "eth4"),
    }
    assert d.rules == {
        Rule(PRIO_MAIN_SPECIFIC, MAIN, suppress_prefixlength=0),
        Rule(PRIO_FROM, 101, src="100.64.10.10"),
        Rule(PRIO_FROM, 101, src="100.64.10.11"),
        Rule(PRIO_FROM, 101, src="100.64.10.12"),
        Rule(PRIO_FWMARK, 101, fwmark=101),
    }
    assert routes.verify(d) == []
    assert d.warnings == ()


def test_priorities_order_main_before_uplinks() -> None:
    assert PRIO_MAIN_SPECIFIC < PRIO_FROM < PRIO_FWMARK


def test_static_route_waits_for_its_gateway() -> None:
    docs = sample_docs()
    docs = apply_bags([{"type": "ips", "ip_address": [
        {**sample_bag("private_gateway.json")["ip_address"][0], "add": False}]}], docs)
    d = _desired(docs)
    assert not any(r.dst == "10.99.0.0/24" for r in d.routes)
    assert d.warnings == (
        ("staticroutes.10.99.0.0/24: gateway 172.30.0.254 is not on a "
         "connected network yet; route not installed"),
    )
    assert routes.verify(d) == []  # a warning, not a refusal


def test_static_routes_on_tiers_and_public_and_normalised() -> None:
    docs = apply_bags([{"type": "staticroutes", "routes": [
        {"network": "192.168.7.1/24", "gateway": "10.10.2.254"},
        {"network": "198.18.0.0/15", "gateway": "100.64.10.254"},
    ]}], sample_docs())
    d = _desired(docs)
    assert Route(MAIN, "192.168.7.0/24", "10.10.2.254", "eth3") in d.routes
    assert Route(MAIN, "198.18.0.0/15", "100.64.10.254", "eth1") in d.routes


def test_two_uplinks_get_a_table_each() -> None:
    second = {"type": "ips", "ip_address": [{
        "public_ip": "198.18.113.5", "netmask": "24", "gateway": "198.18.113.1",
        "vif_mac_address": "02:00:0a:00:00:05", "nic_dev_id": 5, "nw_type": "Public"}]}
    links = {**sample_links(), "eth5": link("eth5", "02:00:0a:00:00:05")}
    d = _desired(apply_bags([second], sample_docs()), links)
    assert Route(105, "default", "198.18.113.1", "eth5") in d.routes
    assert Rule(PRIO_FROM, 105, src="198.18.113.5") in d.rules
    assert Rule(PRIO_FWMARK, 105, fwmark=105) in d.rules
    # The main default route stays with the source-NAT uplink.
    assert [r for r in d.routes if r.table == MAIN and r.dst == "default"] == [
        Route(MAIN, "default", "100.64.10.1", "eth1")]


def test_public_interface_without_gateway_has_no_table() -> None:
    ips = sample_bag("ip_associations.json")
    for a in ips["ip_address"]:
        del a["gateway"]
    d = _desired(apply_bags([sample_bag("cmd_line.json"), ips]))
    assert d.routes == frozenset()
    assert d.rules == {Rule(PRIO_MAIN_SPECIFIC, MAIN, suppress_prefixlength=0)}


def test_default_route_from_boot_parameters_without_public_interfaces() -> None:
    cmd = {"type": "cmdline", "cmd_line": {"type": "router", "eth0ip": "169.254.0.10",
                                           "eth0mask": "255.255.0.0", "eth1ip": "10.1.1.5",
                                           "eth1mask": "255.255.255.0",
                                           "gateway": "10.1.1.1"}}
    links = {"eth0": link("eth0"), "eth1": link("eth1")}
    d = _desired(apply_bags([cmd]), links)
    assert d.routes == {Route(MAIN, "default", "10.1.1.1", "eth1")}
    assert d.rules == frozenset()
    # A gateway on no boot-parameter network gives no route.
    off = apply_bags([{**cmd, "cmd_line": {**cmd["cmd_line"], "gateway": "198.18.2.1"}}])
    assert _desired(off, links).routes == frozenset()


def test_argv() -> None:
    assert route_argv(Route(MAIN, "default", "1.1.1.1", "eth1")) == [
        "to", "default", "via", "1.1.1.1", "dev", "eth1", "table", "main"]
    assert route_argv(Route(101, "10.0.0.0/8", "1.1.1.1", "eth1"))[-1] == "101"
    assert rule_argv(Rule(90, MAIN, suppress_prefixlength=0)) == [
        "priority", "90", "lookup", "main", "suppress_prefixlength", "0"]
    assert rule_argv(Rule(100, 101, src="1.2.3.4")) == [
        "priority", "100", "from", "1.2.3.4", "lookup", "101"]
    assert rule_argv(Rule(110, 101, fwmark=101)) == [
        "priority", "110", "fwmark", "101", "lookup", "101"]


def test_render_sorted_routes_then_rules() -> None:
    d = Desired(
        routes=frozenset({Route(MAIN, "default", "1.1.1.1", "eth1"),
                          Route(101, "default", "1.1.1.1", "eth1")}),
        rules=frozenset({Rule(110, 101, fwmark=101), Rule(100, 101, src="1.1.1.2")}),
    )
    assert render(d) == ("route to default via 1.1.1.1 dev eth1 table 101\n"
                         "route to default via 1.1.1.1 dev eth1 table main\n"
                         "rule priority 100 from 1.1.1.2 lookup 101\n"
                         "rule priority 110 fwmark 101 lookup 101\n")
    assert render(Desired(frozenset(), frozenset())) == ""


def test_isolated_router_routes() -> None:
    cfg, topo = isolated_topology()
    d = routes.desired(cfg, topo, settings())
    assert Route(MAIN, "default", "100.64.20.1", "eth2") in d.routes
    assert {r.src for r in d.rules if r.priority == PRIO_FROM} == {"100.64.20.10",
                                                                   "100.64.20.11"}


def test_pair_public_default_routes_are_onlink() -> None:
    cfg, topo = pair_topology()
    d = routes.desired(cfg, topo, settings())
    # On the backup the public address is absent: only an on-link route stays valid.
    assert d.routes == {
        Route(MAIN, "default", "100.64.10.1", "eth1", onlink=True),
        Route(101, "default", "100.64.10.1", "eth1", onlink=True),
        Route(MAIN, "10.99.0.0/24", "172.30.0.254", "eth4"),  # private gateway: ours
    }
    # The rules do not depend on redundancy.
    assert d.rules == routes.desired(*sample_topology(), settings()).rules


def test_standalone_public_default_routes_are_not_onlink() -> None:
    for docs in (sample_docs(), pair_docs(redundant_router="0")):
        d = _desired(docs, pair_links())
        defaults = [r for r in d.routes if r.dst == "default"]
        assert len(defaults) == 2
        assert not any(r.onlink for r in d.routes)


def test_cloudstack_mode_pair_public_default_routes_are_onlink() -> None:
    # No sync link: still a pair (CloudStack mode), the public IPs are keepalived's.
    d = _desired(pair_docs(drop=("sync_dev", "sync_peer")), pair_links())
    assert {r.onlink for r in d.routes if r.dst == "default"} == {True}


def test_onlink_argv() -> None:
    assert route_argv(Route(101, "default", "100.64.10.1", "eth1", onlink=True)) == [
        "to", "default", "via", "100.64.10.1", "dev", "eth1", "table", "101", "onlink"]
    assert "onlink" not in route_argv(Route(101, "default", "100.64.10.1", "eth1"))


def test_pair_render_marks_onlink_routes() -> None:
    cfg, topo = pair_topology()
    text = render(routes.desired(cfg, topo, settings()))
    assert "route to default via 100.64.10.1 dev eth1 table main onlink\n" in text
    assert "route to default via 100.64.10.1 dev eth1 table 101 onlink\n" in text
    assert "route to 10.99.0.0/24 via 172.30.0.254 dev eth4 table main\n" in text


def test_pair_static_route_via_a_tier_is_onlink_but_via_the_private_gateway_is_not() -> None:
    # keepalived owns the tier's address: on the backup only an on-link route is valid.
    docs = pair_docs()
    cfg = RouterConfig.from_docs(apply_bags(
        [{"type": "staticroutes", "routes": [
            {"network": "192.168.7.0/24", "gateway": "10.10.2.254", "revoke": False}]}], docs))
    d = routes.desired(cfg, resolve(cfg, pair_links()), settings())
    assert Route(MAIN, "192.168.7.0/24", "10.10.2.254", "eth3", onlink=True) in d.routes
    assert Route(MAIN, "10.99.0.0/24", "172.30.0.254", "eth4") in d.routes
