"""The redundant pair with real keepalived, conntrackd and supervisord, and real packets.

The module's pair is sampled continuously (see conftest.Sampler): while it is
meant to be healthy, every sample must show exactly one master.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from vragent_lab import pair as lab_pair
from vragent_lab.netns import wait_for
from vragent_lab.pair import OUTSIDE, PUBLIC_FORWARD, Pair, PairRouter, mac, tier3
from vragent_lab.traffic import Probe, TcpEcho, TcpHolder, UdpEcho

from .conftest import ADVERT_INT, Sampler

ECHO_UDP = 7001
ECHO_TCP = 7000


def public_ips(router: PairRouter, ips: list[str], add: bool) -> dict[str, Any]:
    return {"type": "ips", "ip_address": [
        {"public_ip": ip, "source_nat": False, "add": add, "one_to_one_nat": False,
         "first_i_p": False, "gateway": OUTSIDE, "netmask": "255.255.255.0",
         "vif_mac_address": mac(router.index, "eth1"), "nic_dev_id": 1, "new_nic": False,
         "nw_type": "Public"} for ip in ips]}


def addresses(router: PairRouter, dev: str) -> set[str]:
    out = router.sh("ip", "-4", "-o", "addr", "show", "dev", dev, check=False)
    return set(re.findall(r"inet (\S+)/", out))


def holds_for(check: Callable[[], bool], seconds: float) -> None:
    """``check`` stays true for the whole window (a negative cannot be waited for)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert check(), "condition broke"
        time.sleep(0.05)


def settled(pair: Pair) -> bool:
    return all(r.config_loaded() for r in pair.routers)


def external_cache_size(router: PairRouter) -> int:
    out = router.sh("conntrackd", "-C", str(router.root / "etc/vragent/conntrackd.conf"), "-e",
                    check=False)
    return sum(1 for line in out.splitlines() if "tcp" in line and "ESTABLISHED" in line)


@pytest.fixture
def probe(vpc_pair: tuple[Pair, Sampler]) -> Iterator[Probe]:
    """VM1 -> outside host, one UDP packet every 10 ms, through source NAT."""
    pair, _ = vpc_pair
    with UdpEcho(pair.ns("out"), OUTSIDE, ECHO_UDP), \
            Probe(pair.ns("vm1"), OUTSIDE, ECHO_UDP, interval=0.01) as p:
        wait_for(lambda: p.stats()["received"] >= 20, 10, "the probe to get replies")
        p.reset()
        yield p


def test_tier_and_public_ip_changes_cause_no_state_change_and_no_loss(
        vpc_pair: tuple[Pair, Sampler], probe: Probe) -> None:
    pair, _ = vpc_pair
    master = pair.master()
    assert master is not None
    backup = pair.other(master)
    before = [r.transitions() for r in pair.routers]

    for r in pair.routers:
        r.apply(*tier3(r.index))
    wait_for(lambda: settled(pair), 10, "keepalived to load the new tier")
    wait_for(lambda: "10.10.3.1" in addresses(master, "eth4"), 5, "the tier gateway on the master")
    assert "10.10.3.1" not in addresses(backup, "eth4")
    # The new tier routes: VM3 reaches the outside host through the master.
    ping = subprocess.run(["ip", "netns", "exec", pair.ns("vm3"), "ping", "-c", "3", "-i", "0.2",
                           "-W", "2", OUTSIDE], capture_output=True, text=True, check=False)
    assert ping.returncode == 0, ping.stdout

    for r in pair.routers:
        r.apply(public_ips(r, ["100.64.10.13"], add=True))
    wait_for(lambda: settled(pair), 10, "keepalived to load the new public IP")
    wait_for(lambda: "100.64.10.13" in addresses(master, "eth1"), 5, "the public IP on the master")

    for r in pair.routers:
        guest, _acl = tier3(r.index)
        r.apply({**guest, "add": False}, public_ips(r, ["100.64.10.13"], add=False))
    wait_for(lambda: settled(pair), 10, "keepalived to drop the tier")
    wait_for(lambda: "10.10.3.1" not in addresses(master, "eth4")
             and "100.64.10.13" not in addresses(master, "eth1"), 5, "the addresses to go")

    stats = probe.stop()
    assert [r.transitions() for r in pair.routers] == before, "a router changed state"
    assert pair.master() is master
    assert stats["sent"] > 100
    assert stats["lost"] == 0, stats
    assert master.service_running() and not backup.service_running()
    assert master.vragent("state").stdout == "Status: PRIMARY\n"
    assert backup.vragent("state").stdout == "Status: BACKUP\n"


