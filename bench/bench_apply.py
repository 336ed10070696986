"""Apply benchmark: how long ``vragent apply`` takes for big rulesets, against raw nft.

    python bench/bench_apply.py [--quick] [--profile DIR]

Runs as root (it builds network namespaces). Uses the Python that runs it for
the agent, so run it with the interpreter vragent is installed in.

Scenarios, on the sample VPC lab (router booted, public IPs 100.64.10.10-12,
tiers eth2/eth3):

a. cold apply of a network_acl bag for eth2 with N_A ingress rules;
b. cold apply of N_B ACL rules plus F port forwards on 100.64.10.11, one
   ``vragent apply`` of both bags;
c. on top of (b), the same ACL bag with one rule's port changed, repeated
   (each change on top of the previous one), median reported.

"Cold": the table is deleted from the router namespace, the applied-netfilter
record removed, and the agent gets a fresh copy of the state directory as it
was before the scenario's bags (so the store holds none of their rules).

For each scenario the agent's whole process is timed (``ip netns exec`` +
interpreter start + apply), and the same final ruleset (``vragent render
netfilter``) is loaded with plain ``nft -f`` in an empty namespace (also via
``ip netns exec``); the ratio agent/raw is what the agent costs on top of
nft. For (c) the raw references are the full table and an nft script that
flushes and refills only the chains that changed (what the agent's delta
does). After every agent run the live table is listed and its rules counted,
and compared with what raw nft produced from the rendered script, so a no-op
cannot pass for a fast apply.

Timings are reported, never asserted: exit status 0 unless something
functionally failed (agent error, wrong rule count, nft rejected a script).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vragent_lab import netns as labnet
from vragent_lab.netns import Lab, in_ns, sample_vpc

PY = sys.executable
GNU_TIME = "/usr/bin/time"
PROBE = str(Path(__file__).resolve().with_name("agent_probe.py"))
SAMPLE = Path(labnet.__file__).resolve().with_name("sample")
SETUP_BAGS = ["ip_associations.json", "guest_network_tier1.json", "guest_network_tier2.json"]
TABLE = "vragent"
FORWARD_IP = "100.64.10.11"

AIM_RATIO = 2.0
AIM_CHANGE_S = 0.100


class BenchFailure(Exception):
    """Something functionally wrong: the figures would be meaningless."""


# -- workload ---------------------------------------------------------------


def acl_rules(n: int) -> list[dict[str, Any]]:
    """``n`` distinct ingress rules, a mix of what real ACLs hold."""
    rules = []
    for i in range(n):
        cidr = f"10.{100 + (i >> 16) % 100}.{(i >> 8) & 255}.{i & 255}/32"
        if i % 10 == 3:
            cidr += f",192.168.{i & 255}.0/24"
        kind = i % 20
        if kind < 12:
            rule = {"type": "tcp", "first_port": 1024 + i % 60000, "last_port": 1024 + i % 60000}
        elif kind < 15:
            rule = {"type": "tcp", "first_port": 2000 + i % 50000, "last_port": 2010 + i % 50000}
        elif kind < 18:
            rule = {"type": "udp", "first_port": 1024 + i % 60000, "last_port": 1024 + i % 60000}
        elif kind == 18:
            rule = {"type": "icmp", "icmp_type": 8, "icmp_code": -1}
        else:
            rule = {"type": "all"}
        rule["cidr"] = cidr
        rule["allowed"] = i % 7 != 5
        rules.append(rule)
    return rules


def acl_bag(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "networkacl", "device": "eth2", "mac_address": "02:00:0a:00:00:02",
        "private_gateway_acl": False, "nic_ip": "10.10.1.1", "nic_netmask": "24",
        "ingress_rules": rules,
        "egress_rules": [{"type": "all", "cidr": "0.0.0.0/0", "allowed": True}],
    }


def forward_bag(n: int) -> dict[str, Any]:
    return {
        "type": "forwardrules", "delete_from_processed_cache": False,
        "rules": [
            {"revoke": False, "protocol": "tcp", "source_ip_address": FORWARD_IP,
             "source_port_range": f"{20000 + j}:{20000 + j}",
             "destination_ip_address": f"10.10.1.{10 + j % 200}",
             "destination_port_range": f"{8000 + j % 1000}:{8000 + j % 1000}"}
            for j in range(n)
        ],
    }


def changed_rules(rules: list[dict[str, Any]], step: int) -> tuple[list[dict[str, Any]], int]:
    """``rules`` with the port of one single-port TCP rule changed; (rules, new port)."""
    single = [i for i, r in enumerate(rules)
              if r["type"] == "tcp" and r["first_port"] == r["last_port"]]
    idx = single[(len(single) // 3 + step * 7919) % len(single)]
    port = 61000 + step  # above every generated port: unique, easy to find
    out = list(rules)
    out[idx] = {**rules[idx], "first_port": port, "last_port": port}
    return out, port


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


# -- nft listings and scripts -----------------------------------------------


def parse_chains(text: str) -> dict[str, list[str]]:
    """Chain name -> rule lines (hook lines excluded), of a listing or a rendered script."""
    chains: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("chain ") and line.endswith("{"):
            current = chains.setdefault(line.split()[1], [])
        elif line == "}":
            current = None
        elif current is not None and line and not (line.startswith("type ") and " hook " in line):
            current.append(line)
    return chains


def count_acl(chains: dict[str, list[str]], ifname: str = "eth2") -> int:
    parent = f"acl_in_{ifname}"
    n = 0
    for name, rules in chains.items():
        if name == parent:
            n += sum(1 for r in rules if not r.startswith("jump ") and "counter" not in r)
        elif name.startswith(parent + "_"):
            n += len(rules)
    return n


def count_dnat(chains: dict[str, list[str]]) -> int:
    return sum(1 for name, rules in chains.items() if name.startswith("port_forward")
               for r in rules if " dnat " in f" {r} ")


def total_rules(chains: dict[str, list[str]]) -> int:
    return sum(len(r) for r in chains.values())


def delta_script(before: str, after: str) -> tuple[str, int]:
    """Plain nft script taking the table of ``before`` to that of ``after``, changed chains only.

    New and changed chains are created or flushed and refilled, gone ones deleted, in
    one transaction; (script, number of chains touched).
    """
    old, new = _chain_blocks(before), _chain_blocks(after)
    changed = [n for n in new if old.get(n) != new[n]]
    removed = [n for n in old if n not in new]
    lines = [f"{'flush' if n in old else 'add'} chain inet {TABLE} {n}" for n in changed]
    lines.append(f"table inet {TABLE} {{")
    for n in changed:
        lines += [f"\tchain {n} {{", *(f"\t\t{r}" for r in new[n]), "\t}"]
    lines.append("}")
    lines += [f"delete chain inet {TABLE} {n}" for n in removed]
    return "\n".join(lines) + "\n", len(changed) + len(removed)


def _chain_blocks(script: str) -> dict[str, tuple[str, ...]]:
    blocks: dict[str, tuple[str, ...]] = {}
    current: list[str] | None = None
    name = ""
    for raw in script.splitlines():
        line = raw.strip()
        if line.startswith("chain ") and line.endswith("{"):
            name, current = line.split()[1], []
        elif line == "}" and current is not None:
            blocks[name] = tuple(current)
            current = None
        elif current is not None and line:
            current.append(line)
    return blocks


# -- running things ---------------------------------------------------------


@dataclass
class AgentRun:
    wall_s: float
    stdout: str
    stats: dict[str, Any]
    # CPU seconds (user + system) of the whole command, ``ip netns exec``, the
    # interpreter and what the agent runs (nft, ip) included: unlike wall
    # time, hardly moved by other work on a busy machine.
    cpu_s: float = float("nan")

    @property
    def inproc_s(self) -> float:
        return float(self.stats.get("inproc_s", float("nan")))

    def sub_s(self, prefix: str) -> float:
        return float(sum(v["s"] for k, v in self.stats.get("subprocess", {}).items()
                         if k.startswith(prefix)))

    @property
    def rss_mb(self) -> float:
        return float(self.stats.get("maxrss_self_kb", 0)) / 1024

    @property
    def import_s(self) -> float:
        return float(self.stats.get("import_s", float("nan")))


@dataclass
class Bench:
    lab: Lab
    tmp: Path
    router: str
    raw: str
    profile_dir: Path | None = None
    _runs: int = 0

    def agent(self, root: Path, *args: str, label: str = "", check: bool = True) -> AgentRun:
        self._runs += 1
        stats_file = self.tmp / f"stats-{self._runs}.json"
        env = dict(os.environ, VRAGENT_BENCH_STATS=str(stats_file))
        env.pop("VRAGENT_ROOT", None)
        if self.profile_dir is not None and label:
            env["VRAGENT_BENCH_PROFILE"] = str(self.profile_dir / f"{label}.prof")
        argv = ["ip", "netns", "exec", self.router, PY, PROBE, "--root", str(root), *args]
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
        wall = time.perf_counter() - t
        # Every process of the command has been waited for once it returns.
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - ru.ru_utime + after.ru_stime - ru.ru_stime
        if check and proc.returncode != 0:
            raise BenchFailure(f"vragent {' '.join(args)} exit {proc.returncode}:\n"
                               f"{proc.stdout}{proc.stderr}")
        try:
            stats = json.loads(stats_file.read_text())
        except (OSError, ValueError):
            stats = {}
        return AgentRun(wall, proc.stdout, stats, cpu)

    def router_sh(self, *argv: str, check: bool = True) -> str:
        return str(in_ns(self.router, list(argv), check=check))

    def listing(self, ns: str) -> dict[str, list[str]]:
        return parse_chains(in_ns(ns, ["nft", "-s", "list", "table", "inet", TABLE]))

    def drop_table(self, ns: str) -> None:
        in_ns(ns, ["nft", "delete", "table", "inet", TABLE], check=False)

    def raw_load(self, script: Path) -> float:
        """Seconds for ``ip netns exec RAW nft -f script``."""
        t = time.perf_counter()
        proc = subprocess.run(["ip", "netns", "exec", self.raw, "nft", "-f", str(script)],
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise BenchFailure(f"raw nft -f {script.name} failed: {proc.stderr.strip()[:2000]}")
        return wall

    def raw_full(self, script: Path, reps: int) -> list[float]:
        """Load ``script`` into the empty raw namespace ``reps`` times (table dropped between)."""
        times = []
        for _ in range(reps):
            self.drop_table(self.raw)
            times.append(self.raw_load(script))
        return times

    def raw_rss_mb(self, script: Path) -> float:
        """Peak RSS of plain ``nft -f script`` (one more, untimed, load); nan without GNU time."""
        if not os.access(GNU_TIME, os.X_OK):
            return float("nan")
        self.drop_table(self.raw)
        out = self.tmp / "rss.txt"
        proc = subprocess.run(["ip", "netns", "exec", self.raw, GNU_TIME, "-f", "%M", "-o",
                               str(out), "nft", "-f", str(script)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BenchFailure(f"raw nft -f {script.name} failed: {proc.stderr.strip()[:2000]}")
        try:
            return int(out.read_text().split()[-1]) / 1024
        except (OSError, ValueError, IndexError):
            return float("nan")


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


@contextmanager
def bench_lab(tag: str, profile_dir: Path | None = None,
              extra: dict[str, Any] | None = None) -> Iterator[tuple[Bench, Path]]:
    """The sample VPC lab and, in ``base``, a router state booted with
    SETUP_BAGS applied (then ``extra``: bag documents by file name, in one
    apply with them). Whatever happens, every namespace of this run (its
    names start with a prefix of ``tag``, the pid and a random byte) and the
    state directory are removed afterwards."""
    # SIGTERM (CI timeout) must still run the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    prefix = f"{tag}{os.getpid() % 100000:05d}{secrets.token_hex(1)}-"
    tmp = Path(tempfile.mkdtemp(prefix="vragent-bench-"))
    lab = Lab(prefix)
    try:
        lab = sample_vpc(prefix)
        b = Bench(lab, tmp, f"{prefix}r", lab.ns("raw"), profile_dir)
        base = tmp / "base"
        (base / "var/cache/cloud").mkdir(parents=True)
        shutil.copy(SAMPLE / "cmd_line.json", base / "var/cache/cloud/cmd_line.json")
        b.agent(base, "boot")
        bags = [SAMPLE / f for f in SETUP_BAGS]
        bags += [write_json(tmp / name, doc) for name, doc in (extra or {}).items()]
        b.agent(base, "apply", *map(str, bags))
        print(f"lab {prefix}*, state in {tmp}, python {PY}", flush=True)
        yield b, base
        if profile_dir is not None:
            print(f"\nprofiles: {profile_dir}/<run>.prof "
                  f"(python -m pstats FILE; sort tottime; stats 20)")
    finally:
        lab.destroy()
        # sample_vpc() may have failed half-way, before handing us its Lab: drop
        # whatever still carries this run's (unique) prefix.
        for line in labnet.sh(["ip", "netns", "list"], check=False).splitlines():
            name = line.split()[0] if line.strip() else ""
            if name.startswith(prefix):
                labnet.sh(["ip", "netns", "del", name], check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def bench_main(name: str, run: Callable[[], None]) -> int:
    """Exit status of benchmark ``name`` running ``run``: 2 when it cannot run
    here, 1 when something functionally failed (the figures would mean
    nothing), else 0. Timings are reported, never asserted."""
    if os.geteuid() != 0:
        print(f"{name}: needs root (network namespaces)", file=sys.stderr)
        return 2
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            print(f"{name}: {tool} not found", file=sys.stderr)
            return 2
    try:
        run()
    except BenchFailure as exc:
        print(f"\n{name}: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


# -- scenarios --------------------------------------------------------------


@dataclass
class Result:
    name: str
    rules: int  # rules in the whole table
    agent: list[AgentRun] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)
    raw_delta: list[float] = field(default_factory=list)
    raw_rss_mb: float = float("nan")
    notes: list[str] = field(default_factory=list)

    @property
    def agent_s(self) -> float:
        return med([r.wall_s for r in self.agent])

    @property
    def raw_s(self) -> float:
        return med(self.raw)


def fresh_root(b: Bench, base: Path, name: str) -> Path:
    """A copy of the state in ``base``, no table on the router and no record
    of one: the next apply loads the whole table."""
    root = b.tmp / name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root, symlinks=True)
    (root / "run/vragent/netfilter.applied.json").unlink(missing_ok=True)
    b.drop_table(b.router)
    return root


def verify(b: Bench, chains: dict[str, list[str]], rendered: dict[str, list[str]],
           acl: int, dnat: int, what: str) -> None:
    got_acl, got_dnat = count_acl(chains), count_dnat(chains)
    if got_acl != acl or got_dnat != dnat:
        raise BenchFailure(f"{what}: live table holds {got_acl} ACL rules and {got_dnat} "
                           f"port forwards, expected {acl} and {dnat}")
    if total_rules(chains) != total_rules(rendered):
        raise BenchFailure(f"{what}: live table has {total_rules(chains)} rules, the rendered "
                           f"ruleset {total_rules(rendered)}")


def cold(b: Bench, base: Path, name: str, bags: list[Path], acl: int, dnat: int,
         reps: int, raw_reps: int) -> tuple[Result, Path]:
    res = Result(name, 0)
    root = base
    for rep in range(reps):
        root = fresh_root(b, base, f"{name}-{rep}")
        run = b.agent(root, "apply", *map(str, bags), label=f"{name}-{rep}")
        if "load table" not in run.stdout:
            raise BenchFailure(f"{name}: the agent did not load the table:\n{run.stdout}")
        res.agent.append(run)
        live = b.listing(b.router)
        if rep == 0:
            rendered_text = b.agent(root, "render", "netfilter").stdout
            rendered = parse_chains(rendered_text)
            script = b.tmp / f"{name}.nft"
            script.write_text(rendered_text)
        verify(b, live, rendered, acl, dnat, f"{name} run {rep + 1}")
    res.rules = total_rules(rendered)
    res.raw = b.raw_full(script, raw_reps)
    res.raw_rss_mb = b.raw_rss_mb(script)
    raw_live = b.listing(b.raw)
    if raw_live != live:  # same chains, same rules in the same order
        raise BenchFailure(f"{name}: the table the agent loaded differs from raw nft's load "
                           f"of the rendered ruleset")
    return res, root


def single_change(b: Bench, root: Path, rules: list[dict[str, Any]], dnat: int, reps: int,
                  raw_reps: int) -> Result:
    res = Result("c", 0)
    before = b.agent(root, "render", "netfilter").stdout
    full_scripts: list[tuple[str, str]] = []  # (before, after) per step
    chains_touched = []
    for step in range(reps):
        rules, port = changed_rules(rules, step)
        bag = write_json(b.tmp / f"c-acl-{step}.json", acl_bag(rules))
        run = b.agent(root, "apply", str(bag), label=f"c-{step}")
        res.agent.append(run)
        lines = [ln for ln in run.stdout.splitlines() if ln.startswith("netfilter:")]
        if not lines:
            raise BenchFailure(f"c step {step + 1}: no netfilter change reported "
                               f"(a no-op?):\n{run.stdout}")
        if "load table" in lines[0]:
            res.notes.append(f"step {step + 1}: the agent reloaded the whole table "
                             f"instead of a delta ({lines[0]})")
        chains_touched.append(lines[0])
        live = b.listing(b.router)
        after = b.agent(root, "render", "netfilter").stdout
        verify(b, live, parse_chains(after), len(rules), dnat, f"c step {step + 1}")
        if not any(f"dport {port} " in r for n, rs in live.items() if n.startswith("acl_in_eth2")
                   for r in rs):
            raise BenchFailure(f"c step {step + 1}: changed rule (dport {port}) not in the table")
        full_scripts.append((before, after))
        before = after
    res.rules = total_rules(parse_chains(before))
    # Raw references: the whole final table, and each step's changed chains only.
    final = b.tmp / "c-full.nft"
    final.write_text(before)
    res.raw = b.raw_full(final, raw_reps)
    res.raw_rss_mb = b.raw_rss_mb(final)
    n_delta = []
    for step, (old, new) in enumerate(full_scripts):
        pre, post = b.tmp / f"c-pre-{step}.nft", b.tmp / f"c-delta-{step}.nft"
        pre.write_text(old)
        delta, n = delta_script(old, new)
        post.write_text(delta)
        n_delta.append(n)
        b.drop_table(b.raw)
        b.raw_load(pre)  # not timed: the state before the change
        res.raw_delta.append(b.raw_load(post))
        if step == len(full_scripts) - 1:
            raw_live, live = b.listing(b.raw), b.listing(b.router)
            if raw_live != live:
                raise BenchFailure("c: raw delta and agent ended in different tables")
    res.notes.append("agent: " + chains_touched[-1].removeprefix("netfilter: "))
    res.notes.append(f"raw delta scripts touch {min(n_delta)}-{max(n_delta)} chains")
    return res


# -- report -----------------------------------------------------------------


def ms(s: float) -> str:
    return f"{s * 1000:8.1f}"


def report(results: list[Result], sizes: dict[str, str], big: str) -> None:
    print()
    print("vragent apply benchmark (times in ms, medians; wall times include `ip netns exec`)")
    print()
    hdr = (f"{'scenario':<44} {'rules':>6} {'runs':>4} {'agent':>8} {'min':>8} {'max':>8} "
           f"{'raw nft':>8} {'ratio':>6} {'agentRSS':>8} {'nft RSS':>7}")
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        walls = [a.wall_s for a in r.agent]
        print(f"{sizes[r.name]:<44} {r.rules:>6} {len(walls):>4} {ms(r.agent_s)} "
              f"{ms(min(walls))} {ms(max(walls))} {ms(r.raw_s)} {r.agent_s / r.raw_s:6.2f} "
              f"{max(a.rss_mb for a in r.agent):7.1f}M {r.raw_rss_mb:6.1f}M")
        if r.raw_delta:
            print(f"{'   raw nft of the changed chains only':<44} {'':>6} {len(r.raw_delta):>4} "
                  f"{'':>8} {'':>8} {'':>8} {ms(med(r.raw_delta))} "
                  f"{r.agent_s / med(r.raw_delta):6.2f}")
    print("agentRSS: peak RSS of the agent's Python process (max over runs); nft RSS: peak RSS")
    print("of plain `nft -f` loading the same full table (the agent runs that too, as a child).")
    print()
    print("where the agent's time goes (medians, ms): startup = wall - in-process "
          "(ip netns exec,")
    print("interpreter); imports = vragent.cli + vragent.agent; python = in-process - imports - "
          "subprocesses")
    hdr2 = (f"{'scenario':<8} {'wall':>8} {'startup':>8} {'in-proc':>8} {'imports':>8} "
            f"{'nft -f':>8} {'nft list':>8} {'ip':>8} {'python':>8}")
    print(hdr2)
    print("-" * len(hdr2))
    for r in results:
        wall = r.agent_s
        inproc = med([a.inproc_s for a in r.agent])
        load = med([a.sub_s("nft -f") for a in r.agent])
        lst = med([a.sub_s("nft -s") + a.sub_s("nft -j") + a.sub_s("nft list")
                   for a in r.agent])
        ip = med([a.sub_s("ip ") for a in r.agent])
        imp = med([a.import_s for a in r.agent])
        py = med([a.inproc_s - a.import_s
                  - sum(v["s"] for v in a.stats.get("subprocess", {}).values())
                  for a in r.agent])
        print(f"{r.name:<8} {ms(wall)} {ms(wall - inproc)} {ms(inproc)} {ms(imp)} {ms(load)} "
              f"{ms(lst)} {ms(ip)} {ms(py)}")
    notes = [f"({r.name}) {n}" for r in results for n in r.notes]
    if notes:
        print()
        print("\n".join(notes))
    print()
    print("aims (informational, not asserted):")
    by = {r.name: r for r in results}
    if "b" in by:
        ratio = by["b"].agent_s / by["b"].raw_s
        print(f"  agent/raw ratio at {big} rules <= {AIM_RATIO}: {ratio:.2f} -> "
              f"{'met' if ratio <= AIM_RATIO else 'NOT met'}")
    if "c" in by:
        c = by["c"].agent_s
        print(f"  single-rule change < {AIM_CHANGE_S * 1000:.0f} ms: {c * 1000:.1f} ms -> "
              f"{'met' if c < AIM_CHANGE_S else 'NOT met'}")


# -- main -------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a CI smoke run")
    ap.add_argument("--profile", metavar="DIR", type=Path,
                    help="also write a cProfile of every agent apply to DIR (inflates timings)")
    args = ap.parse_args()
    if args.quick:
        n_a, n_b, n_fwd, cold_reps, change_reps, raw_reps = 200, 1000, 200, 1, 3, 3
    else:
        n_a, n_b, n_fwd, cold_reps, change_reps, raw_reps = 1000, 10000, 2000, 3, 5, 3
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    def run() -> None:
        with bench_lab("vb", args.profile) as (b, base):
            addrs = b.router_sh("ip", "-4", "-o", "addr", "show")
            for needed in ("10.10.1.1/", "10.10.2.1/", "100.64.10.10/", "100.64.10.11/",
                           "100.64.10.12/"):
                if needed not in addrs:
                    raise BenchFailure(f"setup: {needed[:-1]} is not configured on the router")
            tmp = b.tmp
            rules_a = acl_rules(n_a)
            rules_b = acl_rules(n_b)
            bag_a = write_json(tmp / "acl-a.json", acl_bag(rules_a))
            bag_b = write_json(tmp / "acl-b.json", acl_bag(rules_b))
            fwd_b = write_json(tmp / "fwd-b.json", forward_bag(n_fwd))
            sizes = {
                "a": f"(a) cold: ACL {n_a}",
                "b": f"(b) cold: ACL {n_b} + {n_fwd} forwards",
                "c": f"(c) 1-rule change on {n_b}+{n_fwd} (vs full)",
            }
            results = []
            print(f"(a) {n_a} ACL rules, cold, {cold_reps} run(s) ...", flush=True)
            res, _ = cold(b, base, "a", [bag_a], n_a, 0, cold_reps, raw_reps)
            results.append(res)
            print(f"(b) {n_b} ACL rules + {n_fwd} forwards, cold, {cold_reps} run(s) ...",
                  flush=True)
            res, root_b = cold(b, base, "b", [bag_b, fwd_b], n_b, n_fwd, cold_reps, raw_reps)
            results.append(res)
            print(f"(c) single-rule change on top of (b), {change_reps} run(s) ...", flush=True)
            results.append(single_change(b, root_b, rules_b, n_fwd, change_reps, raw_reps))
            report(results, sizes, f"{n_b}+{n_fwd}")

    return bench_main("bench_apply", run)


if __name__ == "__main__":
    sys.exit(main())
