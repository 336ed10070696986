"""conntrackd: connection state replicated to the peer over the sync link."""

from __future__ import annotations

from pathlib import Path

import pytest
from vragent.config import RouterConfig
from vragent.features.conntrack import subsystem as conntrack
from vragent.features.conntrack.daemon import CONF as CONNTRACKD_CONF
from vragent.features.conntrack.daemon import LOCK as CONNTRACKD_LOCK
from vragent.topology import resolve

from tests.unit.builders import (
    apply_bags,
    extra_public_ip_bag,
    pair_cmdline,
    pair_docs,
    pair_links,
    pair_topology,
    sample_bag,
    sample_links,
    sample_topology,
    settings,
    third_tier_bag,
    with_bags,
)


def _desired(drop: tuple[str, ...] = (), **boot: str) -> conntrack.Desired:
    cfg, topo = pair_topology(drop, **boot)
    d = conntrack.desired(cfg, topo, settings())
    assert conntrack.verify(d) == []
    return d


def _block(text: str, opening: str) -> list[str]:
    """The lines inside the block that ``opening`` (a whole stripped line) starts."""
    lines = text.splitlines()
    start = [line.strip() for line in lines].index(opening)
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(i for i in range(start + 1, len(lines))
               if lines[i].strip() == "}" and len(lines[i]) - 1 == indent)
    return [line.strip() for line in lines[start + 1:end]]


def test_standalone_router_has_no_conntrackd() -> None:
    cfg, topo = sample_topology()
    d = conntrack.desired(cfg, topo, settings())
    assert d == conntrack.Desired(enabled=False)
    assert conntrack.render(d) == ""


def test_cloudstack_mode_syncs_on_the_first_tier_by_multicast() -> None:
    # As upstream (CsRedundant._redundant_on): the lowest guest tier, from the
    # router's own address there, multicast 225.0.0.50.
    cfg = RouterConfig.from_docs(pair_docs(drop=("sync_dev", "sync_peer")))
    d = conntrack.desired(cfg, resolve(cfg, sample_links()), settings())
    assert (d.enabled, d.sync_dev, d.sync_ip, d.peer, d.group) == (
        True, "eth2", "10.10.1.1", None, "225.0.0.50")
    assert "IPv4_interface 10.10.1.1" in conntrack.render(d)


def test_cloudstack_mode_without_a_tier_has_no_conntrackd() -> None:
    docs = apply_bags([pair_cmdline(drop=("sync_dev", "sync_peer")),
                       sample_bag("ip_associations.json")])
    cfg = RouterConfig.from_docs(docs)
    d = conntrack.desired(cfg, resolve(cfg, sample_links()), settings())
    assert d == conntrack.Desired(enabled=False)


def test_sample_pair() -> None:
    d = _desired()
    assert d.enabled is True
    assert (d.sync_dev, d.sync_ip, d.peer, d.port) == ("eth5", "10.255.0.1", "10.255.0.2",
                                                      conntrack.PORT)
    assert d.lock_file == "/nonexistent/vragent-unit/run/vragent/conntrackd.lock"
    assert d.socket == "/nonexistent/vragent-unit/run/vragent/conntrackd.sock"


def test_unicast_channel_to_the_peer() -> None:
    text = conntrack.render(_desired())
    sync = _block(text, "Sync {")
    assert "Multicast {" not in sync
    assert _block(text, "UDP {")[:4] == [
        "IPv4_address 10.255.0.1", "IPv4_Destination_Address 10.255.0.2",
        f"Port {conntrack.PORT}", "Interface eth5"]
    assert "Mode FTFW {" in sync


def test_multicast_channel_without_a_peer() -> None:
    d = _desired(drop=("sync_peer",))
    assert d.peer is None
    text = conntrack.render(d)
    assert "UDP {" not in _block(text, "Sync {")
    assert "IPv4_Destination_Address" not in text
    assert _block(text, "Multicast {")[:4] == [
        f"IPv4_address {conntrack.MULTICAST_GROUP}", f"Group {conntrack.PORT}",
        "IPv4_interface 10.255.0.1", "Interface eth5"]


