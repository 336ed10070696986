"""Hard-kill failovers of a redundant pair: outage, surviving connections, stray transitions.

For each advert_int, a pair in network namespaces (real keepalived, conntrackd,
supervisord) serves 100 long-lived TCP connections from a VM through source
NAT, one port-forwarded connection inbound, and a UDP probe every 10 ms. Each
round powers the master off (every process SIGKILLed, links down), measures
the probe's outage and which connections still carry data, then reboots the
dead router, which must come back as backup.

The baseline, measured in the same round, is keepalived's own takeover time
(kill until the backup's agent has run its master sequence): the outage over
it shows what the data path adds on top of VRRP's detection.

    python bench/bench_failover.py [--rounds 20] [--advert 1.0 0.2] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vragent_lab import pair as lab_pair
from vragent_lab.netns import wait_for
from vragent_lab.pair import OUTSIDE, PUBLIC_FORWARD, Pair, PairRouter
from vragent_lab.traffic import Probe, TcpEcho, TcpHolder, UdpEcho

CONNECTIONS = 100


def cached(router: PairRouter) -> int:
    out = router.sh("conntrackd", "-C", str(router.root / "etc/vragent/conntrackd.conf"), "-e",
                    check=False)
    return sum(1 for line in out.splitlines() if "tcp" in line and "ESTABLISHED" in line)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_round(pair: Pair, conns: TcpHolder, fwd: TcpHolder, probe: Probe, n: int,
              unexpected: list[str]) -> tuple[float, float, int, int]:
    """Kill the master, measure, reboot it; (outage s, takeover s, kept, open before)."""
    master = pair.wait_one_master(60)
    backup = pair.other(master)
    alive = conns.check()["ok"] + fwd.check()["ok"]
    wait_for(lambda: cached(backup) >= alive, 30, "the backup's cache to hold the connections")
    before = backup.transitions()
    probe.reset()
    killed = time.monotonic()
    master.power_off()
    wait_for(lambda: backup.status() == "PRIMARY", 30, "the takeover", interval=0.005)
    takeover = time.monotonic() - killed
    wait_for(lambda: probe.stats()["received"] > 0 and
             time.monotonic() - killed > takeover + 0.5, 30, "traffic to resume")
    outage = probe.stats()["max_gap_ms"] / 1000
    ok = conns.check()["ok"] + fwd.check()["ok"]
    if backup.transitions() != before + 1:
        unexpected.append(f"round {n}: {backup.name} made "
                          f"{backup.transitions() - before} transitions")
    master.wipe_volatile()
    master.power_on()
    wait_for(lambda: master.status() == "BACKUP", 60, "the rebooted router to be backup")
    if backup.status() != "PRIMARY" or backup.transitions() != before + 1:
        unexpected.append(f"round {n}: {backup.name} lost mastership to the rebooted router")
    return outage, takeover, ok, alive


def run(advert: float, rounds: int) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="vragent-bench-failover-"))
    pair: Pair = lab_pair.build(base, advert)
    outages: list[float] = []
    takeovers: list[float] = []
    survived = total = 0
    unexpected: list[str] = []
    try:
        lab_pair.start(pair, timeout=60)
        for r in pair.routers:
            wait_for(r.config_loaded, 15, "keepalived to load the configuration")
        with UdpEcho(pair.ns("out"), OUTSIDE, 7001), \
                TcpEcho(pair.ns("out"), OUTSIDE, 7000), \
                TcpEcho(pair.ns("vm1"), "10.10.1.10", 22), \
                TcpHolder(pair.ns("vm1"), OUTSIDE, 7000, CONNECTIONS) as conns, \
                TcpHolder(pair.ns("out"), PUBLIC_FORWARD, 2222, 1) as fwd, \
                Probe(pair.ns("vm1"), OUTSIDE, 7001, interval=0.01) as probe:
            for n in range(rounds):
                outage, takeover, ok, alive = one_round(pair, conns, fwd, probe, n, unexpected)
                outages.append(outage)
                takeovers.append(takeover)
                survived += ok
                total += alive
                print(f"  advert {advert:g} round {n + 1:2d}: outage {outage * 1000:6.0f} ms, "
                      f"takeover {takeover * 1000:6.0f} ms, connections {ok}/{alive}",
                      flush=True)
    finally:
        pair.destroy()
        subprocess.run(["rm", "-rf", str(base)], check=False)
    for item in unexpected:
        print(f"  UNEXPECTED: {item}")
    return {
        "median": statistics.median(outages), "p95": pct(outages, 0.95), "max": max(outages),
        "takeover": statistics.median(takeovers),
        "survived": survived / total if total else 0.0,
        "unexpected": float(len(unexpected)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--advert", type=float, nargs="+", default=[1.0, 0.2])
    parser.add_argument("--quick", action="store_true", help="2 rounds each (smoke run)")
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    results = {}
    for advert in args.advert:
        print(f"advert_int {advert:g}: {rounds} hard-kill failovers", flush=True)
        results[advert] = run(advert, rounds)
    print()
    print(f"{'advert_int':>10} {'median':>8} {'p95':>8} {'max':>8} {'takeover':>9} "
          f"{'outage/takeover':>16} {'conns kept':>11} {'unexpected':>10}")
    for advert, r in results.items():
        print(f"{advert:>10g} {r['median'] * 1000:>6.0f}ms {r['p95'] * 1000:>6.0f}ms "
              f"{r['max'] * 1000:>6.0f}ms {r['takeover'] * 1000:>7.0f}ms "
              f"{r['median'] / r['takeover']:>16.2f} {r['survived'] * 100:>10.1f}% "
              f"{int(r['unexpected']):>10d}")
    aim = results.get(0.2)
    if aim is not None:
        met = aim["median"] < 1.0 and aim["survived"] == 1.0
        print(f"\naim (advert_int 0.2: median outage < 1 s, 100 % of connections kept): "
              f"{'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
