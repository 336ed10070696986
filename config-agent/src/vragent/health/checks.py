"""CloudStack's router health checks, each declared once.

Upstream runs every executable in systemvm/debian/root/health_checks/ with
its kind as argument (monitorServices.py ``execute``); each script prints one
message and exits 0 (success) or 1 (failure), or prints nothing when called
with the other kind. Here each check is a ``Check`` in ``CHECKS``: its
upstream name (the key CloudStack stores the result under and excludes it
by), its kind and a function returning an ``Outcome``. The supervised daemons
get one ``<service>.service`` check each, as monitorServices.py
``monitProcess`` gives every service of /etc/monitor.conf.

The checks read what the management server sent (``health_checks_config``,
parsed as utility/sharedFunctions.py getHealthChecksData does) and compare it
with the router: the files its daemons read, the live nft table, supervisord.
Missing data is upstream's "..., skipping" success, not a failure.
Messages are upstream's, with this router's file and table names where
upstream names its own (dhcphosts.txt, /etc/hosts, iptables).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .. import __version__, daemon_state, supervised
from ..models import MonitorService
from ..settings import Settings
from ..system import dnsmasq, nft, ping, proc
from ..system.supervisor import RUNNING_STATES, Supervisor
from .results import Kind

# /proc/stat is sampled twice this far apart (upstream: top's two iterations).
CPU_SAMPLE = 1.0
# Seconds a gateway has to answer one echo (upstream: ping -c 5 -w 10, 5 times).
GATEWAY_DEADLINE = 3


@dataclass(frozen=True)
class Outcome:
    success: bool
    message: str


def ok(message: str) -> Outcome:
    return Outcome(True, message)


def failed(message: str) -> Outcome:
    return Outcome(False, message)


def parse_records(text: str) -> list[dict[str, str]]:
    """``;``-separated records of ``,``-separated ``k=v`` (utility/sharedFunctions.py
    getHealthChecksData): blanks are stripped, an entry without exactly one
    "=" is dropped, and so is a record left empty."""
    records = []
    for line in text.strip().split(";"):
        record = {}
        for entry in line.strip().split(","):
            key_value = entry.strip().split("=")
            if len(key_value) == 2:
                record[key_value[0].strip()] = key_value[1].strip()
        if record:
            records.append(record)
    return records


def format_port(first: str, last: str, delim: str = "-") -> str:
    """utility/sharedFunctions.py formatPort."""
    return first if first == last else f"{first}{delim}{last}"


@dataclass
class Context:
    """What one run of the checks reads, each part once."""

    settings: Settings
    monitor: MonitorService | None
    redundant: bool  # one of a pair (the boot parameters' redundant_router)
    ha_status: str  # this router's pair state (PRIMARY, BACKUP...)
    # supervisord's state of each program; None: asked when first needed.
    supervisor_states: dict[str, str] | None = field(default=None, repr=False)

    def data(self, key: str) -> list[dict[str, str]] | None:
        """The records of ``health_checks_config[key]``; None when it was not sent."""
        config = self.monitor.health_checks_config if self.monitor else None
        if config is None or key not in config:
            return None
        return parse_records(config[key])

    def single(self, key: str) -> dict[str, str]:
        """The one record of ``key`` (upstream reads only a key with exactly one)."""
        records = self.data(key)
        return records[0] if records is not None and len(records) == 1 else {}

    def states(self) -> dict[str, str]:
        """supervisord's state of each program; empty when it does not answer."""
        if self.supervisor_states is None:
            try:
                infos = Supervisor(self.settings.supervisor_socket).processes().values()
                self.supervisor_states = {str(i["name"]): str(i["statename"]) for i in infos}
            except Exception:  # noqa: BLE001 - no socket, refused, an XML-RPC fault: no answer
                self.supervisor_states = {}
        return self.supervisor_states

    def running(self, name: str) -> bool:
        return self.states().get(name) in RUNNING_STATES


