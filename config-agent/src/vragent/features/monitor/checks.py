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
from dataclasses import dataclass, field
from functools import partial

from ... import daemon_state, supervised
from ...errors import printable
from ...feature import Check, Outcome, failed, ok

__all__ = ["CHECKS", "Check", "Context", "Outcome", "failed", "ok", "service_checks"]
from ...settings import Settings
from ...system import ping, proc
from ...version import first_line
from .model import MonitorService

# /proc/stat is sampled twice this far apart (upstream: top's two iterations).
CPU_SAMPLE = 1.0
# Seconds a gateway has to answer one echo (upstream: ping -c 5 -w 10, 5 times).
GATEWAY_DEADLINE = 3


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
        # Here, not at the top: every command loads the features' checks, and
        # the XML-RPC client is only for a run of them.
        from ...system.supervisor import Supervisor

        if self.supervisor_states is None:
            try:
                infos = Supervisor(self.settings.supervisor_socket).processes().values()
                self.supervisor_states = {str(i["name"]): str(i["statename"]) for i in infos}
            except Exception:  # noqa: BLE001 - no socket, refused, an XML-RPC fault: no answer
                self.supervisor_states = {}
        return self.supervisor_states

    def running(self, name: str) -> bool:
        from ...system.supervisor import RUNNING_STATES

        return self.states().get(name) in RUNNING_STATES


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
    if ctx.redundant and ctx.ha_status in ("BACKUP", "FAULT"):
        # A backup keeps the shared links silent (CloudStack mode: its public
        # NIC), so a gateway there cannot answer it: the master is the one to
        # ask (upstream #4163; its server excludes this check for a backup,
        # and this router knows its state before the server does).
        return ok(f"Router is {ctx.ha_status}: gateways are checked on the master, skipping")
    addresses = [a for a in records[0].get("gatewaysIps", "").split(" ") if a]
    usable = [a for a in addresses if _valid_ip(a)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(usable)))) as pool:
        answers = dict(zip(usable, pool.map(
            lambda a: ping.reachable(a, GATEWAY_DEADLINE), usable), strict=True))
    unreachable = [a for a in addresses if not answers.get(a, False)]
    if unreachable:
        return failed(f"Unreachable gateways found-\n{unreachable!r}")
    return ok(f"All {len(addresses)} gateways are reachable via ping")


def router_version(ctx: Context) -> Outcome:
    """health_checks/router_version_check.py: templateVersion against the first
    line of the release file, scriptsVersion against the first line of the
    scripts' signature (version.py: what this router was built or last
    patched with), each stripped as upstream strips them. A file not there
    yet is upstream's "skipping" note, not a failure (upstream then crashes
    on the missing signature). Values are shown escaped."""
    data = ctx.single("routerVersion")
    if not data:
        return ok("Missing routerVersion in health_checks_data, skipping")
    lines: list[str] = []
    matches = True
    for key, path, missing, what in (
            ("templateVersion", ctx.settings.release_file,
             "Release version not yet setup at {path}, skipping.", "Template Version"),
            ("scriptsVersion", ctx.settings.scripts_signature,
             "Scripts signature is not yet setup at {path}, skipping", "Scripts Version")):
        if key not in data:
            continue
        expected = data[key].strip()
        found = first_line(path)
        if found is None:
            lines.append(missing.format(path=path))
        elif expected != found:
            lines.append(f"{what} mismatch. Expected: {printable(expected)}, "
                         f"found: {printable(found)}")
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
    Check("daemon_config_check", "advanced", daemon_config),
)
