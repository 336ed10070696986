"""Failover scenarios in containers, with traffic through them the whole time."""

from __future__ import annotations

import pytest
from vragent_lab.lab import OUTSIDE, OUTSIDE_FAR, Lab, wait_for
from vragent_lab.scenario import (
    CONNECTIONS,
    ECHO_UDP,
    IPV6_FIELDS,
    FailoverResult,
    check_services,
    check_traffic,
    failover,
    sample_bags,
)
from vragent_lab.traffic import Probe, UdpEcho

OUTAGES: dict[str, FailoverResult] = {}


def transitions(lab: Lab) -> int:
    return len(lab.reports())


def test_sample_vpc_end_to_end(lab: Lab) -> None:
    master = lab.wait_one_master()
    result = check_traffic(lab, master)
    assert all(result.values()), result


def test_vms_resolve_each_other_and_read_their_metadata_across_a_failover(lab: Lab) -> None:
    """DHCP/DNS (dnsmasq) and metadata run on the master only and follow the
    tier gateways to the new master."""
    assert all(check_services(lab).values())
    master = lab.wait_one_master()
    result = failover(lab, "kill")
    assert result.master_after != master
    assert all(check_services(lab).values())
    for r in lab.routers:
        running = bool(lab.exec(r, "pgrep", "-x", "dnsmasq", check=False).strip())
        assert running is (r == result.master_after), r


def test_hard_kill_keeps_every_connection(lab: Lab) -> None:
    result = failover(lab, "kill")
    OUTAGES["kill"] = result
    print(f"\nhard kill: outage {result.outage_ms:.0f} ms, connections {result.connections}")
    assert result.connections == {"source_nat": [CONNECTIONS, CONNECTIONS],
                                  "port_forward": [1, 1]}
    assert result.master_after != result.master_before
    assert result.returned_as == "BACKUP"  # nopreempt: the old master does not take over
    assert 0 < result.outage_ms < 15_000
    lab.wait_one_master()
    assert lab.master() == result.master_after


def test_graceful_stop_hands_over_much_faster_than_a_kill(lab: Lab) -> None:
    """keepalived resigns on shutdown (a priority-0 advert): no waiting for
    three missed adverts."""
    result = failover(lab, "stop")
    kill = OUTAGES.get("kill") or failover(lab, "kill")
    print(f"\ngraceful stop: outage {result.outage_ms:.0f} ms against "
          f"{kill.outage_ms:.0f} ms for a kill")
    assert result.connections["source_nat"] == [CONNECTIONS, CONNECTIONS]
    assert result.outage_ms < kill.outage_ms / 2
    lab.wait_one_master()


def test_restart_and_recreate_keep_the_configuration(lab: Lab) -> None:
    """The store is a volume: no bag is re-sent, and nopreempt holds."""
    master = lab.wait_one_master()
    backup = next(r for r in lab.routers if r != master)
    before = transitions(lab)
    lab.container(backup).restart(timeout=15)
    lab.attach_namespaces()
    wait_for(lambda: lab.status(backup) == "BACKUP", 60, f"{backup} back as backup")
    assert lab.master() == master
    assert not [r for r in lab.reports()[before:] if r.get("router", "").endswith(
        f"{master[-1]}-VM")], "the master changed state"
    for r in lab.routers:
        lab.container(r).remove(force=True)
    lab.compose("up", "-d", "--no-deps", *lab.routers)  # recreated, same volumes
    lab.attach_namespaces()
    lab.wait_one_master(60)
    wait_for(lab.converged, 30, "keepalived to load the stored configuration")
    check_traffic(lab, lab.wait_one_master())


