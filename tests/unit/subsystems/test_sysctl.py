"""Kernel settings: forwarding on, reverse-path filtering per role."""

from __future__ import annotations

from vragent.config import RouterConfig
from vragent.features.sysctl import subsystem as sysctl
from vragent.features.sysctl.subsystem import Desired, render
from vragent.topology import resolve

from tests.unit.builders import sample_docs, sample_links, sample_topology, settings


def test_sample_vpc() -> None:
    cfg, topo = sample_topology()
    d = sysctl.desired(cfg, topo, settings())
    assert dict(d.values) == {
        "net/ipv4/ip_forward": "1",
        "net/ipv4/conf/all/rp_filter": "0",
        # A source-NAT IP moved within its subnet survives its predecessor's removal.
        "net/ipv4/conf/all/promote_secondaries": "1",
        "net/ipv4/conf/eth1/rp_filter": "2",  # loose on the uplink
        "net/ipv4/conf/eth2/rp_filter": "1",  # strict on tiers
        "net/ipv4/conf/eth3/rp_filter": "1",
        "net/ipv4/conf/eth4/rp_filter": "1",
    }
    assert list(d.values) == sorted(d.values)
    assert sysctl.verify(d) == []


def test_disable_rp_filter() -> None:
    docs = sample_docs()
    docs["cmdline"]["config"]["disable_rp_filter"] = "true"
    cfg = RouterConfig.from_docs(docs)
    d = sysctl.desired(cfg, resolve(cfg, sample_links()), settings())
    values = dict(d.values)
    assert values["net/ipv4/ip_forward"] == "1"
    assert {v for k, v in values.items() if k.endswith("rp_filter")} == {"0"}


def test_render() -> None:
    d = Desired((("net/ipv4/conf/eth1.100/rp_filter", "2"), ("net/ipv4/ip_forward", "1")))
    assert render(d) == "net/ipv4/conf/eth1.100/rp_filter = 2\nnet/ipv4/ip_forward = 1\n"
    assert render(Desired(())) == ""


def test_cloudstack_mode_pair_silences_ipv6_on_the_shared_public_nic() -> None:
    docs = sample_docs()
    docs["cmdline"]["config"]["redundant_router"] = "1"
    cfg = RouterConfig.from_docs(docs)
    values = dict(sysctl.desired(cfg, resolve(cfg, sample_links()), settings()).values)
    assert values["net/ipv6/conf/eth1/disable_ipv6"] == "1"
    standalone = dict(sysctl.desired(*sample_topology(), settings()).values)
    assert not any("disable_ipv6" in k for k in standalone)
