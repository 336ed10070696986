"""Interfaces: links up, MTUs, exactly the configured addresses."""

from __future__ import annotations

from typing import Any

from vragent.config import RouterConfig
from vragent.features.interfaces import subsystem as interfaces
from vragent.features.interfaces.subsystem import Desired, LinkSpec, render
from vragent.topology import resolve

from tests.unit.builders import (
    PAIR_BOOT,
    apply_bags,
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
    return interfaces.desired(cfg, resolve(cfg, links or sample_links()), settings())


def _by_name(d: Desired) -> dict[str, LinkSpec]:
    return {s.ifname: s for s in d.links}


def test_sample_vpc() -> None:
    cfg, topo = sample_topology()
    d = interfaces.desired(cfg, topo, settings())
    assert [s.ifname for s in d.links] == ["eth0", "eth1", "eth2", "eth3", "eth4"]
    links = _by_name(d)
    # The control address is wanted and never removed.
    assert links["eth0"] == LinkSpec("eth0", frozenset({"169.254.0.10/16"}),
                                     protected=frozenset({"169.254.0.10/16"}))
    assert links["eth1"].addresses == {"100.64.10.10/24", "100.64.10.11/24", "100.64.10.12/24"}
    assert links["eth1"].protected == frozenset()
    assert links["eth2"].addresses == {"10.10.1.1/24"}
    assert links["eth4"].addresses == {"172.30.0.1/24"}
    assert interfaces.verify(d) == []


def test_redundant_router_leaves_vips_to_keepalived() -> None:
    docs = sample_docs()
    docs["cmdline"]["config"].update(PAIR_BOOT)
    links = _by_name(_desired(docs))
    # Ours there: only the control address, link-scoped, so that the link never
    # empties (the kernel drops a link's routes with its last address).
    assert links["eth1"].addresses == links["eth1"].link_scope == {"169.254.0.10/32"}
    assert links["eth1"].protected == {"100.64.10.10/24", "100.64.10.11/24", "100.64.10.12/24"}
    assert links["eth2"].addresses == {"169.254.0.10/32"}
    assert links["eth2"].protected == {"10.10.1.1/24"}
    # The private gateway is not a VIP: still ours.
    assert links["eth4"].addresses == {"172.30.0.1/24"}
    assert links["eth4"].protected == frozenset()
    assert links["eth0"].addresses == {"169.254.0.10/16"}


def test_guest_mtu() -> None:
    guest = {**sample_bag("guest_network_tier1.json"), "mtu": 9000}
    links = _by_name(_desired(apply_bags([guest], sample_docs())))
    assert links["eth2"].mtu == 9000
    assert links["eth3"].mtu is None


def test_missing_interface_is_a_problem() -> None:
    links = sample_links()
    del links["eth3"]
    d = _desired(sample_docs(), links)
    assert "eth3" not in _by_name(d)
    assert interfaces.verify(d) == [
        "ips.eth3: no interface with MAC 02:00:0a:00:00:03 is present"]


def test_render_format() -> None:
    d = Desired((
        LinkSpec("eth0", frozenset({"169.254.0.10/16"}), protected=frozenset({"169.254.0.10/16"})),
        LinkSpec("eth1", frozenset({"100.64.10.11/24", "100.64.10.10/24"})),
        LinkSpec("eth2", frozenset(), 9000, protected=frozenset({"10.10.1.1/24"})),
    ))
    assert render(d) == (
        "link eth0 up addresses 169.254.0.10/16 keep 169.254.0.10/16\n"
        "link eth1 up addresses 100.64.10.10/24 100.64.10.11/24\n"
        "link eth2 up mtu 9000 addresses - keep 10.10.1.1/24\n"
    )
    assert render(Desired(())) == ""


def test_bootstrapping_vpc_router_has_only_its_control_link() -> None:
    d = _desired(apply_bags([sample_bag("cmd_line.json")]))
    assert [s.ifname for s in d.links] == ["eth0"]


def test_sync_link_protects_the_advert_address() -> None:
    cfg, topo = pair_topology()
    links = _by_name(interfaces.desired(cfg, topo, settings()))
    # The sync address is the router's own; the advert address is keepalived's, on
    # the master only, and must survive every reconcile on it.
    assert links["eth5"] == LinkSpec("eth5", frozenset({"10.255.0.1/24"}),
                                     protected=frozenset({"10.255.0.1/24", "10.255.0.254/24"}))
    # Only on the sync link: the control link keeps just its own address.
    assert links["eth0"].protected == {"169.254.0.10/16"}


def test_sync_link_protects_an_explicit_advert_address() -> None:
    links = _by_name(_desired(pair_docs(sync_vip="10.255.0.100"), pair_links()))
    assert links["eth5"].protected == {"10.255.0.1/24", "10.255.0.100/24"}
    assert links["eth5"].addresses == {"10.255.0.1/24"}  # never added by the agent


def test_standalone_router_protects_no_advert_address() -> None:
    links = _by_name(_desired(pair_docs(redundant_router="0"), pair_links()))
    assert links["eth5"] == LinkSpec("eth5", frozenset({"10.255.0.1/24"}),
                                     protected=frozenset({"10.255.0.1/24"}))
    # Standalone, the router owns its tier gateways and public IPs itself.
    assert links["eth2"].addresses == {"10.10.1.1/24"}
    assert links["eth1"].protected == frozenset()


def test_pair_render_keeps_vips_for_keepalived() -> None:
    cfg, topo = pair_topology()
    text = render(interfaces.desired(cfg, topo, settings()))
    assert "link eth5 up addresses 10.255.0.1/24 keep 10.255.0.1/24 10.255.0.254/24\n" in text
    assert ("link eth2 up addresses 169.254.0.10/32 keep 10.10.1.1/24 (addresses owned by "
            "VRRP) link-scope 169.254.0.10/32\n") in text
    assert "link eth4 up addresses 172.30.0.1/24\n" in text


def test_pair_links_carrying_vips_are_keepalived_s() -> None:
    cfg, topo = pair_topology()
    owned = {s.ifname for s in interfaces.desired(cfg, topo, settings()).links if s.vrrp_owned}
    # Public and tier links; not the private gateway, the sync or the control link.
    assert owned == {"eth1", "eth2", "eth3"}
    standalone = _desired(pair_docs(redundant_router="0"), pair_links())
    assert not any(s.vrrp_owned for s in standalone.links)