@dataclass(frozen=True)
class Check:
    name: str  # the upstream script's name: the result's key, what excluded_health_checks lists
    kind: Kind
    run: Callable[[Context], Outcome]


# -- basic ----------------------------------------------------------------------


def _threshold(ctx: Context, key: str) -> float | Outcome:
    """systemThresholds' ``key`` as a number, or the outcome that ends the check."""
    value = ctx.single("systemThresholds").get(key)
    if value is None:
        return ok(f"Missing {key} in health_checks_data systemThresholds, skipping")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        return failed(f"{key} in health_checks_data systemThresholds is not a number: "
                      f"{value!r}")
    return number


def cpu_usage(ctx: Context) -> Outcome:
    """health_checks/cpu_usage_check.py: busy share of all CPUs over a second
    (upstream: top's second iteration), against maxCpuUsage."""
    limit = _threshold(ctx, "maxCpuUsage")
    if isinstance(limit, Outcome):
        return limit
    idle0, total0 = proc.cpu_times()
    time.sleep(CPU_SAMPLE)
    idle1, total1 = proc.cpu_times()
    busy = 1 - (idle1 - idle0) / (total1 - total0) if total1 > total0 else 0.0
    current = round(100 * busy, 2)
    if current > limit:
        return failed(f"CPU Usage {current}% has crossed threshold of {limit}%")
    return ok(f"CPU Usage within limits with current at {current}%")


def memory_usage(ctx: Context) -> Outcome:
    """health_checks/memory_usage_check.py: memory in use (MemTotal - MemAvailable:
    what ``free`` shows as used) against maxMemoryUsage."""
    limit = _threshold(ctx, "maxMemoryUsage")
    if isinstance(limit, Outcome):
        return limit
    total, available = proc.memory()
    if total <= 0:
        return failed("Failed to retrieve memory usage from /proc/meminfo")
    current = round((total - available) * 100 / total, 2)
    if current > limit:
        return failed(f"Memory Usage {current}% has crossed threshold of {limit}%")
    return ok(f"Memory Usage within limits with current at {current}%")


def disk_space(ctx: Context) -> Outcome:
    """health_checks/disk_space_check.py: free space (MB) where the state lives
    (upstream: statvfs('/')), against minDiskNeeded."""
    needed = _threshold(ctx, "minDiskNeeded")
    if isinstance(needed, Outcome):
        return needed
    _, free = proc.disk(ctx.settings.state_dir)
    free_mb = free / 1024 / 1024
    if free_mb < needed:
        return failed(f"Insufficient free space is {free_mb} MB")
    return ok(f"Sufficient free space is {free_mb} MB")


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def gateways(ctx: Context) -> Outcome:
    """health_checks/gateways_check.py: every address of gatewaysIps answers a ping.

    Upstream pings each one 5 times for up to 10 s; here one echo reply
    within ``GATEWAY_DEADLINE`` seconds will do, all gateways at once. Upstream
    counts records in its success message (always 1); here the gateways.
    """
    records = ctx.data("gateways")
    if not records:
        return ok("No gateways data available, skipping")
    addresses = [a for a in records[0].get("gatewaysIps", "").split(" ") if a]
    usable = [a for a in addresses if _valid_ip(a)]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(usable)))) as pool:
        answers = dict(zip(usable, pool.map(
            lambda a: ping.reachable(a, GATEWAY_DEADLINE), usable), strict=True))
    unreachable = [a for a in addresses if not answers.get(a, False)]
    if unreachable:
        return failed(f"Unreachable gateways found-\n{unreachable!r}")
    return ok(f"All {len(addresses)} gateways are reachable via ping")


def _first_line(path: Path) -> str | None:
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return lines[0].strip() if lines else None


