"""Services benchmark: DHCP entries at scale, against dnsmasq's own reload.

    python bench/bench_services.py [--entries N] [--rounds R] [--lb-rules L]
        [--lb-rounds R] [--lb-reloads K] [--vpn-peers P]
        [--skip-dhcp] [--skip-lb] [--skip-vpn]

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

Then the load balancer (haproxy in master-worker mode, bags built as
CloudStack builds them, vragent_lab.loadbalancer), on the same router:

d. L rules (default 200) in one ``loadbalancer`` bag, distinct public ports
   of 100.64.10.11, two backends each, applied on top of a one-rule
   configuration: from starting ``vragent apply`` until the running worker's
   admin socket (``show stat``) lists the L frontends (median of R rounds,
   back to one rule between rounds);
e. the baseline, in the same run and the same namespace: the file the agent
   rendered for (d), its paths moved aside, checked (``haproxy -c``) and
   reloaded by hand (SIGUSR2 to a master started with ``haproxy -W -db -f``)
   from the same one-rule start, until its socket lists the L frontends;
f. K reloads (default 10) under load: new connections from the outside host
   to a balanced rule; the p99 latency for a few seconds without reloads,
   then during K configuration changes applied through the agent (each one
   waited for on the admin socket).

Printed: (d), (e), the ratio d/e; the requests, the failed ones (aim: 0),
both p99 and their ratio; haproxy reloads and restarts of its master.
Then site-to-site VPN (strongSwan's charon, kernel-libipsec), on the same
router, against P peers (default 50) at 100.64.10.101 and on, all served
by ONE peer charon in the outside host's namespace (P addresses on its
interface, P connections, responder only, no routes installed): every
tunnel is a real IKE SA with a real CHILD_SA.

g. P site2sitevpn bags (one per peer, initiating) in one ``vragent apply``,
   charon not running before: from starting the apply until ``swanctl
   --list-conns`` on the router's vici socket lists the P connections (charon
   started, its start script's sync loaded them); then until all P tunnels
   are up;
h. the baseline: ``swanctl --load-all`` of the same rendered swanctl.conf
   into a fresh charon (same plugins, its own namespace), until it lists the
   P connections: charon's start and the load, and the load alone;
i. one peer's esp_policy changed among P, through the agent: until that
   peer's new CHILD_SA is installed with the new cipher; and how many OTHER
   peers' SAs were re-established (IKE SA unique ids and CHILD_SA SPIs
   compared over vici before and after, a second after it settles): aim 0;
j. the baseline of (i): the same done by hand on the router's charon
   (``swanctl --load-all`` of the edited file, ``--terminate`` of that IKE SA,
   ``--initiate`` of its child), then undone the same way.

Printed: (g), (h), the ratios g/h; (i), (j), i/j and the others re-established.
``--skip-dhcp`` / ``--skip-lb`` / ``--skip-vpn`` leave a part out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "compose"))

from vragent.features.dhcp.daemon import PID as DNSMASQ_PID  # noqa: E402
from vragent.settings import Settings  # noqa: E402
from vragent.system.haproxy import ask, parse_stat  # noqa: E402
from vragent_lab import loadbalancer as lb  # noqa: E402
from vragent_lab.ipsec import Peer  # noqa: E402
from vragent_lab.netns import VM1, in_ns, sample_vpc, wait_for  # noqa: E402
from vragent_lab.pair import agent_log, start_supervisord, supervisorctl  # noqa: E402

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
            return int(DNSMASQ_PID.of(Settings(root=self.root)).read_text())
        except (OSError, ValueError):
            return 0

    def agent_log(self) -> str:
        return agent_log(self.root)  # every line read as one JSON record

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


PEER = REPO / "tests/integration/http_peer.py"
LB_IP = "100.64.10.11"  # the sample VPC's second public IP
STATS_IP = "10.10.1.1"
VM2_LB = VM2_WIDE.split("/")[0]  # vm2's address on the widened tier
LB_BACKENDS = [(VM1, 80), (VM2_LB, 80)]
WEB = lb.Rule(LB_IP, 80, LB_BACKENDS)


def lb_command(*rules: lb.Rule) -> lb.Command:
    return lb.Command(rules=list(rules), stats=lb.Stats(STATS_IP))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        raise SystemExit("no requests in the window")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Haproxy:
    """What a haproxy answers on its admin socket, and the pools' frontends."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock

    def frontends(self) -> set[str]:
        try:
            rows = parse_stat(ask(self.sock, "show stat"))
        except OSError:
            return set()
        return {r["pxname"] for r in rows if r["svname"] == "FRONTEND"
                and r["pxname"] != "stats_on_guest"}

    def served(self, proxy: str) -> int:
        try:
            rows = parse_stat(ask(self.sock, "show stat"))
        except OSError:
            return 0
        return next((int(r["stot"] or 0) for r in rows
                     if (r["pxname"], r["svname"]) == (proxy, "FRONTEND")), 0)


