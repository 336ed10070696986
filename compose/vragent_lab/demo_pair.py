"""``make demo`` (second part): a redundant pair serving the sample VPC, and a hard failover.

Two routers, each under its own supervisord in a network namespace, elect a
master; the sample VPC's bags are applied to both; a VM keeps a probe and 50
TCP connections through source NAT running while the master is powered off.
Prints the outage, the connections that survived and the reports the
management server received, then removes everything.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import pair as lab_pair
from .netns import wait_for
from .pair import OUTSIDE
from .traffic import Probe, TcpEcho, TcpHolder, UdpEcho


def _title(text: str) -> None:
    print(f"\n=== {text}", flush=True)


def main() -> int:
    base = Path(tempfile.mkdtemp(prefix="vragent-demo-pair-"))
    pair = lab_pair.build(base, advert_int=0.2, prefix="demop-")
    try:
        _title("starting two routers (supervisord -> agent -> conntrackd, keepalived)")
        started = time.monotonic()
        master = lab_pair.start(pair, timeout=60)
        backup = pair.other(master)
        for r in pair.routers:
            wait_for(r.config_loaded, 15, "keepalived to load the tiers")
        print(f"{master.name}: {master.vragent('state').stdout.strip()}   "
              f"{backup.name}: {backup.vragent('state').stdout.strip()}   "
              f"({time.monotonic() - started:.1f} s)")
        _title(f"{master.name}'s keepalived.conf")
        print((master.root / "etc/vragent/keepalived.conf").read_text())

        _title(f"powering {master.name} off under load (advert_int 0.2)")
        with UdpEcho(pair.ns("out"), OUTSIDE, 7001), TcpEcho(pair.ns("out"), OUTSIDE, 7000), \
                TcpHolder(pair.ns("vm1"), OUTSIDE, 7000, 50) as conns, \
                Probe(pair.ns("vm1"), OUTSIDE, 7001) as probe:
            wait_for(lambda: probe.stats()["received"] > 20, 10, "probe replies")
            probe.reset()
            killed = time.monotonic()
            master.power_off()
            wait_for(lambda: backup.status() == "PRIMARY", 30, "the takeover")
            wait_for(lambda: time.monotonic() - killed > 1.5, 5, "traffic to settle")
            stats = probe.stats()
            kept = conns.check()["ok"]
        print(f"{backup.name} took over; outage {stats['max_gap_ms']:.0f} ms "
              f"({stats['lost']} probes of 10 ms lost); {kept}/50 TCP connections still work")

        _title(f"rebooting {master.name}: it comes back as backup (nopreempt)")
        master.wipe_volatile()
        master.power_on()
        wait_for(lambda: master.status() == "BACKUP", 60, "the rebooted router")
        print(f"{master.name}: {master.vragent('state').stdout.strip()}   "
              f"{backup.name}: {backup.vragent('state').stdout.strip()}")

        _title("reports received by the management server")
        wait_for(lambda: any(r["router"] == master.name and r["state"] == "BACKUP"
                             and r["previous"] == "UNKNOWN" for r in pair.reports()[2:]),
                 15, "the last report")
        for rep in pair.reports():
            print(f"{rep['timestamp']}  {rep['router']}  {rep['previous']:>7} -> "
                  f"{rep['state']:<7}  {rep['reason']}")
    finally:
        pair.destroy()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
