"""A redundant VPC driven only by what CloudStack's management server sends.

No sync link: the boot parameters carry ``redundant_router=1``, ``router_id``
(the VPC id), ``router_password`` and ``advert_int``
(VirtualNetworkApplianceManagerImpl.createRedundantRouterArgs); both routers
get the same ``ips`` bag and the same public MAC (NetworkHelperImpl.
configurePublicNic); each router's ``guestnetwork`` bag carries its own tier
address in ``router_guest_ip`` and the shared gateway in
``router_guest_gateway`` (SetGuestNetworkConfigItem). The pair elects on the
public link from the ``ips`` bag on, and conntrackd syncs on the first tier
(CsRedundant._redundant_on).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from vragent_lab import pair as lab_pair
from vragent_lab.netns import wait_for
from vragent_lab.pair import OUTSIDE, PUBLIC_FORWARD, PUBLIC_SNAT, Pair, PairRouter, mac
from vragent_lab.traffic import Probe, TcpEcho, TcpHolder, UdpEcho

from .conftest import Sampler, running_pair
from .test_pair import addresses, external_cache_size, holds_for, settled

ADVERT_INT = 1.0  # what CloudStack sends by default; integral, so VRRPv2 with the password
ECHO_TCP, ECHO_UDP = 7100, 7101


@pytest.fixture(scope="module")
def cs_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pair, Sampler]]:
    with running_pair(tmp_path_factory.mktemp("cspair"), ADVERT_INT, cloudstack=True) as running:
        yield running


def neighbour_mac(ns: str, ip: str) -> str:
    out = json.loads(subprocess.run(["ip", "netns", "exec", ns, "ip", "-json", "neigh", "show",
                                     ip], capture_output=True, text=True, check=True).stdout)
    return str(out[0].get("lladdr", "")) if out else ""


def ping(ns: str, target: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", target],
                          capture_output=True, check=False).returncode == 0


def tier3(router: PairRouter) -> list[dict[str, Any]]:
    guest = {"type": "guestnetwork", "add": True, "mac_address": mac(router.index, "eth4"),
             "device": "eth4", "router_guest_ip": f"10.10.3.{1 + router.index}",
             "router_guest_gateway": "10.10.3.1", "router_guest_netmask": "255.255.255.0",
             "cidr": "24", "dns": "10.10.3.1", "domain_name": "vpc.lab"}
    acl = {"type": "networkacl", "device": "eth4", "mac_address": mac(router.index, "eth4"),
           "private_gateway_acl": False, "nic_ip": f"10.10.3.{1 + router.index}",
           "nic_netmask": "24", "ingress_rules": [], "egress_rules": []}
    return [guest, acl]


def test_one_master_holds_the_gateways_each_router_its_own_address(
        cs_pair: tuple[Pair, Sampler]) -> None:
    pair, _ = cs_pair
    master = pair.master()
    assert master is not None
    backup = pair.other(master)
    for r in pair.routers:
        # router_guest_ip: this router's own, on both; no sync link anywhere.
        assert {f"10.10.1.{1 + r.index}", f"10.10.2.{1 + r.index}"} <= (
            addresses(r, "eth2") | addresses(r, "eth3"))
        assert addresses(r, "eth5") == set()
        assert r.service_running("conntrackd")
    # router_guest_gateway and the public IPs: the master's alone.
    assert {"10.10.1.1"} <= addresses(master, "eth2")
    assert {PUBLIC_SNAT, PUBLIC_FORWARD} <= addresses(master, "eth1")
    assert "10.10.1.1" not in addresses(backup, "eth2")
    assert not addresses(backup, "eth1") & {PUBLIC_SNAT, PUBLIC_FORWARD}
    # The VMs' gateway answers from the master's NIC, and they reach the
    # outside through the source-NAT IP.
    assert ping(pair.ns("vm1"), "10.10.1.1")
    assert neighbour_mac(pair.ns("vm1"), "10.10.1.1") == mac(master.index, "eth2")
    with TcpEcho(pair.ns("out"), OUTSIDE, ECHO_TCP), \
            TcpHolder(pair.ns("vm1"), OUTSIDE, ECHO_TCP, 1) as conn:
        assert conn.check()["ok"] == 1
    seen = master.sh("conntrack", "-L", "-p", "tcp", "--dport", str(ECHO_TCP), check=False)
    assert f"dst={PUBLIC_SNAT}" in seen, seen


def test_backup_sends_nothing_on_the_shared_public_mac(cs_pair: tuple[Pair, Sampler]) -> None:
    """Both public NICs carry one MAC: a frame from the backup would pull the
    switch's forwarding entry away from the master."""
    pair, _ = cs_pair
    master = pair.master()
    assert master is not None
    backup = pair.other(master)
    sent = backup.tx_packets("eth1")
    # Traffic that would make a careless backup talk: pings to it and through
    # it, and its own traffic to the outside (a DNS forwarder's, say).
    for target in (PUBLIC_SNAT, f"10.10.1.{1 + backup.index}"):
        ping(pair.ns("vm1"), target)
    assert not ping(backup.ns, OUTSIDE)
    holds_for(lambda: backup.tx_packets("eth1") == sent, 3 * ADVERT_INT)
    assert master.tx_packets("eth1") > 0


