"""IPv6 on a redundant pair, with real keepalived, conntrackd, radvd and SLAAC hosts.

- Only the master advertises: radvd is a master-only daemon, and what a host
  on the tier hears for a window (rdisc6, soliciting and listening) comes from
  the master's MAC and the shared link-local router fe80::1.
- The tier's IPv6 gateway and fe80::1 move with VRRP (keepalived's
  virtual_ipaddress_excluded): after a hard kill of the master a SLAAC host
  keeps its address and its "default via fe80::1", now answered by the new
  master's MAC (keepalived's unsolicited neighbour advertisement).
- conntrackd replicates IPv6 flows: the backup's external cache holds the
  tier-to-tier IPv6 TCP connections before the kill, and they keep carrying
  data through the new master. The outage is measured with a UDP probe every
  10 ms over IPv6 and printed.

Both pair modes: a sync link, and CloudStack's (no sync link, each router's
own tier addresses and the shared gateways, as SetGuestNetworkConfigItem
sends them). Upstream's redundant routers advertise no prefix at all
(cs/CsVpcGuestNetwork.py add_radvd_conf; apache/cloudstack#13121), share
IPv4 gateways only (cs/CsRedundant.py _collect_ips, keepalived.conf.templ)
and filter conntrackd by IPv4 addresses only (conntrackd.conf.templ).
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vragent_lab.netns import in_ns, wait_for
from vragent_lab.pair import Pair, PairRouter, mac

from .conftest import ADVERT_INT, Sampler
from .dualstack import (
    ECHO_TCP,
    ECHO_UDP,
    LINK_LOCAL_GATEWAY,
    TIERS,
    acl_v6,
    default_routers,
    dual_stack,
    dual_stack_pair,
    hard_kill,
    hosts_configured,
    probed,
    slaac_address,
)

HELD = 20
VM2_IPV4 = "10.10.2.10"


def neighbour_mac(ns: str, addr: str) -> str | None:
    out = in_ns(ns, ["ip", "-6", "neigh", "show", addr, "dev", "eth0"], check=False)
    found = re.findall(r"lladdr (\S+)", out)
    return found[0].lower() if found else None


def advertisements(ns: str, seconds: float, solicit: bool = True) -> list[dict[str, str]]:
    """Every router advertisement a host on the tier hears for ``seconds``
    (rdisc6 -m: all answers; -d: only listen, no solicitation)."""
    argv = ["rdisc6", "-n", "-m", "-w", str(int(seconds * 1000)), "-r", "1"]
    if not solicit:
        argv.append("-d")
    out = in_ns(ns, [*argv, "eth0"], check=False)
    found = []
    for block in re.split(r"\n\s*\n", out):
        source = re.search(r"from (\S+)", block)
        lladdr = re.search(r"Source link-layer address\s*:\s*(\S+)", block)
        prefix = re.search(r"Prefix\s*:\s*(\S+)", block)
        if source:
            found.append({"from": source.group(1),
                          "mac": lladdr.group(1).lower() if lladdr else "",
                          "prefix": prefix.group(1) if prefix else ""})
    return found


def v6_cache(router: PairRouter, addr: str) -> int:
    """IPv6 TCP flows to ``addr`` in the router's conntrackd external cache
    (what the peer sent it)."""
    out = router.sh("conntrackd", "-C", str(router.root / "etc/vragent/conntrackd.conf"), "-e",
                    check=False)
    return sum(1 for line in out.splitlines()
               if "tcp" in line and "ESTABLISHED" in line and f"dst={addr} " in line)


@pytest.fixture(scope="module", params=["sync-link", "cloudstack"])
def v6_pair(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pair, Sampler]]:
    with dual_stack_pair(tmp_path_factory.mktemp("v6pair"), request.param == "cloudstack",
                         lambda r: [*(dual_stack(r, dev) for dev in TIERS), acl_v6(r)],
                         "the IPv6 tiers") as running:
        yield running


def test_only_the_master_advertises_and_hosts_configure_by_slaac(
        v6_pair: tuple[Pair, Sampler]) -> None:
    pair, _ = v6_pair
    master = pair.master()
    assert master is not None
    backup = pair.other(master)
    wait_for(lambda: master.service_running("radvd"), 15, "radvd on the master")
    assert not backup.service_running("radvd")
    addresses = hosts_configured(pair)
    for dev, (_name, prefix, vm) in TIERS.items():
        ns = pair.ns(vm)
        assert ipaddress.IPv6Address(addresses[vm]) in ipaddress.IPv6Network(f"{prefix}/64")
        # The default router is the shared link-local address, nothing else.
        assert default_routers(ns) == [LINK_LOCAL_GATEWAY]
        heard = advertisements(ns, 3.0)
        assert heard, f"no router advertisement on {dev}"
        # Every one from the master: its MAC, the shared address, the tier's prefix.
        assert {h["mac"] for h in heard} == {mac(master.index, dev, pair.cloudstack)}, heard
        assert {h["from"] for h in heard} == {LINK_LOCAL_GATEWAY}, heard
        assert {h["prefix"] for h in heard} == {f"{prefix}/64"}, heard
        # The backup holds neither shared address.
        shown = backup.sh("ip", "-6", "-o", "addr", "show", "dev", dev)
        assert f"{prefix}1/" not in shown and f" {LINK_LOCAL_GATEWAY}/" not in shown
        shown = master.sh("ip", "-6", "-o", "addr", "show", "dev", dev)
        assert f"{prefix}1/" in shown and f" {LINK_LOCAL_GATEWAY}/" in shown


def test_hard_kill_keeps_ipv6_tcp_and_the_default_route(
        v6_pair: tuple[Pair, Sampler]) -> None:
    pair, sampler = v6_pair
    master = pair.master()
    assert master is not None
    survivor = pair.other(master)
    addresses = hosts_configured(pair)
    vm1, vm2 = pair.ns("vm1"), pair.ns("vm2")
    target = addresses["vm2"]
    with probed(vm1, vm2, target, VM2_IPV4, ECHO_TCP, ECHO_UDP, HELD) as (held, probe, probe4):
        # conntrackd replicated the IPv6 flows to the backup.
        wait_for(lambda: v6_cache(survivor, target) >= HELD, 15,
                 "the backup's conntrackd to hold the IPv6 connections")
        # The hosts' traffic goes through the master about to die.
        assert neighbour_mac(vm1, LINK_LOCAL_GATEWAY) == mac(master.index, "eth2",
                                                             pair.cloudstack)
        took_over, stats, stats4 = hard_kill(sampler, master, survivor, probe, probe4)
        mode = "CloudStack mode" if pair.cloudstack else "sync link"
        print(f"\nIPv6 hard failover ({mode}, advert_int {ADVERT_INT} s): takeover reported "
              f"{took_over:.2f} s after the kill; outage (10 ms UDP probes) IPv6 "
              f"{stats['max_gap_ms']:.0f} ms (lost {stats['lost']} of {stats['sent']}), "
              f"IPv4 in the same failover {stats4['max_gap_ms']:.0f} ms: ratio "
              f"{stats['max_gap_ms'] / max(stats4['max_gap_ms'], 1):.2f}")
        assert stats["max_gap_ms"] < 10_000, stats
        # Hosts waiting on neighbour unreachability detection for a dead default
        # router would add seconds (5 s reachable-time delay, then probes): the
        # IPv6 outage is the IPv4 one, give or take the host's noise.
        assert stats["max_gap_ms"] < stats4["max_gap_ms"] + 1000, (stats, stats4)
        result = held.check()
        assert result["ok"] == HELD, result
        # The hosts kept their address and route; fe80::1 is now the survivor's.
        for dev, (_name, prefix, vm) in TIERS.items():
            ns = pair.ns(vm)
            assert slaac_address(ns, prefix) == addresses[vm]
            assert default_routers(ns) == [LINK_LOCAL_GATEWAY]
            assert neighbour_mac(ns, LINK_LOCAL_GATEWAY) == mac(survivor.index, dev,
                                                                 pair.cloudstack)
        wait_for(lambda: survivor.service_running("radvd"), 10, "radvd on the new master")
        heard = advertisements(vm1, 3.0)
        assert heard and {h["mac"] for h in heard} == {mac(survivor.index, "eth2",
                                                            pair.cloudstack)}, heard

        # The old master reboots and comes back as a silent backup.
        master.wipe_volatile()
        master.power_on()
        wait_for(lambda: master.status() == "BACKUP", 30, "the rebooted router to be backup")
        wait_for(lambda: not master.service_running("radvd") and master.config_loaded(), 15,
                 "the rebooted backup to settle without radvd")
        heard = advertisements(vm1, 3.0)
        assert heard and {h["mac"] for h in heard} == {mac(survivor.index, "eth2",
                                                            pair.cloudstack)}, heard
        assert held.check()["ok"] == HELD
    pair.wait_one_master()
    sampler.healthy(True)


def test_a_backup_with_ipv6_tiers_sends_no_advertisement(
        v6_pair: tuple[Pair, Sampler], tmp_path: Path) -> None:
    """Listening only (no solicitation) for longer than radvd's maximum
    interval: nothing from the backup's MAC, something from the master's."""
    pair, _ = v6_pair
    master = pair.master()
    assert master is not None
    backup = pair.other(master)
    heard = advertisements(pair.ns("vm2"), 16.0, solicit=False)
    macs = {h["mac"] for h in heard}
    assert mac(backup.index, "eth3", pair.cloudstack) not in macs, heard
    assert macs == {mac(master.index, "eth3", pair.cloudstack)}, heard


def test_planned_switchover_keeps_the_hosts_default_route(
        v6_pair: tuple[Pair, Sampler]) -> None:
    """A planned switchover (vragent switchover) with IPv6 tiers: the old
    master's radvd stops after keepalived took fe80::1 away, so no farewell
    advertisement (router lifetime 0) from the shared address ever removes the
    hosts' default route; IPv6 loses no more than IPv4 in the same handover."""
    pair, sampler = v6_pair
    master = pair.wait_one_master()
    backup = pair.other(master)
    addresses = hosts_configured(pair)
    vm1, vm2 = pair.ns("vm1"), pair.ns("vm2")
    target = addresses["vm2"]
    with probed(vm1, vm2, target, VM2_IPV4, ECHO_TCP, ECHO_UDP, HELD) as (held, probe, probe4):
        wait_for(lambda: v6_cache(backup, target) >= HELD, 15,
                 "the backup's conntrackd to hold the IPv6 connections")
        probe.reset()
        probe4.reset()
        sampler.healthy(False)  # two masters for one advert's flight: by design
        out = master.vragent("switchover")
        assert "mastership handed to the peer" in out.stdout
        wait_for(lambda: backup.status() == "PRIMARY" and master.status() == "BACKUP", 10,
                 "the peer to take over")
        wait_for(lambda: not master.service_running("radvd")
                 and backup.service_running("radvd"), 10, "radvd to follow mastership")
        # Long enough for a farewell advertisement to have landed and been obeyed.
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            for _dev, (_name, _prefix, vm) in TIERS.items():
                assert default_routers(pair.ns(vm)) == [LINK_LOCAL_GATEWAY], vm
            time.sleep(0.1)
        stats, stats4 = probe.stop(), probe4.stop()
        mode = "CloudStack mode" if pair.cloudstack else "sync link"
        print(f"\nIPv6 planned switchover ({mode}): IPv6 probe lost {stats['lost']} of "
              f"{stats['sent']}, IPv4 {stats4['lost']} of {stats4['sent']}")
        assert stats["lost"] <= stats4["lost"] + 2, (stats, stats4)
        assert held.check()["ok"] == HELD
        assert neighbour_mac(vm1, LINK_LOCAL_GATEWAY) == mac(backup.index, "eth2",
                                                             pair.cloudstack)
    pair.wait_one_master()
    sampler.healthy(True)