def router_version(ctx: Context) -> Outcome:
    """health_checks/router_version_check.py: templateVersion against the first
    line of the release file, scriptsVersion against this agent's version
    (upstream: the md5 signature of its scripts, which this router does not
    have: the agent is what runs here in their place)."""
    data = ctx.single("routerVersion")
    if not data:
        return ok("Missing routerVersion in health_checks_data, skipping")
    lines: list[str] = []
    matches = True
    if "templateVersion" in data:
        expected = data["templateVersion"].strip()
        path = ctx.settings.release_file
        found = _first_line(path)
        if found is None:
            lines.append(f"Release version not yet setup at {path}, skipping.")
        elif expected != found:
            lines.append(f"Template Version mismatch. Expected: {expected}, found: {found}")
            matches = False
    if "scriptsVersion" in data:
        expected = data["scriptsVersion"].strip()
        if expected != __version__:
            lines.append(f"Scripts Version mismatch. Expected: {expected}, "
                         f"found: {__version__}")
            matches = False
    if matches:
        lines.append("Template and scripts version match successful")
    return Outcome(matches, "\n".join(lines))


def service_checks(ctx: Context) -> list[Check]:
    """One ``<service>.service`` per supervised daemon that should run now
    (monitorServices.py monitProcess: a result per /etc/monitor.conf section).

    The name is the section the management server gave the daemon's process
    in ``config`` (``[dhcp]:processname=dnsmasq:…`` makes dnsmasq
    "dhcp.service", the name router.health.checks.failures.to.recreate.vr
    uses), else the daemon's own. Sections for processes this router does
    not run (sshd, apache2) get no result. Upstream restarts a service it
    finds down; here the resident agent does that, and the check only reports.
    """
    sections = {process: service for service, process, _, _ in
                (ctx.monitor.services() if ctx.monitor else [])}
    found = []
    for daemon in supervised.registry(ctx.settings):
        if not daemon_state.wanted(daemon, ctx.redundant, ctx.ha_status):
            continue
        name = sections.get(daemon.name, daemon.name)
        found.append(Check(f"{name}.service", "basic", partial(_service, daemon=daemon.name)))
    return found


def _service(ctx: Context, daemon: str) -> Outcome:
    if ctx.running(daemon):
        return ok("service is running")
    return failed(f"service down at last check {int(time.time())}")


# -- advanced -------------------------------------------------------------------


def _vms(ctx: Context) -> list[dict[str, str]] | Outcome:
    records = ctx.data("virtualMachines")
    if not records:
        return ok("No VMs running data available, skipping")
    incomplete = [r for r in records if not {"vmName", "macAddress", "ip"} <= set(r)]
    if incomplete:
        return failed(f"virtualMachines records without vmName, macAddress and ip: "
                      f"{incomplete!r}")
    return records


def dhcp(ctx: Context) -> Outcome:
    """health_checks/dhcp_check.py: every VM of virtualMachines has its static
    lease (MAC, address and name) among dnsmasq's hosts (the hosts file, and
    the main file's dhcp-host lines for hosts with options of their own)."""
    vms = _vms(ctx)
    if isinstance(vms, Outcome):
        return vms
    hosts = set(dnsmasq.static_hosts(ctx.settings))
    missing = [f"{vm['macAddress']} {vm['ip']} {vm['vmName']}" for vm in vms
               if (vm["macAddress"].lower(), vm["ip"], vm["vmName"]) not in hosts]
    name = ctx.settings.dnsmasq_dhcp_hosts.name
    if missing:
        return failed(f"Missing elements in {name} - \n" + ", ".join(missing))
    return ok(f"All {len(vms)} VMs are present in {name}")


def dns(ctx: Context) -> Outcome:
    """health_checks/dns_check.py: every VM's address and name are a line of
    dnsmasq's names file (upstream: "ip<TAB>name" in /etc/hosts; here
    "ip fqdn name")."""
    vms = _vms(ctx)
    if isinstance(vms, Outcome):
        return vms
    path = ctx.settings.dnsmasq_hosts
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    names: set[tuple[str, str]] = set()
    for line in lines:
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            names.update((fields[0], n) for n in fields[1:])
    missing = [f"{vm['ip']} {vm['vmName']}" for vm in vms if (vm["ip"], vm["vmName"]) not in names]
    if missing:
        return failed(f"Missing entries for VMs in {path.name} -\n" + ", ".join(missing))
    return ok(f"All {len(vms)} VMs are present in {path.name}")