class LoadBalancing:
    """The load-balancer half: rules at scale against haproxy's own reload,
    and reloads under load."""

    def __init__(self, r: Router, work: Path) -> None:
        self.r = r
        self.work = work
        from vragent.features.loadbalancer.daemon import SOCKET

        self.agent = Haproxy(r.root / "run/vragent" / SOCKET.name)
        self.procs: list[subprocess.Popen[str]] = []
        self.bags = 0

    def popen(self, ns: str, *argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()

    def apply(self, *rules: lb.Rule) -> float:
        self.bags += 1
        path = self.work / f"lb-{self.bags}.json"
        path.write_text(json.dumps(lb.bag(lb_command(*rules), router_ip=STATS_IP)))
        return self.r.vragent("apply", str(path))

    def master_pid(self) -> int:
        out = supervisorctl(self.r.root, "pid", "haproxy").strip()
        return int(out) if out.isdigit() else 0

    def reloads(self) -> int:
        return self.r.agent_log().count("reloading haproxy")

    def start(self) -> None:
        for vm in ("vm1", "vm2"):
            proc = self.popen(f"{self.r.lab.prefix}{vm}", sys.executable, str(PEER), "serve",
                              vm, "80")
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"the HTTP backend in {vm} did not start")
        self.apply(WEB)
        wait_for(lambda: self.agent.frontends() == {WEB.pool}, 30, "haproxy to run the rule")
        wait_for(lambda: self.get(f"http://{LB_IP}/").split(" ")[0] in ("vm1", "vm2"), 30,
                 "the balanced rule to answer")

    def get(self, url: str) -> str:
        return in_ns(f"{self.r.lab.prefix}out", ["curl", "-s", "-m", "3", url], check=False)

    def rules_at_scale(self, n: int, rounds: int) -> dict[str, Any]:
        """(d) and (e): n rules through the agent, then by hand, from one rule."""
        many = [lb.Rule(LB_IP, 10000 + i, LB_BACKENDS) for i in range(n)]
        want = {rule.pool for rule in many}
        agent: list[float] = []
        cli: list[float] = []
        reloads0, pid0 = self.reloads(), self.master_pid()
        for _ in range(rounds):
            self.apply(WEB)
            wait_for(lambda: self.agent.frontends() == {WEB.pool}, 60, "back to one rule")
            agent.append(timed_until(lambda: cli.append(self.apply(*many)),
                                     lambda: self.agent.frontends() >= want))
        # Not a no-op: the last rule forwards.
        last = f"http://{LB_IP}:{many[-1].port}/"
        wait_for(lambda: self.get(last).split(" ")[0] in ("vm1", "vm2"), 30,
                 f"{last} to answer")
        reloads = self.reloads() - reloads0
        restarts = int(self.master_pid() != pid0)
        config = self.r.root / "etc/vragent/haproxy.cfg"
        big = config.read_text()
        self.apply(WEB)
        wait_for(lambda: self.agent.frontends() == {WEB.pool}, 60, "back to one rule")
        small = config.read_text()
        base = self.by_hand(small, big, want, rounds)
        return {"agent": statistics.median(agent), "agent_max": max(agent),
                "cli": statistics.median(cli), "base": statistics.median(base),
                "base_max": max(base), "reloads": reloads, "restarts": restarts}

    def by_hand(self, small: str, big: str, want: set[str], rounds: int) -> list[float]:
        """haproxy -c and SIGUSR2 of the agent's files, their paths moved aside
        (same namespace: the binds share the ports, haproxy's SO_REUSEPORT)."""
        root, aside = str(self.r.root), str(self.work / "by-hand")
        small, big = small.replace(root, aside), big.replace(root, aside)
        for text in (small, big):
            for word in text.split():
                if word.startswith(aside):
                    Path(word).parent.mkdir(parents=True, exist_ok=True)
        if "stats socket" not in big or aside not in big:
            raise SystemExit("the rendered haproxy.cfg has no admin socket under the root")
        sock = next(Path(w) for line in big.splitlines() if "stats socket" in line
                    for w in line.split() if w.startswith(aside))
        mine = Haproxy(sock)
        cfg = self.work / "by-hand.cfg"
        cfg.write_text(small)
        master = self.popen(self.r.ns, "haproxy", "-W", "-db", "-f", str(cfg))
        times: list[float] = []
        try:
            wait_for(lambda: mine.frontends() == {WEB.pool}, 30, "haproxy by hand to run")

            def reload(text: str) -> None:
                cfg.write_text(text)
                subprocess.run(["ip", "netns", "exec", self.r.ns, "haproxy", "-c", "-q", "-f",
                                str(cfg)], check=True)
                master.send_signal(signal.SIGUSR2)

            for _ in range(rounds):
                reload(small)
                wait_for(lambda: mine.frontends() == {WEB.pool}, 60, "back to one rule by hand")
                times.append(timed_until(lambda: reload(big),
                                         lambda: mine.frontends() >= want))
            if master.poll() is not None:
                raise SystemExit("haproxy by hand exited")
        finally:
            master.send_signal(signal.SIGUSR1)  # its workers finish, then it exits
            try:
                master.wait(timeout=15)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()
        return times

    def reloads_under_load(self, count: int, quiet: float) -> dict[str, Any]:
        """(f): p99 without reloads, then during ``count`` changes through the agent."""
        stop, out = self.work / "load-stop", self.work / "load.json"
        reloads0, pid0 = self.reloads(), self.master_pid()
        served0 = self.agent.served(WEB.pool)
        proc = self.popen(f"{self.r.lab.prefix}out", sys.executable, str(PEER), "load",
                          f"http://{LB_IP}/", "4", str(stop), str(out))
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit("the load client did not start")
            wait_for(lambda: self.agent.served(WEB.pool) - served0 >= 100, 30, "load to flow")
            q0 = time.monotonic()
            time.sleep(quiet)  # the measuring window, not a wait for a condition
            q1 = r0 = time.monotonic()
            for i in range(count):
                # A real change each time: one more rule, on a new port.
                extra = lb.Rule(LB_IP, 8000 + i, [(VM1, 80)],
                                algorithm="leastconn" if i % 2 else "roundrobin")
                self.apply(WEB, extra)
                wait_for(lambda extra=extra: self.agent.frontends() == {WEB.pool, extra.pool},
                         60, f"change {i + 1} to be in force")
            r1 = time.monotonic()
            settled = self.agent.served(WEB.pool)
            wait_for(lambda: self.agent.served(WEB.pool) - settled >= 100, 30,
                     "load after the reloads")
        finally:
            stop.touch()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        result = json.loads(out.read_text())
        # (start, seconds[, answered]): the first two whatever the version
        samples = [(float(s[0]), float(s[1])) for s in result["samples"]]
        without = [d for t, d in samples if q0 <= t < q1]
        during = [d for t, d in samples if r0 <= t < r1]
        return {"requests": len(samples), "failures": sum(result["failures"].values()),
                "failure_kinds": result["failures"], "without": percentile(without, 0.99),
                "during": percentile(during, 0.99), "n_without": len(without),
                "n_during": len(during), "window": r1 - r0,
                "reloads": self.reloads() - reloads0,
                "restarts": int(self.master_pid() != pid0)}