def test_burst_of_commands_converges_without_state_changes(
        vpc_pair: tuple[Pair, Sampler], probe: Probe) -> None:
    """100 back-to-back commands on each router, at once; the end state is exact."""
    pair, _ = vpc_pair
    master = pair.master()
    assert master is not None
    before = [r.transitions() for r in pair.routers]
    added = [f"100.64.10.{n}" for n in range(20, 80)]
    removed = added[:40]

    def burst(r: PairRouter) -> None:
        for ip in added:
            r.apply(public_ips(r, [ip], add=True))
        for ip in removed:
            r.apply(public_ips(r, [ip], add=False))

    reloads_before = [len(r.reload_times()) for r in pair.routers]
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(burst, pair.routers))
    commands_done = time.monotonic() - started
    kept = set(added) - set(removed)
    wait_for(lambda: settled(pair) and kept <= addresses(master, "eth1")
             and not (set(removed) & addresses(master, "eth1")), 30, "the burst to converge")
    converged = time.monotonic() - started
    print(f"\nburst: 2 x 100 commands ran in {commands_done:.1f} s, "
          f"converged in {converged:.1f} s")
    for r, skip in zip(pair.routers, reloads_before, strict=True):
        # Coalesced: never two reloads within 1.5 adverts, however fast commands come.
        times = r.reload_times()[skip:]
        assert 0 < len(times) < 100
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert min(gaps, default=1.5 * ADVERT_INT) >= 1.5 * ADVERT_INT - 0.01, gaps
        print(f"{r.name}: {len(times)} keepalived reloads for 100 commands")

    for r in pair.routers:
        r.apply(public_ips(r, sorted(kept), add=False))
    wait_for(lambda: settled(pair) and not (kept & addresses(master, "eth1")), 10, "clean-up")
    stats = probe.stop()
    assert [r.transitions() for r in pair.routers] == before, "a router changed state"
    assert stats["lost"] == 0, stats


def test_partition_reports_dual_master_then_heals(vpc_pair: tuple[Pair, Sampler]) -> None:
    pair, sampler = vpc_pair
    sampler.healthy(False)
    seen = len(pair.reports())
    pair.cut_sync(True)
    try:
        wait_for(lambda: pair.statuses() == ("PRIMARY", "PRIMARY"), 10,
                 "both routers to become master")
        wait_for(lambda: all(r.ha_state()["dual_master"] for r in pair.routers), 10,
                 "both routers to notice the other is master too")
        wait_for(lambda: {rep["router"] for rep in pair.reports()[seen:]
                          if rep.get("dual_master") == "true"} == {"r-1-VM", "r-2-VM"},
                 10, "the dual-master reports to reach the management server")
    finally:
        pair.cut_sync(False)
    healed = time.monotonic()
    wait_for(lambda: sorted(pair.statuses()) == ["BACKUP", "PRIMARY"], 3 * ADVERT_INT + 1,
             "exactly one master after healing", interval=0.02)
    print(f"\npartition healed: one master after {time.monotonic() - healed:.2f} s")
    master = pair.master()
    assert master is not None
    wait_for(lambda: master.ha_state()["dual_master"] == "", 10, "the condition to clear")
    sampler.healthy(True)


def test_dead_agent_takes_its_router_out_of_mastership(vpc_pair: tuple[Pair, Sampler]) -> None:
    pair, sampler = vpc_pair
    master = pair.master()
    assert master is not None
    other = pair.other(master)
    sampler.healthy(False)
    assert "stopped" in master.supervisorctl("stop", "agent")
    # No agent vouches for the persisted state: CloudStack's poller sees UNKNOWN.
    assert master.vragent("state").stdout == "Status: UNKNOWN\n"
    # supervisord's watchdog finds the heartbeat stale (5 s) at its next tick
    # (every 5 s): the bound is 10 s, then the peer's skew time.
    wait_for(lambda: other.status() == "PRIMARY", 20, "the peer to take over")
    assert not master.holds_vip("10.255.0.254")
    assert "heartbeat" in (master.root / "run/vragent/vrrp-health.reason").read_text()
    wait_for(other.service_running, 10, "the master-only services on the new master")
    assert "started" in master.supervisorctl("start", "agent")
    # The FIFO kept keepalived's events while no one read them: FAULT, then BACKUP.
    wait_for(lambda: master.status() == "BACKUP", 15, "the revived router to be backup")
    reasons = [(rep["state"], rep["previous"]) for rep in pair.reports()
               if rep["router"] == master.name]
    assert ("FAULT", "PRIMARY") in reasons
    pair.wait_one_master()
    sampler.healthy(True)