def test_killed_daemons_are_restarted_and_no_transition_is_lost(lab: Lab) -> None:
    master = lab.wait_one_master()
    backup = next(r for r in lab.routers if r != master)
    lab.exec(master, "pkill", "-9", "-x", "conntrackd")
    wait_for(lambda: "RUNNING" in lab.exec(master, "supervisorctl", "-c",
                                           "/usr/share/vragent/supervisord.conf", "status",
                                           "conntrackd", check=False), 30,
             "supervisord to restart conntrackd")
    check_traffic(lab, master)
    assert lab.master() == master
    # The backup's agent dies; its keepalived takes over while no agent reads
    # the FIFO. The restarted agent still runs the takeover and reports it.
    lab.exec(backup, "pkill", "-9", "-f", "vragent --root / daemon")
    lab.container(master).kill()
    wait_for(lambda: lab.status(backup) == "PRIMARY", 60,
             "the backup's restarted agent to report the takeover")
    assert any(r.get("router", "").endswith(f"{backup[-1]}-VM") and r["state"] == "PRIMARY"
               for r in lab.reports()[-5:])
    lab.container(master).start()
    lab.attach_namespaces()
    wait_for(lambda: lab.status(master) == "BACKUP", 60, f"{master} back as backup")


def test_tier_added_at_run_time_changes_no_state_and_loses_nothing(lab: Lab) -> None:
    master = lab.wait_one_master()
    before = transitions(lab)
    # The hypervisor's side first: creating a docker network reshuffles the
    # host's firewall (see Lab.allow_bridged); plugging it in is what is measured.
    lab.create_tier(4)
    with UdpEcho(lab.netns("outside"), OUTSIDE_FAR, ECHO_UDP), \
            Probe(lab.netns("vm1"), OUTSIDE_FAR, ECHO_UDP, interval=0.01) as probe:
        wait_for(lambda: probe.stats()["received"] >= 20, 10, "the probe to get replies")
        probe.reset()
        ifname, vm = lab.add_tier(4)
        tiers = {}
        try:
            for r in lab.routers:
                tier = next(b for b in sample_bags(lab, r) if b["type"] == "guestnetwork")
                # An IPv4 tier: the sample's IPv6 prefix is its first tier's own.
                tier = {k: v for k, v in tier.items() if k not in IPV6_FIELDS}
                mac = lab.mac(r, ifname)
                tiers[r] = {**tier, "device": ifname, "mac_address": mac,
                            "router_guest_ip": f"10.10.4.{1 + int(r[-1])}",
                            "router_guest_gateway": "10.10.4.1", "dns": "10.10.4.1"}
                lab.apply(r, tiers[r],
                          {"type": "networkacl", "device": ifname, "mac_address": mac,
                           "nic_ip": "10.10.4.1", "nic_netmask": "24", "ingress_rules": [],
                           "egress_rules": []})
            wait_for(lab.converged, 20, "keepalived to load the new tier")
            wait_for(lambda: _pings(lab, vm, OUTSIDE), 20, f"{vm} to reach the outside")
            stats = probe.stop()
        finally:
            # The tier deleted, as a management server does (its ACL goes with it): a
            # router recreated later (test_cloudstack_mode...) has no NIC for it, and a
            # stored tier without its NIC would have every later bag rejected.
            for r, tier in tiers.items():
                lab.apply(r, {**tier, "add": False})
    print(f"\ntier added live: {stats['sent']} probes, {stats['lost']} lost")
    assert stats["sent"] > 100 and stats["lost"] == 0, stats
    assert transitions(lab) == before, lab.reports()[before:]
    assert lab.master() == master


def _pings(lab: Lab, service: str, target: str) -> bool:
    import subprocess

    return subprocess.run(["ip", "netns", "exec", lab.netns(service), "ping", "-c", "1", "-W",
                           "1", target], capture_output=True, check=False).returncode == 0


@pytest.mark.parametrize("kind", ["kill"])
def test_failover_figures_are_reported(lab: Lab, kind: str) -> None:
    """The lab's report carries what a person reads: who, how long, what survived."""
    from vragent_lab.scenario import write_report

    result = OUTAGES.get(kind) or failover(lab, kind)
    path = write_report(lab, {"checked": True}, result)
    text = path.read_text()
    assert '"outage_ms"' in text and '"connections"' in text
    assert (path.parent / "lab-timeline.png").stat().st_size > 1000


