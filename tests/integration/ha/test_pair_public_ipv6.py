"""The VPC's public IPv6 on a redundant pair, with real keepalived, conntrackd,
radvd, SLAAC hosts and an outside host routing the VPC's prefixes to router_ip6.

- router_ip6 (guestnetwork router_ip6 / router_ip6_cidr, as
  SetGuestNetworkConfigItem.java sends them) is keepalived's, like the public
  IPv4 addresses: only the master holds it. Upstream adds it on eth1 whatever
  the redundant state (cs/CsVpcGuestNetwork.py add_address_route), so both
  routers of its pair would claim it.
- The outside host reaches a tier VM over IPv6 (ping6 and TCP) through the pair.
- After a hard kill of the master, IPv6 TCP connections from a tier VM to the
  outside host keep carrying data through the new master (keepalived's
  unsolicited neighbour advertisement repoints the outside host at it), and
  the outage, measured with a 10 ms UDP probe over IPv6, is printed beside an
  IPv4 probe's to the same host in the same failover.

Both pair modes: a sync link, and CloudStack's (one public MAC for both
routers: the backup's public NIC has IPv6 but no link-local address and sends
nothing there).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from vragent_lab.netns import in_ns, wait_for
from vragent_lab.pair import OUTSIDE, Pair, PairRouter, mac
from vragent_lab.traffic import TcpEcho, TcpHolder

from .conftest import ADVERT_INT, Sampler
from .dualstack import (
    TIERS,
    acl_v6,
    dual_stack,
    dual_stack_pair,
    hard_kill,
    hosts_configured,
    probed,
)

PUBLIC6 = {"router_ip6": "fd64:10::10", "router_ip6_gateway": "fd64:10::1",
           "router_ip6_cidr": "fd64:10::/64"}
ROUTER6 = PUBLIC6["router_ip6"]
OUTSIDE6 = PUBLIC6["router_ip6_gateway"]
VPC6 = "fd00:a:a::/48"
ECHO_TCP = 7100
ECHO_UDP = 7101
HELD = 20


def with_public6(bag: dict[str, Any]) -> dict[str, Any]:
    return {**bag, **PUBLIC6}


def acl1(r: PairRouter) -> dict[str, Any]:
    """Tier 1's ACL: the sample's, and IPv6 egress to anywhere (the sample's
    egress rule names an IPv4 network only)."""
    acl = r.sample("network_acl_tier1.json")
    acl["egress_rules"] = [*acl["egress_rules"], {"type": "all", "cidr": "::/0",
                                                   "allowed": True}]
    return acl


def acl2(r: PairRouter) -> dict[str, Any]:
    """Tier 2's ACL (the IPv6 pair test's), plus ICMPv6 echo and this test's
    TCP port from anywhere in IPv6."""
    acl = acl_v6(r)
    acl["ingress_rules"] = [*acl["ingress_rules"],
                            {"type": "icmp", "cidr": "::/0", "icmp_type": -1, "icmp_code": -1,
                             "allowed": True},
                            {"type": "tcp", "cidr": "::/0", "first_port": ECHO_TCP,
                             "last_port": ECHO_TCP, "allowed": True}]
    return acl


def holds(router: PairRouter, addr: str = ROUTER6, dev: str = "eth1") -> bool:
    return f" {addr}/" in router.sh("ip", "-6", "-o", "addr", "show", "dev", dev, check=False)


@pytest.fixture(scope="module", params=["sync-link", "cloudstack"])
def pub6_pair(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Pair, Sampler]]:
    with dual_stack_pair(tmp_path_factory.mktemp("pub6pair"), request.param == "cloudstack",
                         lambda r: [*(with_public6(dual_stack(r, dev)) for dev in TIERS),
                                    acl1(r), acl2(r)],
                         "the public IPv6") as (pair, sampler):
        # The outside host is the public IPv6 network's gateway and routes the
        # VPC's prefixes back through router_ip6 (as the upstream router of a
        # dual-stack VPC is configured to).
        out = pair.ns("out")
        in_ns(out, ["ip", "-6", "addr", "add", f"{OUTSIDE6}/64", "dev", "eth0", "nodad"])
        in_ns(out, ["ip", "-6", "route", "add", VPC6, "via", ROUTER6])
        yield pair, sampler


def test_only_the_master_holds_router_ip6_and_the_outside_reaches_a_tier_vm(
        pub6_pair: tuple[Pair, Sampler]) -> None:
    pair, _ = pub6_pair
    master = pair.wait_one_master()
    backup = pair.other(master)
    wait_for(lambda: holds(master), 15, "the master to hold router_ip6")
    assert not holds(backup)
    # The IPv6 default route via router_ip6_gateway, on both as the IPv4 one.
    for r in pair.routers:
        assert f"default via {OUTSIDE6} dev eth1" in r.sh("ip", "-6", "route", "show",
                                                          "default")
    addresses = hosts_configured(pair)
    out, vm2 = pair.ns("out"), pair.ns("vm2")
    target = addresses["vm2"]
    ping = subprocess.run(["ip", "netns", "exec", out, "ping", "-6", "-c", "3", "-i", "0.2",
                           "-W", "2", target], capture_output=True, text=True, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    # Answered by the master only: the outside host's neighbour entry for router_ip6.
    neigh = in_ns(out, ["ip", "-6", "neigh", "show", ROUTER6, "dev", "eth0"], check=False)
    assert mac(master.index, "eth1", pair.cloudstack) in neigh.lower(), neigh
    with TcpEcho(vm2, target, ECHO_TCP), TcpHolder(out, target, ECHO_TCP, 3) as held:
        assert held.check()["ok"] == 3
    # The backup never sent anything from router_ip6 or a link-local address of the shared MAC.
    assert not holds(backup)
    if pair.cloudstack:
        assert "inet6" not in backup.sh("ip", "-6", "-o", "addr", "show", "dev", "eth1")


def test_hard_kill_keeps_ipv6_tcp_to_the_outside(pub6_pair: tuple[Pair, Sampler]) -> None:
    pair, sampler = pub6_pair
    master = pair.wait_one_master()
    survivor = pair.other(master)
    wait_for(lambda: holds(master), 15, "the master to hold router_ip6")
    hosts_configured(pair)
    out, vm1 = pair.ns("out"), pair.ns("vm1")
    with probed(vm1, out, OUTSIDE6, OUTSIDE, ECHO_TCP, ECHO_UDP, HELD) as (held, probe, probe4):
        # The outside host's traffic goes to the master about to die.
        assert neighbour_of(out, ROUTER6) == mac(master.index, "eth1", pair.cloudstack)
        took_over, stats, stats4 = hard_kill(sampler, master, survivor, probe, probe4)
        mode = "CloudStack mode" if pair.cloudstack else "sync link"
        print(f"\nPublic IPv6 hard failover ({mode}, advert_int {ADVERT_INT} s): takeover "
              f"reported {took_over:.2f} s after the kill; outage to the outside host (10 ms "
              f"UDP probes) IPv6 {stats['max_gap_ms']:.0f} ms (lost {stats['lost']} of "
              f"{stats['sent']}), IPv4 in the same failover {stats4['max_gap_ms']:.0f} ms: "
              f"ratio {stats['max_gap_ms'] / max(stats4['max_gap_ms'], 1):.2f}")
        # No wait on the outside host's neighbour unreachability detection:
        # the unsolicited advertisement moves router_ip6 as GARP moves IPv4.
        assert stats["max_gap_ms"] < stats4["max_gap_ms"] + 1000, (stats, stats4)
        result = held.check()
        assert result["ok"] == HELD, result
        assert holds(survivor)
        assert neighbour_of(out, ROUTER6) == mac(survivor.index, "eth1", pair.cloudstack)
        master.wipe_volatile()
        master.power_on()
        wait_for(lambda: master.status() == "BACKUP", 30, "the rebooted router to be backup")
        wait_for(master.config_loaded, 15, "the rebooted backup to load its configuration")
        assert not holds(master)
        assert held.check()["ok"] == HELD
    pair.wait_one_master()
    sampler.healthy(True)


def neighbour_of(ns: str, addr: str) -> str | None:
    out = in_ns(ns, ["ip", "-6", "neigh", "show", addr, "dev", "eth0"], check=False)
    found = [w for w in out.split() if w.count(":") == 5]
    return found[0].lower() if found else None

