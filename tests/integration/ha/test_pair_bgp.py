"""BGP on a redundant pair, both families, across a hard kill of the master.

The VPC is dual-stack: both tiers carry IPv6 (router_guest_ip6*) and the VPC
its public IPv6 (router_ip6 on eth1, keepalived's like the public IPv4
addresses). Both routers get the same bgppeers bag, whose items name the
speaker's IPv4 and IPv6 addresses and each tier's IPv4 and IPv6 CIDR.
Upstream's cs/CsBgpPeers.py makes of such an item two neighbours: the
ip4_address one in ``address-family ipv4 unicast`` announcing guest_ip4_cidr,
the ip6_address one in ``address-family ipv6 unicast`` announcing
guest_ip6_cidr (``bgp default ipv6-unicast``): an IPv6 session beside the
IPv4 one, which features/bgp renders too (each peer activated for its own
family only).

bgpd is master-only (features/bgp daemon.py): the sessions' sources are the
source-NAT address (100.64.10.10, also the router id) and router_ip6
(fd00:64:10::10), VRRP addresses that only the master holds, so the backup
has nothing to speak from. The backup renders the same frr.conf and runs
zebra, ready; the agent starts bgpd on the transition to master, which reads
its start file and connects to the speaker. The speaker (FRR in the outside
namespace) learns both families' tiers from the new master: IPv4 via
100.64.10.10 over a new session, IPv6 via fd00:64:10::10 and the new
master's own link-local address on eth1 (the next hop FRR sends with an IPv6
route on a shared link). Upstream's redundant router has no BGP-specific
step (cs/CsRedundant.py set_master starts the master's services;
CsBgpPeers.py restarts frr on every change).

Upstream files: systemvm/debian/opt/cloud/bin/cs_bgppeers.py,
cs/CsBgpPeers.py, cs/CsRedundant.py, cs/CsVpcGuestNetwork.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from vragent_lab.netns import in_ns, wait_for
from vragent_lab.pair import BRIDGES, PUBLIC_SNAT, PairRouter

from ..bgp.speaker import PASSWORD, ROUTER6, SPEAKER4, SPEAKER6, SPEAKER_AS, VPC_AS, Speaker
from .conftest import ADVERT_INT, running_pair
from .dualstack import TIERS, dual_stack

CIDR4 = {"eth2": "10.10.1.0/24", "eth3": "10.10.2.0/24"}
CIDR6 = {dev: f"{prefix}/64" for dev, (_bag, prefix, _vm) in TIERS.items()}
TIERS4, TIERS6 = set(CIDR4.values()), set(CIDR6.values())
PUBLIC6 = {"router_ip6": ROUTER6, "router_ip6_gateway": SPEAKER6,
           "router_ip6_cidr": "fd00:64:10::/64"}
FAMILIES = {"ipv4": (SPEAKER4, PUBLIC_SNAT), "ipv6": (SPEAKER6, ROUTER6)}
# Power cut to the speaker holding both families' tiers again over sessions
# with the new master. What takes the time: 3 missed adverts (1.5 s), the
# agent starting bgpd on the transition; the speaker keeps its sessions with
# the dead master until its next keepalive (every 3 s: timers 3 9) reaches
# the new master, whose kernel has no such connection and resets it (at worst
# the hold time, 9 s); the connect retries (2 s) and the new sessions (seen
# 3.2-5.3 s after the cut); then bgpd's update coalescing (1 s). Measured
# 4.7-6.4 s for both families (nine runs).
BOUND = 20.0
# A new session to its announcements (the update coalescing, 1 s, and polling).
ANNOUNCE = 3.0


def bag() -> dict[str, Any]:
    """One item per tier naming both of the speaker's addresses and both of
    the tier's CIDRs (BgpPeerTO: ip4_address, ip6_address, guest_ip4_cidr,
    guest_ip6_cidr)."""
    return {"type": "bgppeers", "peers": [
        {"peer_id": 1, "peer_as_number": SPEAKER_AS, "ip4_address": SPEAKER4,
         "ip6_address": SPEAKER6, "peer_password": PASSWORD, "network_id": nid,
         "network_as_number": VPC_AS, "guest_ip4_cidr": CIDR4[dev],
         "guest_ip6_cidr": CIDR6[dev], "details": {}}
        for nid, dev in ((201, "eth2"), (202, "eth3"))]}


def tier(r: PairRouter, dev: str) -> dict[str, Any]:
    """The tier's dual-stack guestnetwork bag with the VPC's public IPv6, as
    SetGuestNetworkConfigItem.java sends it."""
    return {**dual_stack(r, dev), **PUBLIC6}


def session(speaker: Speaker, router_address: str) -> dict[str, Any]:
    n = speaker.vtysh(f"show bgp neighbors {router_address} json")
    return dict(n.get(router_address, {})) if isinstance(n, dict) else {}


def established(speaker: Speaker) -> dict[str, int]:
    return {family: int(session(speaker, router).get("connectionsEstablished") or 0)
            for family, (_peer, router) in FAMILIES.items()}


def link_locals(r: PairRouter, dev: str = "eth1") -> set[str]:
    out = r.sh("ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link", check=False)
    return set(re.findall(r"inet6 (fe80::\S+)/64", out))


def learnt(speaker: Speaker, r: PairRouter) -> dict[str, bool]:
    """Whether the speaker holds each family's tiers with ``r``'s next hops:
    the source-NAT address for IPv4; router_ip6 and one of ``r``'s own
    link-local addresses on eth1 for IPv6."""
    hops4, hops6 = speaker.nexthops("ipv4"), speaker.nexthops("ipv6")
    mine = link_locals(r)
    return {"ipv4": all(hops4.get(c) == {PUBLIC_SNAT} for c in TIERS4),
            "ipv6": all(ROUTER6 in hops6.get(c, set()) and hops6[c] & mine for c in TIERS6)}


def advertised(r: PairRouter, family: str) -> set[str]:
    peer = FAMILIES[family][0]
    out = in_ns(r.ns, [
        "vtysh", "--config_dir", str(r.root / "etc/vragent/frr"), "--vty_socket",
        str(r.root / "run/vragent/frr"), "-d", "bgpd", "-c",
        f"show bgp {family} unicast neighbors {peer} advertised-routes json"])
    return set(json.loads(out).get("advertisedRoutes", {}))


def test_only_the_master_announces_both_families_and_the_new_master_does_after_a_hard_kill(
        tmp_path: Path) -> None:
    with running_pair(tmp_path / "pair", ADVERT_INT) as (pair, sampler):
        out = pair.ns("out")
        in_ns(out, ["ip", "-6", "addr", "add", f"{SPEAKER6}/64", "dev", "eth0", "nodad"])
        # The speaker's bgpd takes its link-local address when it starts: one
        # still in duplicate detection is none ("eth0 does not have a v6 LL
        # address", seen in the run where the first learn timed out, loaded).
        wait_for(lambda: any("tentative" not in line for line in in_ns(
            out, ["ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]).splitlines()),
            20, "the speaker's link-local address to leave duplicate detection")
        speaker = Speaker(out, tmp_path / "speaker")
        try:
            speaker.start(PASSWORD)
            master = pair.master()
            assert master is not None
            other = pair.other(master)
            for r in pair.routers:
                r.apply(*(tier(r, dev) for dev in TIERS), bag())
            try:
                wait_for(lambda: all(learnt(speaker, master).values()), 40,
                         f"the speaker to learn both families' tiers from {master.name}")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: the speaker has {speaker.nexthops('ipv4')} "
                                     f"{speaker.nexthops('ipv6')}, {master.name}'s link-local "
                                     f"addresses {link_locals(master)}") from None
            # The IPv6 next hop names the master: not the backup's link-local.
            assert not learnt(speaker, other)["ipv6"]
            # Only the master speaks BGP; the backup has the same files, ready.
            assert master.service_running("bgpd") and not other.service_running("bgpd")
            assert other.service_running("zebra")
            conf = [(r.root / "etc/vragent/frr/frr.conf").read_text().split("\n", 2)[2]
                    for r in (master, other)]  # but the hostname line
            assert conf[0] == conf[1]
            assert f"neighbor {SPEAKER6} activate" in conf[0]
            for family, (_peer, router) in FAMILIES.items():
                assert session(speaker, router)["bgpState"] == "Established", family
            before = established(speaker)

            sampler.healthy(False)
            killed = time.monotonic()
            # A power cut: the links go dark first, so nothing the dying
            # processes' sockets send on their way out (a FIN from bgpd's
            # sessions) reaches the speaker; then every process is killed.
            # The advert link first: a master that sees another link go down
            # first hands over at once (keepalived's FAULT, a priority-0
            # advert), which a dead router never does.
            advert_dev = pair.advert[0]
            for dev in (advert_dev, *(d for d in BRIDGES if d != advert_dev)):
                master.sh("ip", "link", "set", dev, "down")
            master.power_off()
            wait_for(lambda: other.status() == "PRIMARY", 10, "the backup to take over")
            took_over = time.monotonic() - killed
            wait_for(lambda: other.service_running("bgpd"), 20, f"bgpd on {other.name}")
            bgpd_up = time.monotonic() - killed
            up: dict[str, float] = {}  # a new session established
            when: dict[str, float] = {}  # and the tiers held with the new master's hops

            def from_new_master() -> bool:
                now = established(speaker)
                for family, ok in learnt(speaker, other).items():
                    if family not in up and now[family] > before[family]:
                        up[family] = time.monotonic() - killed
                    if family not in when and ok and family in up:
                        when[family] = time.monotonic() - killed
                return len(when) == len(FAMILIES)

            wait_for(from_new_master, 60,
                     f"the speaker to learn both families' tiers from {other.name}")
            back = max(when.values())
            # Learnt from the new master: its bgpd advertised them to the speaker.
            assert TIERS4 <= advertised(other, "ipv4")
            assert TIERS6 <= advertised(other, "ipv6")
            print(f"\nBGP, power cut of the master at advert_int {ADVERT_INT} s: "
                  f"backup PRIMARY after {took_over * 1000:.0f} ms, its bgpd running after "
                  f"{bgpd_up * 1000:.0f} ms; new sessions seen IPv4 {up['ipv4'] * 1000:.0f} ms, "
                  f"IPv6 {up['ipv6'] * 1000:.0f} ms; the speaker held the tiers from the new "
                  f"master: IPv4 {when['ipv4'] * 1000:.0f} ms, IPv6 "
                  f"{when['ipv6'] * 1000:.0f} ms, both {back * 1000:.0f} ms after the cut")
            assert back < BOUND, when
            # The new master announces as soon as a session is up (a second of
            # bgpd's update coalescing), not only once its route-map delay timer
            # (5 s from its start) resolved the neighbours' route maps.
            for family in FAMILIES:
                assert when[family] - up[family] < ANNOUNCE, (family, up, when)

            # A tier goes: both its routes are withdrawn, over the same sessions.
            after = established(speaker)
            other.apply({**tier(other, "eth3"), "add": False})
            wait_for(lambda: CIDR4["eth3"] not in speaker.routes("ipv4")
                     and CIDR6["eth3"] not in speaker.routes("ipv6"), 20,
                     "the removed tier's IPv4 and IPv6 routes to be withdrawn")
            assert CIDR4["eth2"] in speaker.routes("ipv4")
            assert CIDR6["eth2"] in speaker.routes("ipv6")
            assert established(speaker) == after
        finally:
            speaker.stop()