def test_hard_failover_moves_the_gateway_and_keeps_connections(
        cs_pair: tuple[Pair, Sampler]) -> None:
    pair, sampler = cs_pair
    master = pair.master()
    assert master is not None
    survivor = pair.other(master)
    with TcpEcho(pair.ns("out"), OUTSIDE, ECHO_TCP), \
            TcpEcho(pair.ns("vm1"), "10.10.1.10", 22), \
            UdpEcho(pair.ns("out"), OUTSIDE, ECHO_UDP), \
            TcpHolder(pair.ns("vm1"), OUTSIDE, ECHO_TCP, 50) as out, \
            TcpHolder(pair.ns("out"), PUBLIC_FORWARD, 2222, 1) as fwd, \
            Probe(pair.ns("vm1"), OUTSIDE, ECHO_UDP, interval=0.01) as probe:
        assert [out.check()["ok"], fwd.check()["ok"]] == [50, 1]
        wait_for(lambda: external_cache_size(survivor) >= 51, 15,
                 "the backup's conntrackd (on tier 1) to hold the connections")
        wait_for(lambda: probe.stats()["received"] >= 20, 10, "the probe to get replies")
        probe.reset()
        sampler.healthy(False)
        killed = time.monotonic()
        master.power_off()
        wait_for(lambda: survivor.status() == "PRIMARY", 15, "the backup to take over")
        wait_for(lambda: probe.stats()["received"] > 0 and time.monotonic() - killed > 1, 15,
                 "probe replies through the new master")
        stats = probe.stop()
        print(f"\nCloudStack-mode takeover: outage {stats['max_gap_ms']:.0f} ms "
              f"(advert_int {ADVERT_INT:g})")
        assert [out.check()["ok"], fwd.check()["ok"]] == [50, 1]
        assert "10.10.1.1" in addresses(survivor, "eth2")
        assert PUBLIC_SNAT in addresses(survivor, "eth1")
        assert neighbour_mac(pair.ns("vm1"), "10.10.1.1") == mac(survivor.index, "eth2")

        # The dead router reboots and stays backup (nopreempt).
        transitions = survivor.transitions()
        master.wipe_volatile()
        master.power_on()
        wait_for(lambda: master.status() == "BACKUP", 30, "the rebooted router to be backup")
        holds_for(lambda: survivor.status() == "PRIMARY" and
                  survivor.transitions() == transitions, 4 * ADVERT_INT)
        assert [out.check()["ok"], fwd.check()["ok"]] == [50, 1]
    pair.wait_one_master()
    sampler.healthy(True)


def test_adding_a_tier_causes_no_election(cs_pair: tuple[Pair, Sampler]) -> None:
    pair, _ = cs_pair
    master = pair.master()
    assert master is not None
    backup = pair.other(master)
    before = [r.transitions() for r in pair.routers]
    for r in pair.routers:
        r.apply(*tier3(r))
    wait_for(lambda: settled(pair), 10, "keepalived to load the new tier")
    wait_for(lambda: "10.10.3.1" in addresses(master, "eth4"), 5, "the new gateway on the master")
    assert "10.10.3.1" not in addresses(backup, "eth4")
    assert f"10.10.3.{1 + backup.index}" in addresses(backup, "eth4")
    wait_for(lambda: ping(pair.ns("vm3"), OUTSIDE), 5, "VM3 to reach the outside")
    for r in pair.routers:
        r.apply({**tier3(r)[0], "add": False})
    wait_for(lambda: settled(pair) and "10.10.3.1" not in addresses(master, "eth4"), 10,
             "the tier to go")
    # Its own address went with it (add: false removes what the bag held).
    assert not addresses(backup, "eth4")
    assert [r.transitions() for r in pair.routers] == before, "a router changed state"


def test_redundant_from_the_ips_bag_and_tiers_never_cause_an_election(tmp_path: Path) -> None:
    """The pair elects once the source-NAT IP arrives, before any tier; the first
    tier (which also starts conntrackd) and the second change no state."""
    pair = lab_pair.build(tmp_path, ADVERT_INT, cloudstack=True)
    try:
        pair.start_receiver()
        for r in pair.routers:
            r.start()
        wait_for(lambda: all((r.root / "run/vragent/booted").exists() for r in pair.routers),
                 20, "both routers to boot")
        # Boot parameters only: nothing is shared yet, so nobody holds anything.
        assert not any(r.service_running("keepalived") for r in pair.routers)
        for r in pair.routers:
            r.apply("ip_associations.json")
        master = pair.wait_one_master()
        backup = pair.other(master)
        assert PUBLIC_SNAT in addresses(master, "eth1")
        assert not addresses(backup, "eth1") & {PUBLIC_SNAT, PUBLIC_FORWARD}
        before = [r.transitions() for r in pair.routers]
        for tier in (("guest_network_tier1.json", "network_acl_tier1.json"),
                     ("guest_network_tier2.json", "network_acl_tier2.json")):
            for r in pair.routers:
                r.apply(*tier)
            wait_for(lambda: settled(pair), 10, "keepalived to load the tier")
        wait_for(lambda: all(r.service_running("conntrackd") for r in pair.routers), 10,
                 "conntrackd to start with the first tier")
        wait_for(lambda: ping(pair.ns("vm2"), OUTSIDE), 10, "VM2 to reach the outside")
        # Longer than the health check's fall time: a conntrackd that was not yet
        # answering would have taken the master down by now.
        holds_for(lambda: [r.transitions() for r in pair.routers] == before, 4 * ADVERT_INT)
        assert pair.master() is master
    finally:
        pair.destroy()
