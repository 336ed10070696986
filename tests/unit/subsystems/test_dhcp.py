"""dnsmasq's configuration from the entries, tiers and boot parameters (pure)."""

from __future__ import annotations

from typing import Any

from vragent.config import RouterConfig
from vragent.features.dhcp import subsystem as dhcp
from vragent.topology import resolve

from tests.unit.builders import apply_bags, sample_bag, sample_docs, sample_links, settings


def _render(*bags: dict[str, Any], docs: Any = None) -> tuple[dhcp.Desired, dict[str, str]]:
    cfg = RouterConfig.from_docs(apply_bags(list(bags), docs or sample_docs()))
    d = dhcp.desired(cfg, resolve(cfg, sample_links()), settings())
    assert dhcp.verify(d) == []
    return d, dict(dhcp.render(d).files)


def entry(**fields: Any) -> dict[str, Any]:
    return {**sample_bag("vm_dhcp_entry_vm1.json"), **fields}


def test_default_entries_are_in_the_reloadable_hosts_file_without_tags() -> None:
    d, files = _render()
    assert "02:00:0a:01:00:0a,10.10.1.10,vm1,infinite" in files["dnsmasq.dhcp-hosts"]
    assert "set:" not in files["dnsmasq.dhcp-hosts"]
    assert "dhcp-host=" not in files["dnsmasq.conf"]
    assert "10.10.1.10 vm1.vpc.lab vm1" in files["dnsmasq.hosts"]


def test_adding_an_entry_changes_only_the_reloadable_files() -> None:
    _, before = _render()
    _, after = _render(entry(host_name="web", mac_address="02:00:0a:01:00:77",
                             ipv4_address="10.10.1.77"))
    assert after["dnsmasq.conf"] == before["dnsmasq.conf"]
    assert after["dnsmasq.dhcp-hosts"] != before["dnsmasq.dhcp-hosts"]
    assert after["dnsmasq.hosts"] != before["dnsmasq.hosts"]


def test_non_default_nic_gets_empty_router_dns_and_domain_in_the_main_file() -> None:
    d, files = _render(entry(default_entry=False))
    conf = files["dnsmasq.conf"]
    assert "dhcp-host=02:00:0a:01:00:0a,set:vr-custom,set:vm-10-10-1-10,10.10.1.10,vm1," \
           "infinite" in conf
    for opt in ("router", "dns-server", "domain-name"):
        assert f"dhcp-option=tag:vm-10-10-1-10,option:{opt}\n" in conf
    # The tier's defaults skip it.
    assert "dhcp-option=tag:tier-eth2,tag:!vr-custom,option:router,10.10.1.1" in conf
    assert "02:00:0a:01:00:0a" not in files["dnsmasq.dhcp-hosts"]
    assert "10.10.1.10 vm1.vpc.lab vm1" in files["dnsmasq.hosts"]  # still resolvable


def test_static_routes_carry_the_default_route() -> None:
    _, files = _render(entry(static_routes="10.99.0.0/16,10.10.1.254"))
    assert ("dhcp-option=tag:vm-10-10-1-10,option:classless-static-route,"
            "10.99.0.0/16,10.10.1.254,0.0.0.0/0,10.10.1.1") in files["dnsmasq.conf"]


def test_own_dns_servers_and_lease_time() -> None:
    _, files = _render(entry(dns_addresses="9.9.9.9", lease_time=7200))
    assert "dhcp-option=tag:vm-10-10-1-10,option:dns-server,9.9.9.9" in files["dnsmasq.conf"]
    assert "10.10.1.10,vm1,7200" in files["dnsmasq.conf"]


def test_upstream_servers_never_include_the_router_itself() -> None:
    d, _ = _render()
    # The sample tiers name the router (10.10.x.1) as their DNS: not forwarded to.
    assert d.upstream == ("100.64.10.1",)


def test_tier_domain_defaults() -> None:
    docs = sample_docs()
    bag = sample_bag("guest_network_tier1.json")
    del bag["domain_name"]
    cmd = sample_bag("cmd_line.json")
    del cmd["cmd_line"]["domain"]
    d, _ = _render(cmd, bag, docs=docs)
    assert {t.ifname: t.domain for t in d.tiers}["eth2"] == dhcp.DEFAULT_DOMAIN


def test_entry_on_no_tier_is_a_warning() -> None:
    d, files = _render(entry(ipv4_address="192.168.77.5", mac_address="02:00:0a:01:00:99"))
    assert any("192.168.77.5" in w for w in d.warnings)
    assert "192.168.77.5" not in files["dnsmasq.dhcp-hosts"]


def test_alias_subnet_is_served_on_the_first_guest_nic() -> None:
    alias = {"type": "ipaliases", "aliases": [
        {"ip_address": "10.77.0.1", "netmask": "255.255.255.0", "revoke": False}]}
    d, files = _render(alias, entry(ipv4_address="10.77.0.5"))
    conf = files["dnsmasq.conf"]
    assert "# tier eth2 10.77.0.0/24" in conf
    assert "dhcp-range=set:alias-10-77-0-1,10.77.0.0,static,255.255.255.0,infinite" in conf
    assert conf.count("interface=eth2") == 1


def test_no_tier_no_dnsmasq() -> None:
    cfg = RouterConfig.from_docs(apply_bags([sample_bag("cmd_line.json")]))
    d = dhcp.desired(cfg, resolve(cfg, sample_links()), settings())
    assert not d.enabled and dhcp.render(d).text() == ""
