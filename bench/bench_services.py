"""Services benchmark: DHCP entries at scale, against dnsmasq's own reload.

    python bench/bench_services.py [--entries N] [--rounds R]

Runs as root (network namespaces). The sample VPC router runs as an appliance
does (supervisord, the resident agent, dnsmasq), with both tiers configured.

a. N DHCP entries (default 2,000; CloudStack routers with about 600 have hit
   665 s timeouts) in one aggregated batch (CloudStack's VR_CFG format), end
   to end: from starting ``vragent apply`` until the router's DNS answers for
   the last entry's name, so the agent's coalesced reload is included;
b. one more entry on top, the same way (median of R rounds);
c. the baseline, measured in the same run on the same router: dnsmasq itself
   re-reading the same files (a name appended to its hosts file, SIGHUP sent
   by hand, until it answers for that name; median of R rounds).

Printed: the times, the ratios (a)/(c) and (b)/(c), and the dnsmasq reloads
and restarts the agent did, counted from its log and dnsmasq's pid. After (a)
every entry is checked to be in dnsmasq's hosts file, and a sample of names
is resolved, so a no-op cannot pass for a fast apply.
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
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "compose"))

from vragent.features.dhcp.daemon import PID as DNSMASQ_PID  # noqa: E402
from vragent_lab.netns import in_ns, sample_vpc, wait_for  # noqa: E402
from vragent_lab.pair import start_supervisord  # noqa: E402

SAMPLE = REPO / "compose/vragent_lab/sample"
BAGS = ["ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json",
        "network_acl_tier1.json", "network_acl_tier2.json"]
# Tier 2 widened to a /20 so that every entry is on a tier of this router.
WIDE = "10.12.0.0/20"
WIDE_TIER = {"add": True, "mac_address": "02:00:0a:00:00:03", "device": "eth3",
             "router_guest_ip": "10.12.0.1", "router_guest_gateway": "10.12.0.1",
             "router_guest_netmask": "255.255.240.0", "cidr": "20", "dns": "10.12.0.1",
             "domain_name": "vpc.lab", "type": "guestnetwork"}
VM2_WIDE = "10.12.0.9/20"


def entry(i: int) -> dict[str, object]:
    host = i + 16  # in 10.12.0.0/20
    return {"type": "dhcpentry", "host_name": f"vm-{i:05d}",
            "mac_address": f"02:01:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01",
            "ipv4_address": f"10.12.{host >> 8}.{host & 255}", "default_gateway": "10.12.0.1",
            "default_entry": True, "remove": False}


def batch(entries: list[dict[str, object]]) -> str:
    parts = []
    for n, e in enumerate(entries):
        name = f"vm_dhcp_entry.json.{n}"
        parts += ["<file>", f"/var/cache/cloud/{name}", json.dumps(e), "</file>",
                  "<script>", f"/opt/cloud/bin/update_config.py {name}", "</script>"]
    return "\n".join(parts) + "\n"


class Router:
    def __init__(self, prefix: str, root: Path) -> None:
        self.lab = sample_vpc(prefix)
        self.ns = f"{prefix}r"
        self.root = root
        self.vm2 = f"{prefix}vm2"

    def vragent(self, *args: str) -> float:
        start = time.perf_counter()
        proc = subprocess.run(["ip", "netns", "exec", self.ns, sys.executable, "-m", "vragent",
                               "--root", str(self.root), *args],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"vragent {args[0]}: exit {proc.returncode}\n{proc.stderr}")
        return time.perf_counter() - start

    def start(self) -> None:
        (self.root / "var/cache/cloud").mkdir(parents=True)
        (self.root / "var/cache/cloud/cmd_line.json").write_text(
            (SAMPLE / "cmd_line.json").read_text())
        start_supervisord(self.ns, self.root)
        wait_for(lambda: (self.root / "run/vragent/booted").exists(), 30, "the agent to boot")

    def resolves(self, name: str, ip: str) -> bool:
        out = in_ns(self.vm2, ["dig", "@10.12.0.1", name, "+short", "+time=1", "+tries=1"],
                    check=False)
        return out.strip() == ip

    def dnsmasq_pid(self) -> int:
        try:
            return int((self.root / "run/vragent/dnsmasq.pid").read_text())
        except (OSError, ValueError):
            return 0

    def agent_log(self) -> str:
        return (self.root / "var/log/vragent/agent.log").read_text()

    def destroy(self) -> None:
        out = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True,
                             check=False).stdout
        for pid in out.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.lab.destroy()


def timed_until(action: Callable[[], object], done: Callable[[], bool],
                timeout: float = 120.0) -> float:
    start = time.perf_counter()
    action()
    deadline = start + timeout
    while not done():
        if time.perf_counter() > deadline:
            raise SystemExit("timed out waiting for the result")
        time.sleep(0.005)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", type=Path, help="write a cProfile of one more entry here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark builds network namespaces")
    work = Path(tempfile.mkdtemp(prefix="vragent-bench-services-"))
    prefix = f"bs{os.getpid() % 10000}-"
    r = Router(prefix, work / "root")
    try:
        r.start()
        wide = work / "wide_tier.json"
        wide.write_text(json.dumps(WIDE_TIER))
        r.vragent("apply", *[str(SAMPLE / b) for b in BAGS], str(wide))
        in_ns(r.vm2, ["ip", "addr", "add", VM2_WIDE, "dev", "eth0"])
        wait_for(lambda: DNSMASQ_PID.of(r)() > 0 and r.resolves("data-server", "10.12.0.1"), 30,
                 "dnsmasq to answer")
        pid0 = DNSMASQ_PID.of(r)()
        log0 = r.agent_log()

        n = args.entries
        entries = [entry(i) for i in range(n)]
        path = work / "dhcp-batch.cfg"
        path.write_text(batch(entries))
        last = entries[-1]
        cli: list[float] = []
        t_bulk = timed_until(lambda: cli.append(r.vragent("apply", str(path))),
                             lambda: r.resolves(f"{last['host_name']}.vpc.lab",
                                                str(last["ipv4_address"])))
        hosts = (r.root / "etc/vragent/dnsmasq.dhcp-hosts").read_text()
        served = entries
        missing = [e for e in served if f"{e['mac_address']},{e['ipv4_address']}," not in hosts]
        if missing:
            raise SystemExit(f"{len(missing)} entries missing from dnsmasq's hosts file")
        for e in served[:: max(1, len(served) // 10)]:
            if not r.resolves(f"{e['host_name']}.vpc.lab", str(e["ipv4_address"])):
                raise SystemExit(f"{e['host_name']} does not resolve")

        one: list[float] = []
        one_cli: list[float] = []
        for k in range(args.rounds):
            e = entry(100000 + k)
            e.update(ipv4_address=f"10.12.15.{10 + k}", host_name=f"extra-{k}")
            bag = work / f"one-{k}.json"
            bag.write_text(json.dumps(e))
            one.append(timed_until(lambda b=bag: one_cli.append(r.vragent("apply", str(b))),
                                   lambda e=e: r.resolves(f"{e['host_name']}.vpc.lab",
                                                          str(e["ipv4_address"]))))
        if args.profile:
            e = entry(200000)
            e.update(ipv4_address="10.12.15.200", host_name="profiled")
            bag = work / "profiled.json"
            bag.write_text(json.dumps(e))
            subprocess.run(["ip", "netns", "exec", r.ns, sys.executable, "-m", "cProfile", "-o",
                            str(args.profile), "-m", "vragent", "--root", str(r.root), "apply",
                            str(bag)], check=True, capture_output=True)
        log = r.agent_log()[len(log0):]
        reloads = log.count("reloading dnsmasq")
        restarts = log.count("restarting dnsmasq") + (DNSMASQ_PID.of(r)() != pid0)

        # Baseline: dnsmasq re-reading the same files, signalled by hand.
        names = r.root / "etc/vragent/dnsmasq.hosts"
        raw: list[float] = []
        for k in range(args.rounds):
            ip, name = f"10.12.14.{10 + k}", f"raw-{k}.vpc.lab"

            def hup(ip: str = ip, name: str = name) -> None:
                with names.open("a") as f:
                    f.write(f"{ip} {name}\n")
                os.kill(DNSMASQ_PID.of(r)(), signal.SIGHUP)

            raw.append(timed_until(hup, lambda ip=ip, name=name: r.resolves(name, ip)))
        base = statistics.median(raw)
        m_one = statistics.median(one)
        print(f"\nbench-services: {n} DHCP entries on tier {WIDE}, "
              f"{args.rounds} rounds for single changes")
        print(f"  a. {n} entries in one batch, end to end:   {t_bulk * 1000:8.0f} ms "
              f"(vragent apply itself {cli[0] * 1000:.0f} ms)   aim < 2000 ms")
        print(f"  b. one more entry, end to end (median):    {m_one * 1000:8.0f} ms "
              f"(vragent apply itself {statistics.median(one_cli) * 1000:.0f} ms, "
              f"max {max(one) * 1000:.0f} ms)   aim < 200 ms")
        print(f"  c. dnsmasq's own reload of the same files: {base * 1000:8.1f} ms (median)")
        print(f"  ratio a/c = {t_bulk / base:.1f}   ratio b/c = {m_one / base:.1f}")
        print(f"  dnsmasq reloads: {reloads}   restarts: {restarts}   (aim: 0 restarts)")
        return 0
    finally:
        r.destroy()


if __name__ == "__main__":
    sys.exit(main())