def test_sync_link_partition_is_reported_as_dual_master_and_heals(lab: Lab) -> None:
    """The sync link's switch fails: both routers keep their NICs, both become
    master, each reports the other holding its addresses; healed, one master."""
    from vragent_lab.lab import partition

    lab.wait_one_master()
    seen = len(lab.reports())
    partition(lab, "eth4", True)
    try:
        wait_for(lambda: list(lab.statuses().values()) == ["PRIMARY", "PRIMARY"], 20,
                 "both routers to become master")
        wait_for(lambda: {r["router"] for r in lab.reports()[seen:]
                          if r.get("dual_master") == "true"} == {"r-1-VM", "r-2-VM"}, 20,
                 "both dual-master reports at the management server")
    finally:
        partition(lab, "eth4", False)
    lab.wait_one_master(20)
    check_traffic(lab, lab.wait_one_master())


def test_sync_nic_unplugged_puts_its_router_in_fault_and_the_peer_takes_over(lab: Lab) -> None:
    """``docker network disconnect`` removes the NIC: keepalived tracks it, so
    the master steps down (FAULT) and the peer takes over; no dual master."""
    master = lab.wait_one_master()
    peer = next(r for r in lab.routers if r != master)
    network = lab.client().networks.get(f"{lab.project}_eth4-sync")
    network.disconnect(lab.container(master))
    wait_for(lambda: lab.status(master) == "FAULT" and lab.status(peer) == "PRIMARY", 20,
             f"{master} to fault and {peer} to take over")
    check_traffic(lab, peer)
    # Plugged back, the NIC comes back under the kernel's next free name; the
    # agent knows it by its MAC, gives it its name back, and the router
    # rejoins as backup with no restart.
    network.connect(lab.container(master), ipv4_address=f"10.255.0.{master[-1]}")
    wait_for(lambda: lab.status(master) == "BACKUP", 30, f"{master} back as backup")
    assert "eth4" in lab.exec(master, "ip", "-br", "link", "show", "eth4")
    assert lab.master() == peer


def test_cloudstack_mode_pair_in_containers(lab: Lab) -> None:
    """The same routers, rebooted with only what a management server sends (no
    sync link): they keep their stored VPC, elect with multicast VRRP on the
    public network, and a hard kill keeps every connection."""
    from dataclasses import replace

    cloudstack = replace(lab, mode="cloudstack")
    try:
        for r in lab.routers:
            lab.container(r).remove(force=True)
        cloudstack.compose("up", "-d", "--no-deps", *lab.routers)
        cloudstack.attach_namespaces()
        cloudstack.wait_one_master(60)
        wait_for(cloudstack.converged, 30, "keepalived to load the stored configuration")
        conf = cloudstack.exec("r1", "cat", "/etc/vragent/keepalived.conf")
        assert "    interface eth1\n" in conf and "unicast_peer" not in conf
        assert "    virtual_ipaddress {\n        100.64.10.10/24 dev eth1\n" in conf
        result = failover(cloudstack, "kill")
        print(f"\nCloudStack mode in containers: outage {result.outage_ms:.0f} ms")
        assert result.connections == {"source_nat": [CONNECTIONS, CONNECTIONS],
                                      "port_forward": [1, 1]}
        assert result.returned_as == "BACKUP"
    except Exception:
        for r in lab.routers:  # what the routers did, for the failure report
            print(f"--- {r} agent.log\n" + cloudstack.exec(
                r, "tail", "-40", "/var/log/vragent/agent.log", check=False))
        raise
    finally:
        for r in lab.routers:
            lab.container(r).remove(force=True)
        lab.compose("up", "-d", "--no-deps", *lab.routers)
        lab.attach_namespaces()
        lab.wait_one_master(60)