def dhcp(r: Router, work: Path, args: argparse.Namespace) -> None:
    pid0 = r.dnsmasq_pid()
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
    restarts = log.count("restarting dnsmasq") + (r.dnsmasq_pid() != pid0)

    # Baseline: dnsmasq re-reading the same files, signalled by hand.
    names = r.root / "etc/vragent/dnsmasq.hosts"
    raw: list[float] = []
    for k in range(args.rounds):
        ip, name = f"10.12.14.{10 + k}", f"raw-{k}.vpc.lab"

        def hup(ip: str = ip, name: str = name) -> None:
            with names.open("a") as f:
                f.write(f"{ip} {name}\n")
            os.kill(r.dnsmasq_pid(), signal.SIGHUP)

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


def load_balancing(r: Router, work: Path, args: argparse.Namespace) -> None:
    part = LoadBalancing(r, work)
    try:
        part.start()
        scale = part.rules_at_scale(args.lb_rules, args.lb_rounds)
        under = part.reloads_under_load(args.lb_reloads, args.lb_quiet)
    finally:
        part.close()
    n, k = args.lb_rules, args.lb_reloads
    print(f"\nbench-services: load balancer, {n} rules on {LB_IP} (two backends each), "
          f"{args.lb_rounds} rounds; {k} reloads under load")
    print(f"  d. {n} rules in one bag, end to end (median): {scale['agent'] * 1000:8.0f} ms "
          f"(vragent apply itself {scale['cli'] * 1000:.0f} ms, "
          f"max {scale['agent_max'] * 1000:.0f} ms)")
    print(f"  e. haproxy -c + SIGUSR2 of the same file:   {scale['base'] * 1000:8.0f} ms "
          f"(median, max {scale['base_max'] * 1000:.0f} ms)")
    print(f"  ratio d/e = {scale['agent'] / scale['base']:.1f}   haproxy reloads: "
          f"{scale['reloads']:.0f}   master restarts: {scale['restarts']:.0f}   (aim: 0 restarts)")
    print(f"  f. {k} reloads under load: {under['requests']:.0f} requests, "
          f"failed {under['failures']:.0f} {under['failure_kinds'] or ''}  (aim: 0)")
    print(f"     p99 without reloads {under['without'] * 1000:.1f} ms "
          f"({under['n_without']:.0f} requests), during {k} reloads "
          f"{under['during'] * 1000:.1f} ms ({under['n_during']:.0f} requests in "
          f"{under['window']:.1f} s)")
    print(f"  ratio p99 during/without = {under['during'] / under['without']:.1f}   "
          f"haproxy reloads: {under['reloads']:.0f}   master restarts: {under['restarts']:.0f}")
    if under["failures"]:
        raise SystemExit(f"{under['failures']} requests failed during the reloads")