def test_ignore_list_holds_the_routers_own_addresses() -> None:
    d = _desired(sync_vip="10.255.0.100")
    # Sync address, peer, advert address and the control address from the boot line.
    assert d.ignore == ("10.255.0.1", "10.255.0.100", "10.255.0.2", "169.254.0.10")
    ignored = _block(conntrack.render(d), "Address Ignore {")
    assert [line for line in ignored if line.startswith("IPv4_address")] == [
                       "IPv4_address 127.0.0.1", "IPv4_address 10.255.0.1",
                       "IPv4_address 10.255.0.100", "IPv4_address 10.255.0.2",
                       "IPv4_address 169.254.0.10"]


def test_ignore_list_without_peer() -> None:
    assert _desired(drop=("sync_peer",)).ignore == ("10.255.0.1", "10.255.0.254",
                                                    "169.254.0.10")


def test_ignore_list_never_holds_tier_or_public_addresses() -> None:
    # Connections through the router are exactly what must be replicated.
    text = conntrack.render(_desired())
    ignored = " ".join(_block(text, "Address Ignore {"))
    for addr in ("10.10.1.1", "10.10.2.1", "100.64.10.10", "100.64.10.11", "172.30.0.1"):
        assert addr not in ignored


@pytest.mark.parametrize(
    "bags",
    [
        [third_tier_bag()],
        [extra_public_ip_bag()],
        [third_tier_bag(), extra_public_ip_bag()],
        [{"type": "ips",
          "ip_address": [{**sample_bag("ip_associations.json")["ip_address"][2], "add": False}]}],
        [{**sample_bag("guest_network_tier2.json"), "add": False}],
    ],
    ids=["tier", "public-ip", "both", "public-ip-removed", "tier-removed"],
)
def test_configuration_ignores_tiers_and_public_ips(bags: list[dict[str, object]]) -> None:
    # conntrackd has no reload: a changed file would mean a restart, and with it
    # the loss of the external cache a takeover commits.
    docs = pair_docs()
    before = conntrack.render(conntrack.desired(*with_bags(docs), settings()))
    after_cfg, after_topo = with_bags(docs, *bags)
    assert after_cfg.ips != RouterConfig.from_docs(docs).ips  # the bags did change something
    assert conntrack.render(conntrack.desired(after_cfg, after_topo, settings())) == before


def test_configuration_is_the_boot_time_one() -> None:
    # What conntrackd starts with at boot is what it keeps once the VPC arrives.
    boot = RouterConfig.from_docs(apply_bags([pair_cmdline()]))
    at_boot = conntrack.render(conntrack.desired(boot, resolve(boot, pair_links()), settings()))
    assert at_boot == conntrack.render(_desired())


def test_paths_follow_the_settings() -> None:
    cfg, topo = pair_topology()
    s = settings(root=Path("/srv/r2"))
    general = _block(conntrack.render(conntrack.desired(cfg, topo, s)), "General {")
    assert f"LockFile {CONNTRACKD_LOCK.of(s)}" in general
    assert "LockFile /srv/r2/run/vragent/conntrackd.lock" in general
    assert _block(conntrack.render(conntrack.desired(cfg, topo, s)), "UNIX {") == [
        "Path /srv/r2/run/vragent/conntrackd.sock"]


def test_apply_dry_run(tmp_path: Path) -> None:
    s = settings(root=tmp_path)
    cfg, topo = pair_topology()
    d = conntrack.desired(cfg, topo, s)
    assert conntrack.apply(d, conntrack.render(d), s, dry_run=True) == [
        "conntrack: conntrackd.conf written"]
    assert not CONNTRACKD_CONF.of(s).exists()  # a dry run writes nothing
    CONNTRACKD_CONF.of(s).parent.mkdir(parents=True)
    CONNTRACKD_CONF.of(s).write_text(conntrack.render(d))
    assert conntrack.apply(d, conntrack.render(d), s, dry_run=True) == []
    CONNTRACKD_CONF.of(s).write_text("old\n")
    assert conntrack.apply(d, conntrack.render(d), s, dry_run=True) == [
        "conntrack: conntrackd.conf updated"]
    off = conntrack.Desired(enabled=False)
    assert conntrack.apply(off, conntrack.render(off), s, dry_run=True) == [
        "conntrack: conntrackd.conf removed"]
    assert CONNTRACKD_CONF.of(s).read_text() == "old\n"