@dataclass(frozen=True)
class Dnat:
    """One destination NAT rule of the live table."""

    daddr: str
    ports: tuple[int, int]  # the public (destination) ports it matches
    to: str
    to_ports: tuple[int, int] | None  # None: the port is kept


def _port_range(value: Any) -> tuple[int, int] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if isinstance(value, dict):
        bounds = value.get("range")
        if (isinstance(bounds, list) and len(bounds) == 2
                and all(isinstance(b, int) for b in bounds)):
            return bounds[0], bounds[1]
    return None


def dnat_rules(items: list[dict[str, Any]]) -> list[Dnat]:
    """The port-matching DNAT rules of an ``nft -j`` listing, in any chain
    (subsystems/netfilter.py _forward_dnat renders them: one rule for a range
    forwarded as is, one per port when the ports change)."""
    found = []
    for item in items:
        rule = item.get("rule")
        if not isinstance(rule, dict):
            continue
        daddr: str | None = None
        ports: tuple[int, int] | None = None
        to: str | None = None
        to_ports: tuple[int, int] | None = None
        for expr in rule.get("expr", []):
            match = expr.get("match") if isinstance(expr, dict) else None
            if isinstance(match, dict) and match.get("op") == "==":
                left = match.get("left")
                payload = left.get("payload", {}) if isinstance(left, dict) else {}
                if payload.get("protocol") == "ip" and payload.get("field") == "daddr" \
                        and isinstance(match.get("right"), str):
                    daddr = match["right"]
                elif payload.get("field") == "dport":
                    ports = _port_range(match.get("right"))
            target = expr.get("dnat") if isinstance(expr, dict) else None
            if isinstance(target, dict) and isinstance(target.get("addr"), str):
                to = target["addr"]
                to_ports = _port_range(target["port"]) if "port" in target else None
        if daddr is not None and ports is not None and to is not None:
            found.append(Dnat(daddr, ports, to, to_ports))
    return found


def _forwarded(rules: list[Dnat], record: dict[str, str]) -> bool:
    """Every public port of the record reaches the VM's matching port."""
    first, last = int(record["sourcePortStart"]), int(record["sourcePortEnd"])
    offset = int(record["destPortStart"]) - first
    covered: set[int] = set()
    for r in rules:
        if r.daddr != record["sourceIp"] or r.to != record["destIp"]:
            continue
        low, high = max(first, r.ports[0]), min(last, r.ports[1])
        if r.to_ports is None:
            if offset == 0:
                covered.update(range(low, high + 1))
        elif r.to_ports[0] == r.to_ports[1]:
            # One destination port: right for exactly one public port. (A
            # destination range is no 1:1 mapping in nft: never one of ours.)
            port = r.to_ports[0] - offset
            if low <= port <= high and r.ports == (port, port):
                covered.add(port)
    return len(covered) == last - first + 1


_FORWARD_KEYS = ("sourceIp", "sourcePortStart", "sourcePortEnd", "destIp", "destPortStart",
                 "destPortEnd")


def _forward_problem(record: dict[str, str]) -> str:
    """What makes a portForwarding record unusable ("" when nothing does)."""
    lacking = [k for k in _FORWARD_KEYS if k not in record]
    if lacking:
        return f"{', '.join(lacking)} missing"
    ports = [k for k in _FORWARD_KEYS if "Port" in k]
    bad = [k for k in ports if not (record[k].isascii() and record[k].isdigit())]
    if bad:
        return f"{', '.join(bad)} not a port number"
    for side in ("source", "dest"):
        if int(record[f"{side}PortStart"]) > int(record[f"{side}PortEnd"]):
            return f"{side} port range reversed"
    return ""