# -- site-to-site VPN --------------------------------------------------------------

VPN_PUBLIC = "100.64.10.10"  # the router's source-NAT IP
VPN_LOCAL = "10.10.1.0/24"  # tier 1
VPN_PSK = "bench-psk"
VPN_ESP = "aes128-sha1;modp1536"
VPN_ESP_NEW = "aes256-sha256;modp2048"
def vpn_peer(i: int) -> str:
    return f"100.64.10.{101 + i}"


def vpn_bag(i: int, esp: str = VPN_ESP) -> dict[str, Any]:
    """A site2sitevpn bag as Site2SiteVpnConfigItem sends it."""
    return {"type": "site2sitevpn", "local_public_ip": VPN_PUBLIC, "local_guest_cidr": VPN_LOCAL,
            "local_public_gateway": "100.64.10.1", "peer_gateway_ip": vpn_peer(i),
            "peer_guest_cidr_list": f"10.40.{i}.0/24", "esp_policy": esp,
            "ike_policy": "aes128-sha256;modp2048", "ipsec_psk": VPN_PSK,
            "ike_lifetime": 86400, "esp_lifetime": 3600, "create": True, "dpd": False,
            "passive": False, "encap": False, "split_connections": False,
            "ike_version": "ikev2"}


def vpn_conn(i: int) -> str:
    return f"vpn-{vpn_peer(i).replace('.', '-')}"