def test_hard_failover_keeps_established_connections(vpc_pair: tuple[Pair, Sampler],
                                                     probe: Probe) -> None:
    pair, sampler = vpc_pair
    master = pair.master()
    assert master is not None
    survivor = pair.other(master)
    with TcpEcho(pair.ns("out"), OUTSIDE, ECHO_TCP), \
            TcpEcho(pair.ns("vm1"), "10.10.1.10", 22), \
            TcpHolder(pair.ns("vm1"), OUTSIDE, ECHO_TCP, 100) as c1, \
            TcpHolder(pair.ns("vm2"), OUTSIDE, ECHO_TCP, 100) as c2, \
            TcpHolder(pair.ns("out"), PUBLIC_FORWARD, 2222, 1) as fwd:
        holders = (c1, c2, fwd)
        assert [h.check()["ok"] for h in holders] == [100, 100, 1]
        wait_for(lambda: external_cache_size(survivor) >= 201, 15,
                 "the backup's conntrackd to hold the connections")
        probe.reset()
        sampler.healthy(False)
        killed = time.monotonic()
        master.power_off()
        wait_for(lambda: survivor.status() == "PRIMARY", 15, "the backup to take over")
        print(f"\ntakeover reported {time.monotonic() - killed:.2f} s after the kill")
        wait_for(lambda: probe.stats()["received"] > 0 and
                 time.monotonic() - killed > 1, 15, "probe replies")
        stats = probe.stop()
        print(f"outage (10 ms probe): {stats['max_gap_ms']:.0f} ms, lost {stats['lost']}")
        assert stats["max_gap_ms"] < 10_000, stats
        results = [h.check() for h in holders]
        assert [r["ok"] for r in results] == [100, 100, 1], results
        assert survivor.service_running()

        # The old master reboots: it comes back as backup and leaves mastership
        # where it is (nopreempt); conntrackd resyncs it from the new master.
        transitions = survivor.transitions()
        master.wipe_volatile()
        boot = master.vragent("boot")  # the box rebuilt from its store, before any daemon
        assert f"eth5: add 10.255.0.{master.index}/24" in boot.stdout, boot.stdout
        master.power_on()  # supervisord: the agent, conntrackd, keepalived
        wait_for(lambda: master.status() == "BACKUP", 30, "the rebooted router to be backup")
        wait_for(lambda: external_cache_size(master) >= 201, 15,
                 "the rebooted router's conntrackd to be resynced")
        # A preempting router would take over within a few adverts.
        holds_for(lambda: survivor.status() == "PRIMARY" and
                  survivor.transitions() == transitions, 4 * ADVERT_INT)
        assert [h.check()["ok"] for h in holders] == [100, 100, 1]
    pair.wait_one_master()
    sampler.healthy(True)


def test_a_killed_master_started_again_without_a_reboot_waits_for_the_elector(
        vpc_pair: tuple[Pair, Sampler]) -> None:
    """Every process of the master killed, then supervisord started again
    (no reboot: the run directory and the PRIMARY on disk survive). The agent
    must not take that PRIMARY for the truth before keepalived speaks: it
    would start the master's services and probe for a dual master with the
    shared addresses, drawing the VMs' ARP entries to itself."""
    pair, sampler = vpc_pair
    wait_for(lambda: sampler.samples > 0, 10, "the sampler's first look at the pair")
    master = pair.master()
    assert master is not None
    survivor = pair.other(master)
    sampler.healthy(False)
    master.kill()
    wait_for(lambda: survivor.status() == "PRIMARY", 15, "the backup to take over")
    seen = len(lab_pair.agent_log(master.root))
    master.start()
    wait_for(lambda: master.status() == "BACKUP", 30, "the restarted router to be backup")
    after = lab_pair.agent_log(master.root)[seen:]
    assert "running (state PRIMARY)" not in after, after
    assert "the elector is not running at agent start" in after, after
    assert "starting dnsmasq" not in after, after
    pair.wait_one_master()
    assert pair.master() is survivor
    sampler.healthy(True)


@pytest.mark.parametrize("multicast", [False, True], ids=["unicast", "multicast"])
def test_pair_without_any_tier_is_redundant(tmp_path: Path, multicast: bool) -> None:
    """Redundant from the first boot: only the control and sync links exist."""
    pair = lab_pair.build(tmp_path, ADVERT_INT, multicast=multicast)
    try:
        master = lab_pair.start(pair, bags=[])
        other = pair.other(master)
        assert master.holds_vip("10.255.0.254") and not other.holds_vip("10.255.0.254")
        master.power_off()
        wait_for(lambda: other.status() == "PRIMARY", 15, "the backup to take over")
        assert other.holds_vip("10.255.0.254")
        wait_for(lambda: any(rep["router"] == other.name and rep["state"] == "PRIMARY"
                             for rep in pair.reports()), 10, "the takeover to be reported")
        first = pair.reports()[0]
        assert {"router", "state", "previous", "timestamp", "reason"} <= set(first)
        conf = (other.root / "etc/vragent/keepalived.conf").read_text()
        assert ("unicast_peer" in conf) is not multicast
    finally:
        pair.destroy()
