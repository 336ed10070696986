"""Failovers of a redundant pair, per detection setting: hard kills, planned
switchovers, and false elections under load.

Settings: plain VRRP at an advert_int (``vrrp-0.2``), and fast detection
(``sync_bfd=1``) at a BFD interval x multiplier (``bfd-50x3``), VRRP at 1 s
behind it. For each, a pair in network namespaces (real keepalived,
conntrackd, supervisord) serves 100 long-lived TCP connections from a VM
through source NAT, one port-forwarded connection inbound, and a UDP probe
every 10 ms.

1. Hard kill, ``--rounds`` times: the master powered off (every process
   SIGKILLed, links down); the probe's outage, which connections still carry
   data; the dead router rebooted, back as backup. The baseline, measured in
   the same round, is the takeover as the agent reports it (kill until the
   backup's agent ran its master sequence).
2. Planned switchover, ``--switchovers`` times: ``vragent switchover`` on the
   master; probe packets lost and connections kept.
3. Soak (``--soak`` seconds, every setting's pair at once): both cores kept
   busy by a CPU hog and a burst of configuration commands on every router
   every ``--burst-every`` seconds; every state change while both routers are
   healthy is a false election.

    python bench/bench_failover.py [--rounds 20] [--switchovers 5] [--soak 600]
        [--settings vrrp-0.2 bfd-20x3 bfd-50x3 bfd-100x3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vragent.api.client import Client
from vragent_lab import pair as lab_pair
from vragent_lab.netns import wait_for
from vragent_lab.pair import OUTSIDE, PUBLIC_FORWARD, Pair, PairRouter
from vragent_lab.traffic import Probe, TcpEcho, TcpHolder, UdpEcho

CONNECTIONS = 100
# Seconds a BFD session is given, once up, to agree on its fast timers.
BFD_SETTLE = 3.0


@dataclass(frozen=True)
class Setting:
    name: str
    advert: float
    boot: dict[str, str]


def setting(name: str) -> Setting:
    """``vrrp-<advert_int>`` or ``bfd-<interval ms>x<multiplier>``."""
    kind, _, value = name.partition("-")
    if kind == "vrrp":
        return Setting(name, float(value), {})
    interval, _, multiplier = value.partition("x")
    return Setting(name, 1.0, {"sync_bfd": "1", "sync_bfd_interval": interval,
                               "sync_bfd_multiplier": multiplier or "3"})


def cached(router: PairRouter) -> int:
    out = router.sh("conntrackd", "-C", str(router.root / "etc/vragent/conntrackd.conf"), "-e",
                    check=False)
    return sum(1 for line in out.splitlines() if "tcp" in line and "ESTABLISHED" in line)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def one_round(pair: Pair, conns: TcpHolder, fwd: TcpHolder, probe: Probe, n: int,
              unexpected: list[str], bfd: bool) -> tuple[float, float, int, int]:
    """Kill the master, measure, reboot it; (outage s, takeover s, kept, open before)."""
    master = pair.wait_one_master(60)
    backup = pair.other(master)
    if bfd:
        # A router just rebooted has no session yet, and a session just up
        # still runs at BFD's slow start-up rate (1 s, RFC 5880 6.8.3) until
        # its poll sequence agrees on the fast one: until then VRRP's timer
        # detects. A master dying within seconds of its peer's reboot is
        # not what this measures.
        wait_for(lambda: backup.ha_state().get("bfd") == "up", 30,
                 "the backup's BFD session to be up")
        up = time.monotonic()
        wait_for(lambda: time.monotonic() - up > BFD_SETTLE, BFD_SETTLE + 1,
                 "the session's fast timers")
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


def switchover_round(pair: Pair, conns: TcpHolder, fwd: TcpHolder, probe: Probe, n: int,
                     unexpected: list[str]) -> tuple[int, int, int, float]:
    """``vragent switchover`` on the master: (probe packets lost, kept, open before, s)."""
    master = pair.wait_one_master(60)
    backup = pair.other(master)
    alive = conns.check()["ok"] + fwd.check()["ok"]
    wait_for(lambda: cached(backup) >= alive, 30, "the backup's cache to hold the connections")
    probe.reset()
    started = time.monotonic()
    master.vragent("switchover")
    took = time.monotonic() - started
    wait_for(lambda: backup.status() == "PRIMARY", 30, "the peer to report PRIMARY")
    # Replies in flight at the handover have had time to arrive.
    wait_for(lambda: time.monotonic() - started > took + 0.5, 5, "the probe to settle")
    stats = probe.stats()
    ok = conns.check()["ok"] + fwd.check()["ok"]
    if master.status() != "BACKUP":
        unexpected.append(f"switchover {n}: {master.name} is {master.status()}")
    return int(stats["lost"]), ok, alive, took


def run(st: Setting, rounds: int, switchovers: int) -> dict[str, float]:
    advert = st.advert
    base = Path(tempfile.mkdtemp(prefix="vragent-bench-failover-"))
    pair: Pair = lab_pair.build(base, advert, boot=st.boot)
    outages: list[float] = []
    takeovers: list[float] = []
    survived = total = 0
    so_lost: list[int] = []
    so_took: list[float] = []
    so_kept = so_total = 0
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
                outage, takeover, ok, alive = one_round(pair, conns, fwd, probe, n, unexpected,
                                                        bool(st.boot))
                outages.append(outage)
                takeovers.append(takeover)
                survived += ok
                total += alive
                print(f"  {st.name} round {n + 1:2d}: outage {outage * 1000:6.0f} ms, "
                      f"takeover {takeover * 1000:6.0f} ms, connections {ok}/{alive}",
                      flush=True)
            for n in range(switchovers):
                lost, ok, alive, took = switchover_round(pair, conns, fwd, probe, n, unexpected)
                so_lost.append(lost)
                so_kept += ok
                so_total += alive
                so_took.append(took)
                print(f"  {st.name} switchover {n + 1}: {lost} probe packets lost, "
                      f"connections {ok}/{alive}, {took:.2f} s", flush=True)
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
        "so_lost": float(sum(so_lost)), "so_rounds": float(len(so_lost)),
        "so_kept": so_kept / so_total if so_total else 0.0,
        "so_took": statistics.median(so_took) if so_took else 0.0,
    }


class Hog:
    """Both cores kept busy at normal priority, as a noisy neighbour would."""

    def __init__(self, cores: int = 2) -> None:
        self.procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                      for _ in range(cores)]

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def burst(router: PairRouter, n: int, flip: bool) -> None:
    """``n`` configuration commands back to back over the agent's socket."""
    client = Client(router.root / "run/vragent/api.sock")
    for i in range(n):
        bag = {"type": "dhcpentry", "host_name": f"soak{i}",
               "mac_address": f"02:00:0a:01:01:{i:02x}",
               "ipv4_address": f"10.10.1.{100 + i}", "default_gateway": "10.10.1.1",
               "dns_addresses": "10.10.1.1", "default_entry": True, "remove": flip}
        client.call("POST", "/v1/apply", body=json.dumps(bag).encode())