def peer_side(n: int) -> str:
    """The peers' side: one charon, n connections, each on its own address."""
    conns, secrets = [], []
    for i in range(n):
        conns.append(f"""  site{i} {{
    version = 2
    local_addrs = {vpn_peer(i)}
    remote_addrs = {VPN_PUBLIC}
    proposals = aes128-sha256-modp2048
    unique = replace
    local {{
      auth = psk
      id = {vpn_peer(i)}
    }}
    remote {{
      auth = psk
      id = {VPN_PUBLIC}
    }}
    children {{
      site{i} {{
        local_ts = 10.40.{i}.0/24
        remote_ts = {VPN_LOCAL}
        esp_proposals = aes128-sha1-modp1536,aes256-sha256-modp2048
      }}
    }}
  }}
""")
        secrets.append(f"""  ike-site{i} {{
    id-a = {vpn_peer(i)}
    id-b = {VPN_PUBLIC}
    secret = "{VPN_PSK}"
  }}
""")
    return "connections {\n" + "".join(conns) + "}\nsecrets {\n" + "".join(secrets) + "}\n"


def swanctl(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["swanctl", *args, "--uri", f"unix://{sock}"], capture_output=True,
                          text=True, check=False)


def conns_loaded(sock: Path) -> int:
    """Connections ``swanctl --list-conns`` lists (0 while charon does not answer)."""
    if not sock.exists():
        return 0
    out = swanctl(sock, "--list-conns")
    return sum(1 for line in out.stdout.splitlines() if line[:1].strip() and ": IKEv" in line)


def ike_sas(sock: Path) -> dict[str, tuple[str, frozenset[str], str]]:
    """Established IKE SAs with installed CHILD_SAs, by connection: (IKE unique
    id, inbound SPIs, encryption of the CHILD_SAs)."""
    from vragent.system import charon

    try:
        found = charon.sas(sock)
    except OSError:
        return {}
    out = {}
    for ike in found:
        kids = [c for c in ike.get("child-sas", {}).values() if c.get("state") == "INSTALLED"]
        if ike.get("state") == "ESTABLISHED" and kids:
            out[ike["name"]] = (str(ike["uniqueid"]), frozenset(str(c["spi-in"]) for c in kids),
                                ",".join(sorted(f"{c.get('encr-alg')}-{c.get('encr-keysize')}"
                                                for c in kids)))
    return out


