"""Many redundant pairs on one host: what an idle router costs, and whether
the pairs stay quiet (no election) while idle and while configured.

N pairs in network namespaces (the lab's pair: real supervisord, agent,
keepalived, conntrackd, dnsmasq, metadata), each with the sample VPC applied.
Once every pair has one master, three phases:

1. idle: for ``--idle`` seconds nothing is sent; per router the CPU of every
   process in its namespace (utime + stime from /proc) and its memory
   (RSS, and PSS, which shares libraries fairly between routers);
2. churn: for ``--churn`` seconds every router gets a command every
   ``--every`` seconds (a DHCP entry added or removed, an ACL rule changed);
3. the state changes counted over both phases (every pair healthy: each one
   is a false election).

The baseline, measured in the same run before any pair starts, is the host's
own idle CPU over the same window (everything else on this shared machine).

    python bench/bench_density.py [--pairs 50] [--idle 300] [--churn 120] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vragent.api.client import Client
from vragent_lab import pair as lab_pair
from vragent_lab.netns import sh
from vragent_lab.pair import Pair, PairRouter

CLK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_ticks(pids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """{pid: (command name, utime + stime in clock ticks)} for live pids."""
    found = {}
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        # Children reaped count too (a track script keepalived ran and waited for).
        found[pid] = (name, sum(int(f) for f in fields[11:15]))
    return found


def host_ticks() -> int:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    # user nice system (idle iowait excluded) irq softirq steal
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7))


def memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in kB."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def label(name: str, pid: int) -> str:
    if name.startswith("python") or name.startswith("vragent"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return name
        text = b" ".join(argv).decode(errors="replace")
        for word in ("supervisord", "vragent-metadata", "daemon"):
            if word in text:
                return {"daemon": "agent"}.get(word, word)
    return name


def router_pids(router: PairRouter) -> list[int]:
    return router.pids()


def measure(routers: list[PairRouter], seconds: float) -> dict[str, dict[str, float]]:
    """Per router: CPU % of a core by process kind over ``seconds``, and memory."""
    before = {r.name + r.ns: cpu_ticks(router_pids(r)) for r in routers}
    host0 = host_ticks()
    t0 = time.monotonic()
    time.sleep(seconds)  # the measurement window itself
    elapsed = time.monotonic() - t0
    host = (host_ticks() - host0) / CLK / elapsed * 100
    out: dict[str, dict[str, float]] = {}
    for r in routers:
        key = r.name + r.ns
        after = cpu_ticks(router_pids(r))
        kinds: dict[str, float] = {}
        rss = pss = 0
        for pid, (name, ticks) in after.items():
            start = before[key].get(pid, (name, ticks))[1] if pid in before[key] else ticks
            kind = label(name, pid)
            kinds[kind] = kinds.get(kind, 0.0) + (ticks - start) / CLK / elapsed * 100
            m = memory(pid)
            rss += m[0]
            pss += m[1]
        kinds["total"] = sum(kinds.values())
        kinds["rss_mb"] = rss / 1024
        kinds["pss_mb"] = pss / 1024
        out[key] = kinds
    out["_host"] = {"total": host}
    return out


def churn(routers: list[PairRouter], seconds: float, every: float) -> int:
    """A command every ``every`` s on each router (spread out); how many were sent."""
    deadline = time.monotonic() + seconds
    sent = 0
    entries = {r.ns: False for r in routers}
    rng = random.Random(1)
    order = list(routers)
    while time.monotonic() < deadline:
        start = time.monotonic()
        rng.shuffle(order)
        for r in order:
            entries[r.ns] = not entries[r.ns]
            bag = {"type": "dhcpentry", "host_name": "churn", "mac_address": "02:00:0a:01:00:63",
                   "ipv4_address": "10.10.1.99", "default_gateway": "10.10.1.1",
                   "dns_addresses": "10.10.1.1", "default_entry": True,
                   "remove": not entries[r.ns]}
            # Over the agent's socket, as the CLI would send it, without a
            # process per command: 100 interpreters every few seconds would
            # be the load, not the routers.
            status, _ = Client(r.root / "run/vragent/api.sock").call(
                "POST", "/v1/apply", body=json.dumps(bag).encode())
            if status != 200:
                raise AssertionError(f"{r.ns}: the agent answered {status}")
            sent += 1
        spent = time.monotonic() - start
        if spent < every:
            time.sleep(every - spent)  # the command rate the phase is defined by
    return sent


def transitions(pairs: list[Pair]) -> int:
    return sum(r.transitions() for p in pairs for r in p.routers)


def summarise(title: str, data: dict[str, dict[str, float]]) -> dict[str, float]:
    routers = [v for k, v in data.items() if k != "_host"]
    kinds = sorted({k for v in routers for k in v} - {"total", "rss_mb", "pss_mb"})
    print(f"\n{title}: {len(routers)} routers, host CPU {data['_host']['total']:.1f} % "
          f"(of one core; 2 cores = 200 %)")
    print(f"  {'per router':<22} {'median':>8} {'max':>8}")
    for kind in [*kinds, "total"]:
        values = [v.get(kind, 0.0) for v in routers]
        print(f"  {kind + ' CPU %':<22} {statistics.median(values):>8.3f} {max(values):>8.3f}")
    for kind in ("rss_mb", "pss_mb"):
        values = [v[kind] for v in routers]
        print(f"  {kind:<22} {statistics.median(values):>8.1f} {max(values):>8.1f}")
    totals = [v["total"] for v in routers]
    return {"median": statistics.median(totals), "max": max(totals),
            "pss": statistics.median(v["pss_mb"] for v in routers),
            "rss": statistics.median(v["rss_mb"] for v in routers)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--idle", type=float, default=300.0)
    parser.add_argument("--churn", type=float, default=120.0)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--advert", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="2 pairs, 30 s idle, 20 s churn")
    args = parser.parse_args()
    if args.quick:
        args.pairs, args.idle, args.churn = 2, 30.0, 20.0
    base = Path(tempfile.mkdtemp(prefix="vragent-bench-density-"))
    pairs: list[Pair] = []
    print(f"baseline: the host idle for {min(args.idle, 30):g} s before any pair starts",
          flush=True)
    baseline = measure([], min(args.idle, 30))["_host"]["total"]
    print(f"  host CPU {baseline:.1f} % of one core", flush=True)
    try:
        t0 = time.monotonic()
        for i in range(args.pairs):
            pairs.append(lab_pair.build(base / f"p{i}", args.advert, prefix=f"vd{i}-"))

        def up(p: Pair) -> None:
            lab_pair.start(p, timeout=600)

        # A few at a time: 2 cores, and every agent imports its models at start.
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(up, pairs))
        print(f"{args.pairs} pairs up, each with one master, in "
              f"{time.monotonic() - t0:.0f} s", flush=True)
        for p in pairs:
            p.stop_receiver()
        routers = [r for p in pairs for r in p.routers]
        start_transitions = transitions(pairs)
        idle = measure(routers, args.idle)
        after_idle = transitions(pairs)
        s_idle = summarise(f"idle {args.idle:g} s", idle)
        print(f"  state changes while idle: {after_idle - start_transitions}", flush=True)
        t1 = time.monotonic()
        sent = churn(routers, args.churn, args.every)
        after_churn = transitions(pairs)
        print(f"\nchurn {time.monotonic() - t1:.0f} s: {sent} commands "
              f"(one per router every {args.every:g} s), state changes "
              f"{after_churn - after_idle}")
        masters = sum(1 for p in pairs if p.master() is not None)
        print(f"pairs with exactly one master at the end: {masters}/{len(pairs)}")
        print(f"\nsummary: {args.pairs} pairs, {2 * args.pairs} routers; idle CPU per router "
              f"median {s_idle['median']:.3f} % max {s_idle['max']:.3f} % of a core "
              f"(aim < 0.5 %: {'met' if s_idle['max'] < 0.5 else 'NOT met'}); host baseline "
              f"{baseline:.1f} %, host with the pairs idle {idle['_host']['total']:.1f} %; "
              f"memory per router PSS {s_idle['pss']:.0f} MB (RSS {s_idle['rss']:.0f} MB); "
              f"false elections {after_churn - start_transitions} "
              f"(aim 0: {'met' if after_churn == start_transitions else 'NOT met'})")
        print(json.dumps({"pairs": args.pairs, "idle": s_idle, "baseline": baseline,
                          "elections": after_churn - start_transitions}))
    finally:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda p: p.destroy(), pairs))
        shutil.rmtree(base, ignore_errors=True)
        sh(["true"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