def port_forwarding(ctx: Context) -> Outcome:
    """health_checks/iptables_check.py: every portForwarding record is a DNAT
    rule of the live table (upstream: PREROUTING and OUTPUT lines of
    iptables-save; here the table's DNAT rules, whichever chain holds them)."""
    records = ctx.data("portForwarding")
    if not records:
        return ok("No portforwarding rules provided to check, skipping")
    table = f"inet {ctx.settings.nft_table}"
    for i, record in enumerate(records):
        problem = _forward_problem(record)
        if problem:
            return failed(f"portForwarding record {i}: {problem}")
    listing = nft.table_json(ctx.settings.nft_table)
    rules = dnat_rules(listing) if listing is not None else []
    missing = [
        f"{r['sourceIp']}:{format_port(r['sourcePortStart'], r['sourcePortEnd'])} -> "
        f"{r['destIp']}:{format_port(r['destPortStart'], r['destPortEnd'])}"
        for r in records if not _forwarded(rules, r)]
    if missing:
        why = "" if listing is not None else f" (table {table} is not loaded)"
        return failed(f"Missing port forwarding rules in table {table}{why}-\n "
                      + "\n ".join(missing))
    return ok(f"Found all entries (count {len(records)}) in table {table}")


def haproxy(ctx: Context) -> Outcome:
    """health_checks/haproxy_check.py: this router does not run haproxy yet, so
    load balancing rules sent to it are not served; records without a
    ``sourceIp`` are haproxy's global and default settings, not rules."""
    records = ctx.data("haproxyData") or []
    rules = [r for r in records if "sourceIp" in r]
    if not rules:
        return ok("No data provided to check, skipping")
    return failed(f"This router does not run haproxy yet: {len(rules)} load balancing "
                  f"rule(s) not served")


def netfilter_applied(ctx: Context) -> Outcome:
    """This router's own: the live nft table is exactly what the agent last
    applied (the test subsystems/netfilter.py makes before loading a delta)."""
    from ..subsystems import netfilter

    s = ctx.settings
    table = f"inet {s.nft_table}"
    if not s.applied_netfilter.exists():
        return failed(f"No ruleset applied since boot ({s.applied_netfilter.name} is missing)")
    if netfilter.applied_in_force(s):
        return ok(f"Table {table} is what the agent last applied")
    if nft.list_table(s.nft_table) is None:
        return failed(f"Table {table} is not loaded: removed since the agent applied it")
    return failed(f"Table {table} was changed since the agent applied it")


def daemon_config(ctx: Context) -> Outcome:
    """This router's own: each running supervised daemon loaded the files it
    has now (the digests the resident agent recorded when it last started or
    reloaded it, against the files)."""
    problems = []
    count = 0
    for daemon in supervised.registry(ctx.settings):
        if not ctx.running(daemon.name):
            continue
        count += 1
        loaded = daemon_state.read_loaded(ctx.settings.daemon_loaded(daemon.name))
        if not loaded:
            problems.append(f"{daemon.name}: no record of what it loaded")
            continue
        now = daemon_state.digests(daemon)
        changed = [n for n, d in now.items() if loaded.get(n) != d]
        if changed:
            problems.append(f"{daemon.name}: {', '.join(changed)} changed since it was loaded")
    if problems:
        return failed("Daemons not running their current configuration - \n"
                      + ", ".join(problems))
    return ok(f"All {count} running daemons loaded their current configuration")


CHECKS: tuple[Check, ...] = (
    Check("cpu_usage_check.py", "basic", cpu_usage),
    Check("memory_usage_check.py", "basic", memory_usage),
    Check("disk_space_check.py", "basic", disk_space),
    Check("gateways_check.py", "basic", gateways),
    Check("router_version_check.py", "basic", router_version),
    Check("dhcp_check.py", "advanced", dhcp),
    Check("dns_check.py", "advanced", dns),
    Check("iptables_check.py", "advanced", port_forwarding),
    Check("haproxy_check.py", "advanced", haproxy),
    Check("netfilter_check", "advanced", netfilter_applied),
    Check("daemon_config_check", "advanced", daemon_config),
)