class Vpn:
    def __init__(self, r: Router, work: Path, peers: int) -> None:
        self.r, self.work, self.n = r, work, peers
        self.sock = r.root / "run/vragent/charon.vici"
        self.swanctl_conf = r.root / "etc/vragent/swanctl.conf"
        self.out = f"{r.lab.prefix}out"
        self.peer = Peer(self.out, work / "vpn-peer", install_routes=False)
        self.base_ns = f"{r.lab.prefix}vpnbase"
        self.bags = 0

    def apply(self, *bags: dict[str, Any]) -> float:
        paths = []
        for bag in bags:
            self.bags += 1
            path = self.work / f"vpn-{self.bags}.json"
            path.write_text(json.dumps(bag))
            paths.append(str(path))
        return self.r.vragent("apply", *paths)

    def start(self) -> None:
        for i in range(self.n):
            in_ns(self.out, ["ip", "addr", "add", f"{vpn_peer(i)}/24", "dev", "eth0"])
            # kernel-libipsec needs an address of the peer's own side for its route.
            in_ns(self.out, ["ip", "addr", "add", f"10.40.{i}.1/24", "dev", "lo"])
        self.peer.start()
        path = self.peer.base / "swanctl.conf"
        path.write_text(peer_side(self.n))
        path.chmod(0o600)
        done = swanctl(self.peer.socket, "--load-all", "--noprompt", "--file", str(path))
        if done.returncode != 0:
            raise SystemExit(f"the peers' swanctl.conf: {done.stdout}{done.stderr}")

    def close(self) -> None:
        self.peer.stop()
        subprocess.run(["ip", "netns", "del", self.base_ns], capture_output=True, check=False)

    def all_up(self) -> bool:
        return len(ike_sas(self.sock)) == self.n

    def at_scale(self) -> dict[str, Any]:
        """(g) and (h)."""
        if conns_loaded(self.sock):
            raise SystemExit("charon runs already: (g) starts without it")
        cli: list[float] = []
        start = time.perf_counter()
        t_loaded = timed_until(lambda: cli.append(self.apply(*(vpn_bag(i)
                                                              for i in range(self.n)))),
                               lambda: conns_loaded(self.sock) >= self.n)
        wait_for(self.all_up, 120, f"all {self.n} tunnels up", interval=0.05)
        t_up = time.perf_counter() - start
        # The baseline: the same file into a fresh charon of its own namespace.
        subprocess.run(["ip", "netns", "add", self.base_ns], check=True)
        in_ns(self.base_ns, ["ip", "link", "set", "lo", "up"])
        conf = self.work / "vpn-baseline-swanctl.conf"
        conf.write_text(self.swanctl_conf.read_text())
        conf.chmod(0o600)
        with_start, load_only = [], []
        for k in range(3):
            fresh = Peer(self.base_ns, self.work / f"vpn-baseline-{k}")

            def load(fresh: Peer = fresh) -> None:
                wait_for(fresh.socket.exists, 10, "the baseline charon", interval=0.002)
                done = swanctl(fresh.socket, "--load-all", "--noprompt", "--file", str(conf))
                if done.returncode != 0:
                    raise SystemExit(f"baseline load: {done.stdout}{done.stderr}")

            try:
                t0 = time.perf_counter()
                fresh.start(wait=False)
                wait_for(lambda fresh=fresh: conns_loaded(fresh.socket) == 0 and
                         fresh.socket.exists() and swanctl(fresh.socket, "--stats")
                         .returncode == 0, 10, "the baseline charon to answer", interval=0.002)
                load_only.append(timed_until(load, lambda fresh=fresh: conns_loaded(
                    fresh.socket) >= self.n))
                with_start.append(time.perf_counter() - t0)
            finally:
                fresh.stop()
        return {"loaded": t_loaded, "cli": cli[0], "up": t_up,
                "base_start": statistics.median(with_start),
                "base_load": statistics.median(load_only)}

    def others_redone(self, before: dict[str, Any], after: dict[str, Any],
                      changed: str) -> list[str]:
        return sorted(n for n, v in before.items() if n != changed and
                      (after.get(n) is None or after[n][:2] != v[:2]))

    def one_changed(self, k: int) -> dict[str, Any]:
        """(j) then (i): one peer's ESP proposal changed, by hand and through the agent."""
        name = vpn_conn(k)
        # (j) by hand: the agent's file edited for peer j, loaded; its SA redone; undone.
        j = (k + 1) % self.n
        hand_name = vpn_conn(j)
        original = self.swanctl_conf.read_text()
        marker = f"\t{hand_name} {{"
        head, _, tail = original.partition(marker)
        edited_conf = head + marker + tail.replace("esp_proposals = aes128-sha1-modp1536",
                                                   "esp_proposals = aes256-sha256-modp2048", 1)
        aside = self.work / "vpn-by-hand.conf"

        def by_hand(text: str) -> None:
            aside.write_text(text)
            aside.chmod(0o600)
            for args in (("--load-all", "--noprompt", "--file", str(aside)),
                         ("--terminate", "--ike", hand_name, "--timeout", "2"),
                         ("--initiate", "--child", hand_name, "--timeout", "-1")):
                done = swanctl(self.sock, *args)
                if done.returncode != 0 and args[0] == "--load-all":
                    raise SystemExit(f"by hand: {done.stdout}{done.stderr}")

        def redone(conn: str, was: tuple[str, ...], cipher: str) -> Callable[[], bool]:
            def check() -> bool:
                now = ike_sas(self.sock).get(conn)
                return now is not None and now[0] != was[0] and cipher in now[2]
            return check

        before = ike_sas(self.sock)
        t_hand = timed_until(lambda: by_hand(edited_conf),
                             redone(hand_name, before[hand_name], "AES_CBC-256"))
        time.sleep(1.0)  # a window in which a re-establishment the change caused would show
        hand_others = self.others_redone(before, ike_sas(self.sock), hand_name)
        mid = ike_sas(self.sock)
        by_hand(original)
        wait_for(redone(hand_name, mid[hand_name], "AES_CBC-128"), 30, "undone by hand")
        wait_for(self.all_up, 30, "all tunnels up again")
        # (i) through the agent.
        before = ike_sas(self.sock)
        cli: list[float] = []
        t_agent = timed_until(lambda: cli.append(self.apply(vpn_bag(k, esp=VPN_ESP_NEW))),
                              redone(name, before[name], "AES_CBC-256"))
        time.sleep(1.0)  # a window in which a re-establishment the change caused would show
        after = ike_sas(self.sock)
        return {"agent": t_agent, "cli": cli[0], "hand": t_hand,
                "others": self.others_redone(before, after, name),
                "hand_others": hand_others, "up": len(after)}


