"""BGP on a redundant pair, across a hard kill of the master.

Both routers get the same bgppeers bag; bgpd is master-only (features/bgp
daemon.py): the session's source and the router id are the source-NAT
address (100.64.10.10), a VRRP address in sync-link mode that only the
master holds, so the backup has nothing to speak from. The backup renders
the same frr.conf and runs zebra, ready; the agent starts bgpd on the
transition to master, which reads its start file and connects to the
speaker. The speaker (FRR in the outside namespace) learns the tiers from
the new master. Upstream's redundant router has no BGP-specific step
(cs/CsRedundant.py set_master starts the master's services; CsBgpPeers.py
restarts frr on every change).

Upstream files: systemvm/debian/opt/cloud/bin/cs_bgppeers.py,
cs/CsBgpPeers.py, cs/CsRedundant.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from vragent_lab.netns import in_ns, wait_for
from vragent_lab.pair import PUBLIC_SNAT

from ..bgp.speaker import PASSWORD, SPEAKER6, SPEAKER_AS, VPC_AS, Speaker
from .conftest import ADVERT_INT, running_pair

TIERS = {"10.10.1.0/24", "10.10.2.0/24"}
# Kill to the speaker holding both tiers again over a session with the new
# master. What takes the time: 3 missed adverts (1.5 s), the agent starting
# bgpd on the transition; the speaker keeps its session with the dead master
# until its next keepalive (every 3 s: timers 3 9) reaches the new master,
# whose kernel has no such connection and resets it (at worst the hold time,
# 9 s); then the new session (OPEN, KEEPALIVE) and the announcements.
BOUND = 20.0


def bag() -> dict[str, Any]:
    return {"type": "bgppeers", "peers": [
        {"peer_id": 1, "peer_as_number": SPEAKER_AS, "ip4_address": "100.64.10.1",
         "peer_password": PASSWORD, "network_id": nid, "network_as_number": VPC_AS,
         "guest_ip4_cidr": cidr, "details": {}}
        for nid, cidr in ((201, "10.10.1.0/24"), (202, "10.10.2.0/24"))]}


def session(speaker: Speaker) -> dict[str, Any]:
    n = speaker.vtysh(f"show bgp neighbors {PUBLIC_SNAT} json")
    return dict(n.get(PUBLIC_SNAT, {})) if isinstance(n, dict) else {}


def test_only_the_master_announces_and_the_new_master_does_after_a_hard_kill(
        tmp_path: Path) -> None:
    with running_pair(tmp_path / "pair", ADVERT_INT) as (pair, sampler):
        out = pair.ns("out")
        in_ns(out, ["ip", "-6", "addr", "add", f"{SPEAKER6}/64", "dev", "eth0", "nodad"])
        speaker = Speaker(out, tmp_path / "speaker")
        try:
            speaker.start(PASSWORD)
            master = pair.master()
            assert master is not None
            other = pair.other(master)
            for r in pair.routers:
                r.apply(bag())
            wait_for(lambda: TIERS <= speaker.routes("ipv4"), 30,
                     f"the speaker to learn the tiers from {master.name}")
            # Only the master speaks BGP; the backup has the same files, ready.
            assert master.service_running("bgpd") and not other.service_running("bgpd")
            assert other.service_running("zebra")
            conf = [(r.root / "etc/vragent/frr/frr.conf").read_text().split("\n", 2)[2]
                    for r in (master, other)]  # but the hostname line
            assert conf[0] == conf[1]
            before = session(speaker)
            assert before["bgpState"] == "Established"
            established = int(before["connectionsEstablished"])

            sampler.healthy(False)
            killed = time.time()
            master.kill()
            wait_for(lambda: other.status() == "PRIMARY", 10, "the backup to take over")
            took_over = time.time() - killed
            wait_for(lambda: other.service_running("bgpd"), 20, f"bgpd on {other.name}")
            bgpd_up = time.time() - killed

            def from_new_master() -> bool:
                s = session(speaker)
                return (s.get("bgpState") == "Established"
                        and int(s.get("connectionsEstablished") or 0) > established
                        and TIERS <= speaker.routes("ipv4"))

            wait_for(from_new_master, 40, f"the speaker to learn the tiers from {other.name}")
            back = time.time() - killed
            assert other.service_running("bgpd")
            # Learnt from the new master: its bgpd advertised them to the speaker.
            adv = in_ns(other.ns, [
                "vtysh", "--config_dir", str(other.root / "etc/vragent/frr"), "--vty_socket",
                str(other.root / "run/vragent/frr"), "-d", "bgpd", "-c",
                "show bgp ipv4 unicast neighbors 100.64.10.1 advertised-routes json"])
            assert TIERS <= set(json.loads(adv).get("advertisedRoutes", {}))
            print(f"\nBGP, hard kill of the master at advert_int {ADVERT_INT} s: backup "
                  f"PRIMARY after {took_over * 1000:.0f} ms, its bgpd running after "
                  f"{bgpd_up * 1000:.0f} ms, the speaker held both tiers "
                  f"over a new session with the new master {back * 1000:.0f} ms after the kill")
            assert back < BOUND
        finally:
            speaker.stop()