def soak(settings: list[Setting], seconds: float, every: float, per_burst: int) -> dict[str, int]:
    """Every setting's pair at once under a CPU hog and command bursts; state changes each."""
    pairs: dict[str, Pair] = {}
    bases = []
    try:
        for i, st in enumerate(settings):
            base = Path(tempfile.mkdtemp(prefix="vragent-bench-soak-"))
            bases.append(base)
            pairs[st.name] = lab_pair.build(base, st.advert, prefix=f"vs{i}-", boot=st.boot)
            lab_pair.start(pairs[st.name], timeout=120)
        for p in pairs.values():
            p.wait_one_master(60)
        before = {name: sum(r.transitions() for r in p.routers) for name, p in pairs.items()}
        hog = Hog()
        stop = threading.Event()
        sent = [0]

        def bursts() -> None:
            flip = False
            while not stop.wait(every):
                flip = not flip
                for p in pairs.values():
                    for r in p.routers:
                        burst(r, per_burst, flip)
                        sent[0] += per_burst

        thread = threading.Thread(target=bursts, daemon=True)
        thread.start()
        print(f"soak: {len(pairs)} pairs, CPU hog on 2 cores, {per_burst} commands per router "
              f"every {every:g} s, for {seconds:g} s", flush=True)
        try:
            stop.wait(seconds)  # the soak itself
        finally:
            stop.set()
            thread.join()
            hog.stop()
        changes = {name: sum(r.transitions() for r in p.routers) - before[name]
                   for name, p in pairs.items()}
        print(f"soak: {sent[0]} commands sent", flush=True)
        return changes
    finally:
        for p in pairs.values():
            p.destroy()
        for base in bases:
            subprocess.run(["rm", "-rf", str(base)], check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--switchovers", type=int, default=5)
    parser.add_argument("--soak", type=float, default=600.0, help="seconds (0: none)")
    parser.add_argument("--burst-every", type=float, default=5.0)
    parser.add_argument("--burst", type=int, default=10, help="commands per router per burst")
    parser.add_argument("--settings", nargs="+",
                        default=["vrrp-0.2", "bfd-20x3", "bfd-50x3", "bfd-100x3"])
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds, 1 switchover and a 60 s soak each (smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.switchovers, args.soak = 2, 1, min(args.soak, 60.0)
    settings = [setting(name) for name in args.settings]
    results = {}
    for st in settings:
        print(f"{st.name}: {args.rounds} hard-kill failovers, {args.switchovers} switchovers",
              flush=True)
        results[st.name] = run(st, args.rounds, args.switchovers)
    elections = soak(settings, args.soak, args.burst_every, args.burst) if args.soak else {}
    print()
    print(f"{'setting':>10} {'median':>8} {'p95':>8} {'max':>8} {'takeover':>9} "
          f"{'outage/takeover':>16} {'conns kept':>11} {'unexpected':>10} "
          f"{'switchover lost':>16} {'kept':>7} {'false elections':>16}")
    for name, r in results.items():
        print(f"{name:>10} {r['median'] * 1000:>6.0f}ms {r['p95'] * 1000:>6.0f}ms "
              f"{r['max'] * 1000:>6.0f}ms {r['takeover'] * 1000:>7.0f}ms "
              f"{r['median'] / r['takeover']:>16.2f} {r['survived'] * 100:>10.1f}% "
              f"{int(r['unexpected']):>10d} "
              f"{int(r['so_lost']):>8d} in {int(r['so_rounds']):>2d} {r['so_kept'] * 100:>6.1f}% "
              f"{elections.get(name, -1):>16d}")
    fast = [n for n, r in results.items() if r["median"] < 0.2 and r["survived"] == 1.0]
    print(f"\naim (hard-kill median < 200 ms with every connection kept): "
          f"{'met by ' + ', '.join(fast) if fast else 'NOT met'}")
    clean = [n for n, r in results.items() if r["so_lost"] == 0 and r["so_rounds"]]
    print(f"aim (planned switchover, 0 probe packets lost): "
          f"{'met by ' + ', '.join(clean) if clean else 'NOT met'}")
    if elections:
        print(f"aim (0 false elections under load): "
              f"{'met by ' + ', '.join(n for n, c in elections.items() if c == 0)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