def vpn(r: Router, work: Path, args: argparse.Namespace) -> None:
    part = Vpn(r, work, args.vpn_peers)
    try:
        part.start()
        scale = part.at_scale()
        change = part.one_changed(args.vpn_peers // 2)
    finally:
        part.close()
    n = args.vpn_peers
    print(f"\nbench-services: site-to-site VPN, {n} peers (IKEv2, PSK, one CHILD_SA each; "
          f"one peer charon serving all {n} addresses), kernel-libipsec")
    print(f"  g. {n} peers in one apply, charon not running, until --list-conns lists "
          f"{n}: {scale['loaded'] * 1000:8.0f} ms (vragent apply itself "
          f"{scale['cli'] * 1000:.0f} ms); all {n} tunnels up after "
          f"{scale['up'] * 1000:.0f} ms")
    print(f"  h. fresh charon + swanctl --load-all of the same file: "
          f"{scale['base_start'] * 1000:8.0f} ms (median of 3; the load alone "
          f"{scale['base_load'] * 1000:.0f} ms)")
    print(f"  ratio g/h = {scale['loaded'] / scale['base_start']:.1f}   "
          f"g/h(load alone) = {scale['loaded'] / scale['base_load']:.1f}")
    print(f"  i. one peer's esp_policy changed among {n}, until its new CHILD_SA is "
          f"installed: {change['agent'] * 1000:8.0f} ms (vragent apply itself "
          f"{change['cli'] * 1000:.0f} ms); other peers' SAs re-established: "
          f"{len(change['others'])} {change['others'] or ''} (aim: 0); tunnels up "
          f"{change['up']}/{n}")
    print(f"  j. by hand (swanctl --load-all, --terminate, --initiate): "
          f"{change['hand'] * 1000:8.0f} ms; others re-established: "
          f"{len(change['hand_others'])}")
    print(f"  ratio i/j = {change['agent'] / change['hand']:.1f}")
    if change["others"]:
        raise SystemExit(f"{len(change['others'])} other peers' SAs were re-established")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", type=Path, help="write a cProfile of one more entry here")
    parser.add_argument("--lb-rules", type=int, default=200)
    parser.add_argument("--lb-rounds", type=int, default=5)
    parser.add_argument("--lb-reloads", type=int, default=10)
    parser.add_argument("--lb-quiet", type=float, default=3.0,
                        help="seconds of load without reloads, for the reference p99")
    parser.add_argument("--skip-dhcp", action="store_true")
    parser.add_argument("--skip-lb", action="store_true")
    parser.add_argument("--vpn-peers", type=int, default=50)
    parser.add_argument("--skip-vpn", action="store_true")
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
        wait_for(lambda: r.dnsmasq_pid() > 0 and r.resolves("data-server", "10.12.0.1"), 30,
                 "dnsmasq to answer")
        if not args.skip_dhcp:
            dhcp(r, work, args)
        if not args.skip_lb:
            load_balancing(r, work, args)
        if not args.skip_vpn:
            vpn(r, work, args)
        return 0
    finally:
        r.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
