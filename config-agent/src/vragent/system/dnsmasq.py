"""dnsmasq's lease database: releasing the leases of removed entries.

A removed entry must stop answering at once, and its address must be free
for the next VM. A running dnsmasq is told with ``dhcp_release`` (a
DHCPRELEASE on the client's behalf, as cs/CsDhcp.py does), and only after it
re-read its hosts file: dnsmasq 2.90 crashes (SIGSEGV) on the next SIGHUP
when a lease whose ``dhcp-host`` line sets a tag was released while that line
was still loaded. A stopped dnsmasq (the backup of a pair, or before a
restart) has its lease file edited, since nothing else writes it.

Stateless: what is stale is read from the hosts file in force and the lease file.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from ..store.store import atomic_write
from .cmd import spawn


@dataclass(frozen=True)
class Paths:
    """dnsmasq's files, as its feature declares them."""

    conf: Path  # the main file: dhcp-range and the hosts with options of their own
    hosts: Path  # dhcp-hostsfile
    leases: Path


def leases(paths: Paths) -> list[tuple[str, str]]:
    """(mac, ip) of every lease dnsmasq recorded."""
    try:
        lines = paths.leases.read_text().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and ":" in parts[1]:
            found.append((parts[1].lower(), parts[2]))
    return found


def host_fields(value: str) -> tuple[str, str, str] | None:
    """(mac, ip, name) of a dhcp-host value, "mac,[set:tag,]…ip,name,lease"."""
    fields = value.split(",")
    for i, field in enumerate(fields[1:], 1):
        if field.count(".") == 3 and field[:1].isdigit():
            # The name follows the addresses (an IPv6 one is bracketed).
            rest = [f for f in fields[i + 1:] if not f.startswith("[")]
            return fields[0].lower(), field, rest[0] if rest else ""
    return None


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def configured(paths: Paths) -> set[tuple[str, str]]:
    """(mac, ip) of every dhcp-hosts line: "mac,[set:tag,]…ip,name,lease"."""
    found = set()
    for line in _lines(paths.hosts):
        if line.startswith("#") or not line.strip():
            continue
        host = host_fields(line)
        if host is not None:
            found.add(host[:2])
    return found


def static_hosts(paths: Paths) -> list[tuple[str, str, str]]:
    """(mac, ip, name) of every static host dnsmasq is given: the hosts file's
    lines and the main file's ``dhcp-host=`` lines (hosts with options of
    their own, see the dhcp feature)."""
    values = [ln for ln in _lines(paths.hosts)
              if ln.strip() and not ln.startswith("#")]
    values += [ln.removeprefix("dhcp-host=") for ln in _lines(paths.conf)
               if ln.startswith("dhcp-host=")]
    return [h for h in map(host_fields, values) if h is not None]


def _networks(paths: Paths) -> list[tuple[str, ipaddress.IPv4Network]]:
    """(interface, network) of every dhcp-range, from the main file."""
    try:
        text = paths.conf.read_text()
    except FileNotFoundError:
        return []
    nets = []
    dev = ""
    for line in text.splitlines():
        if line.startswith("# tier ") or line.startswith("# alias "):
            _, _, dev, net = line.split()[:4]
            nets.append((dev, ipaddress.IPv4Network(net)))
    return nets


def prune(paths: Paths, running: bool) -> list[str]:
    """Release every lease no static host in force holds any more; "ip (mac)" of each.

    Hosts with options of their own are in the main file, not the hosts file:
    their leases are not stale."""
    wanted = {(mac, ip) for mac, ip, _ in static_hosts(paths)}
    stale = [(mac, ip) for mac, ip in leases(paths) if (mac, ip) not in wanted]
    if not stale:
        return []
    if running:
        nets = _networks(paths)
        done = []
        for mac, ip in stale:
            dev = next((n for n, net in nets if ipaddress.IPv4Address(ip) in net), None)
            if dev is not None and spawn(["dhcp_release", dev, ip, mac]).returncode == 0:
                done.append(f"{ip} ({mac})")
        return done
    drop = set(stale)
    kept = []
    for line in paths.leases.read_text().splitlines(keepends=True):
        parts = line.split()
        if len(parts) >= 3 and (parts[1].lower(), parts[2]) in drop:
            continue
        kept.append(line)
    atomic_write(paths.leases, "".join(kept).encode(), 0o644)
    return [f"{ip} ({mac})" for mac, ip in stale]
