"""Commands through the resident agent's API: one change among 12,000 rules,
a cold load of them, a burst of commands on each router of a pair, memory.

    python bench/bench_api.py [--quick]

Runs as root (network namespaces). Routers run as appliances do
(supervisord, the resident agent); commands go to the agent's HTTP API over
its unix socket, timed from the request to its answer (the agent answers once
the command is committed and applied, nft included). Each figure is printed
next to a baseline measured in the same run:

d. a single-rule change (the whole 10,000-rule ACL re-sent, one rule's port
   changed, as CloudStack sends it) on top of 10,000 ACL rules and 2,000 port
   forwards; baseline: plain ``nft -f`` of the changed chains only (the same
   delta script the agent's change amounts to), loaded in an empty namespace;
e. cold apply of the same ACL and forwards in one request (the table held
   neither); baseline: plain ``nft -f`` of the whole rendered table;
f. a burst of 100 back-to-back commands (DHCP entries and ACL changes) on
   each router of a redundant pair at once: all acknowledged, both routers
   converged (each one's store holds all 100, and ``diff`` finds nothing left
   to do), and no pair state change; baseline: the same 100 bags as one batch;
g. the agent's resident memory holding the ruleset, next to its memory before.

Timings are reported, never asserted: exit 0 unless something functionally
failed (an answer other than applied, a rule missing from the live table,
a pair state change, routers not converged).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench_apply import (
    BenchFailure,
    acl_bag,
    acl_rules,
    changed_rules,
    count_acl,
    count_dnat,
    delta_script,
    forward_bag,
    parse_chains,
)
from vragent.api.client import Client
from vragent.daemon_state import digests, read_loaded
from vragent.log import parse_lines
from vragent.settings import Settings
from vragent.supervised import registry
from vragent_lab import netns as labnet
from vragent_lab import pair as lab_pair
from vragent_lab.netns import in_ns, sample_vpc, sh, wait_for
from vragent_lab.pair import start_supervisord

SAMPLE = Path(labnet.__file__).resolve().with_name("sample")
SETUP_BAGS = ["ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json"]
AIM_CHANGE_S = 0.050
AIM_COLD_RATIO = 1.5
AIM_BURST_S = 3.0
AIM_RSS_MB = 80.0


def ms(s: float) -> str:
    return f"{s * 1000:8.1f}"


def post(api: Client, path: str, doc: Any) -> tuple[float, dict[str, Any]]:
    data = json.dumps(doc).encode()
    t = time.perf_counter()
    status, body = api.json("POST", path, body=data)
    wall = time.perf_counter() - t
    if status != 200:
        raise BenchFailure(f"POST {path}: {status} {body}")
    return wall, body


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def agent_pid(root: Path) -> int:
    return int((root / "run/vragent/agent.pid").read_text())


def raw_load(ns: str, script: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(script)],
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise BenchFailure(f"raw nft -f {script.name}: {proc.stderr[:2000]}")
    return wall


def drop_table(ns: str) -> None:
    in_ns(ns, ["nft", "delete", "table", "inet", "vragent"], check=False)


def listing(ns: str) -> dict[str, list[str]]:
    return parse_chains(in_ns(ns, ["nft", "-s", "list", "table", "inet", "vragent"]))


def render(api: Client) -> str:
    status, text = api.call("GET", "/v1/render/netfilter")
    if status != 200:
        raise BenchFailure(f"render: {status}")
    return text.decode()


# -- one router: d, e, g ------------------------------------------------------


def single_router(tmp: Path, n_acl: int, n_fwd: int, reps: int) -> dict[str, Any]:
    lab = sample_vpc(f"vb{os.getpid() % 10000}-")
    raw_ns = lab.ns("raw")
    root = tmp / "r"
    (root / "var/cache/cloud").mkdir(parents=True)
    (root / "var/cache/cloud/cmd_line.json").write_text((SAMPLE / "cmd_line.json").read_text())
    sup = None
    try:
        sup = start_supervisord(lab.ns("r"), root)
        api = Client(root / "run/vragent/api.sock")
        wait_for(lambda: (root / "run/vragent/booted").exists(), 30, "the agent to boot")
        for name in SETUP_BAGS:
            post(api, "/v1/apply", json.loads((SAMPLE / name).read_text()))
        base_rev = int(api.json("GET", "/v1/revisions")[1][-1]["revision"])
        pid = agent_pid(root)
        rss_before = rss_mb(pid)

        rules = acl_rules(n_acl)
        batch = [acl_bag(rules), forward_bag(n_fwd)]
        cold: list[float] = []
        for rep in range(reps):
            if rep:
                post(api, "/v1/rollback", {"revision": base_rev})  # not timed
            wall, _ = post(api, "/v1/apply", batch)
            cold.append(wall)
            chains = listing(lab.ns("r"))
            if count_acl(chains) != n_acl or count_dnat(chains) != n_fwd:
                raise BenchFailure(f"cold {rep + 1}: {count_acl(chains)} ACL rules and "
                                   f"{count_dnat(chains)} forwards live")
        full = render(api)
        script = tmp / "full.nft"
        script.write_text(full)
        raw_cold = []
        for _ in range(reps):
            drop_table(raw_ns)
            raw_cold.append(raw_load(raw_ns, script))

        changes: list[float] = []
        raw_delta: list[float] = []
        before = full
        for step in range(reps * 2 + 1):
            rules, port = changed_rules(rules, step)
            wall, body = post(api, "/v1/bags/networkacl", acl_bag(rules))
            changes.append(wall)
            if not any(c.startswith("netfilter: replace") for c in body["changes"]):
                raise BenchFailure(f"change {step + 1}: {body['changes']}")
            live = listing(lab.ns("r"))
            if not any(f"dport {port} " in r for n, rs in live.items()
                       if n.startswith("acl_in_eth2") for r in rs):
                raise BenchFailure(f"change {step + 1}: dport {port} not live")
            after = render(api)
            pre, delta = tmp / "pre.nft", tmp / "delta.nft"
            pre.write_text(before)
            delta.write_text(delta_script(before, after)[0])
            drop_table(raw_ns)
            raw_load(raw_ns, pre)
            raw_delta.append(raw_load(raw_ns, delta))
            before = after
        rss_after = rss_mb(pid)
        return {"cold": cold, "raw_cold": raw_cold, "change": changes, "raw_delta": raw_delta,
                "rss_before": rss_before, "rss_after": rss_after,
                "rules": sum(len(r) for r in parse_chains(full).values())}
    finally:
        if sup is not None:
            for p in sh(["ip", "netns", "pids", lab.ns("r")], check=False).split():
                try:
                    os.kill(int(p), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sup.wait()
        lab.destroy()


# -- a pair: f ----------------------------------------------------------------


def burst_bags(router: lab_pair.PairRouter, n: int, offset: int) -> list[dict[str, Any]]:
    acl = router.sample("network_acl_tier1.json")
    bags: list[dict[str, Any]] = []
    for i in range(n):
        if i % 2:
            doc = json.loads(json.dumps(acl))
            doc["ingress_rules"][0]["first_port"] = doc["ingress_rules"][0]["last_port"] = \
                2000 + offset + i
            bags.append(doc)
        else:
            bags.append({"type": "dhcpentry", "host_name": f"b{offset + i}",
                         "mac_address": f"02:00:0c:00:{(offset + i) >> 8:02x}:"
                                        f"{(offset + i) & 255:02x}",
                         "ipv4_address": f"10.10.1.{20 + (offset + i) % 200}",
                         "default_gateway": "10.10.1.1", "dns_addresses": "10.10.1.1",
                         "default_entry": True, "remove": False})
    return bags


def daemons_loaded(root: Path) -> bool:
    """Every daemon the agent runs has loaded the files it has now."""
    settings = Settings(root=root)
    for daemon in registry(settings):
        loaded = read_loaded(settings.daemon_loaded(daemon.name))
        if loaded and loaded != digests(daemon):
            return False
    return True


def command_durations(root: Path) -> list[float]:
    """The agent's own time per command (ms), from its log. Every line is read
    and must be one JSON record (vragent/log.py): a line that is not stops the
    bench rather than being skipped (text after the last newline is a record
    the running agent is still writing, not a line yet)."""
    records = parse_lines((root / "var/log/vragent/agent.log").read_text(), unfinished_ok=True)
    return [float(r["duration_ms"]) for r in records if r.get("event") == "command"]


def pair_burst(tmp: Path, n: int) -> dict[str, Any]:
    pair = lab_pair.build(tmp / "pair", 1.0)
    try:
        lab_pair.start(pair, timeout=60)
        for r in pair.routers:
            wait_for(r.config_loaded, 30, "keepalived to load its configuration")
        apis = {r.name: Client(r.root / "run/vragent/api.sock") for r in pair.routers}
        transitions = {r.name: r.transitions() for r in pair.routers}
        statuses = pair.statuses()
        results: dict[str, Any] = {}

        def send(r: lab_pair.PairRouter, offset: int, out: dict[str, Any]) -> None:
            walls = []
            for doc in burst_bags(r, n, offset):
                walls.append(post(apis[r.name], "/v1/apply", doc)[0])
            out["walls"] = walls
            out["done"] = time.perf_counter()

        outs: dict[str, dict[str, Any]] = {r.name: {} for r in pair.routers}
        threads = [threading.Thread(target=send, args=(r, 0, outs[r.name]))
                   for r in pair.routers]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        acked = max(o["done"] for o in outs.values()) - start
        for o in outs.values():
            if len(o.get("walls", [])) != n:
                raise BenchFailure("a burst was not acknowledged in full")
        # Converged: every command is applied when it is answered; what can lag
        # is a daemon's reload (keepalived's are spaced 1.5 adverts apart):
        # until each running daemon has loaded the files it has now.
        wait_for(lambda: all(daemons_loaded(r.root) for r in pair.routers), 30,
                 "the daemons to load the last files", interval=0.01)
        converged = time.perf_counter() - start
        for r in pair.routers:  # and nothing is left to do (not timed)
            diff = r.vragent("diff").stdout.strip()
            if not diff.endswith("system already matches"):
                raise BenchFailure(f"{r.name} not converged after the burst: {diff}")
        agent_ms = [d for r in pair.routers for d in command_durations(r.root)[-n:]]
        # Baseline: the same 100 bags as one batch, on each router at once.
        base: dict[str, float] = {}

        def batch(r: lab_pair.PairRouter) -> None:
            base[r.name] = post(apis[r.name], "/v1/apply", burst_bags(r, n, 1000))[0]

        threads = [threading.Thread(target=batch, args=(r,)) for r in pair.routers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        changed = {r.name: r.transitions() - transitions[r.name] for r in pair.routers}
        results.update(acked=acked, converged=converged, batch=max(base.values()),
                       per_command=statistics.median([w for o in outs.values()
                                                      for w in o["walls"]]),
                       agent_ms=statistics.median(agent_ms),
                       state_changes=sum(changed.values()),
                       statuses=f"{statuses} -> {pair.statuses()}")
        return results
    finally:
        pair.destroy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_api: needs root (network namespaces)", file=sys.stderr)
        return 2
    n_acl, n_fwd, reps, burst = (1000, 200, 2, 20) if args.quick else (10000, 2000, 3, 100)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = Path(tempfile.mkdtemp(prefix="vragent-bench-api-"))
    try:
        one = single_router(tmp, n_acl, n_fwd, reps)
        two = pair_burst(tmp, burst)
    except BenchFailure as exc:
        print(f"bench_api: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        subprocess.run(["rm", "-rf", str(tmp)], check=False)

    med = statistics.median
    print()
    print(f"vragent API benchmark ({n_acl} ACL rules + {n_fwd} forwards = {one['rules']} "
          f"rules in the table; times in ms, medians)")
    print()
    print(f"{'':<58} {'API':>8} {'baseline':>8} {'ratio':>6}")
    print(f"{'d. single-rule change, end to end (raw: nft -f of the delta)':<58} "
          f"{ms(med(one['change']))} {ms(med(one['raw_delta']))} "
          f"{med(one['change']) / med(one['raw_delta']):6.2f}")
    print(f"{'   min / max':<58} {ms(min(one['change']))} {ms(max(one['change']))}")
    print(f"{'e. cold apply (raw: nft -f of the whole table)':<58} {ms(med(one['cold']))} "
          f"{ms(med(one['raw_cold']))} {med(one['cold']) / med(one['raw_cold']):6.2f}")
    print(f"{'   first (nothing cached)':<58} {ms(one['cold'][0])}")
    print(f"{'f. burst of ' + str(burst) + ' commands on each router, all acknowledged':<58} "
          f"{ms(two['acked'])} {ms(two['batch'])} {two['acked'] / two['batch']:6.2f}")
    print(f"{'   ... and both routers converged':<58} {ms(two['converged'])}")
    print(f"{'   one command in the burst (median)':<58} {ms(two['per_command'])}")
    print(f"{'   ... of which the agent applying it (median, its log)':<58} "
          f"{two['agent_ms']:8.1f}")
    print(f"{'   pair state changes':<58} {two['state_changes']:>8}   ({two['statuses']})")
    print(f"{'g. agent RSS with the ruleset (MB; baseline: before it)':<58} "
          f"{one['rss_after']:8.1f} {one['rss_before']:8.1f} "
          f"{one['rss_after'] / one['rss_before']:6.2f}")
    print()
    print("aims (informational, not asserted):")
    checks = [
        (f"single-rule change < {AIM_CHANGE_S * 1000:.0f} ms", med(one["change"]) < AIM_CHANGE_S,
         f"{med(one['change']) * 1000:.1f} ms"),
        (f"cold apply <= {AIM_COLD_RATIO} x raw nft",
         med(one["cold"]) <= AIM_COLD_RATIO * med(one["raw_cold"]),
         f"{med(one['cold']) / med(one['raw_cold']):.2f} x"),
        (f"burst acknowledged and converged < {AIM_BURST_S:.0f} s, 0 state changes",
         two["converged"] < AIM_BURST_S and two["state_changes"] == 0,
         f"{two['converged']:.2f} s, {two['state_changes']} changes"),
        (f"agent RSS < {AIM_RSS_MB:.0f} MB", one["rss_after"] < AIM_RSS_MB,
         f"{one['rss_after']:.1f} MB"),
    ]
    for what, ok, value in checks:
        print(f"  {what}: {value} -> {'met' if ok else 'NOT met'}")
    if two["state_changes"]:
        print("bench_api: FAILED: the pair changed state during the burst", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
