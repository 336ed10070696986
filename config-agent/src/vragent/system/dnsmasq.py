"""dnsmasq's lease database: releasing the leases of removed entries.

A removed entry must stop answering at once, and its address must be free
for the next VM. A running dnsmasq is told with ``dhcp_release`` (a
DHCPRELEASE on the client's behalf, as cs/CsDhcp.py does), and only after it
re-read its hosts file: dnsmasq 2.90 crashes (SIGSEGV) on the next SIGHUP
when a lease whose ``dhcp-host`` line sets a tag was released while that line
was still loaded. A stopped dnsmasq (the backup of a pair, or before a
restart) has its lease file edited, since nothing else writes it.

DHCPv6 leases (by the client's DUID, served from ``id:<duid>,…[<ipv6>]``
lines, upstream's edithosts.sh) go the same way: a running dnsmasq gets a
RELEASE on the client's behalf from ``dhcp_release6`` (dnsmasq-utils); a
stopped one has its lease file edited, as edithosts.sh did without
dnsmasq-managed leases (``sed -i /$duid/d``, ``/"$ipv6 "/d``). Upstream's
cs/CsDhcp.py delete_leases releases IPv4 leases only (by MAC), so an IPv6
address there stays leased to its old DUID until dnsmasq restarts.

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
    return [h for h in map(host_fields, _host_values(paths)) if h is not None]


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


@dataclass(frozen=True)
class Lease6:
    """A DHCPv6 lease line: "<expiry> [T]<iaid> <ipv6> <name> <client duid>"."""

    iaid: str  # decimal; "T" first for a temporary address (IA_TA)
    ip: str
    duid: str  # the client's, lower case, colon-separated hex

    @property
    def key(self) -> tuple[str, str]:
        return self.duid, str(ipaddress.IPv6Address(self.ip))


def server_duid(paths: Paths) -> str | None:
    """dnsmasq's own DUID: the lease file's "duid" line, written once it serves DHCPv6."""
    for line in _lines(paths.leases):
        parts = line.split()
        if len(parts) == 2 and parts[0] == "duid":
            return parts[1]
    return None


def leases6(paths: Paths) -> list[Lease6]:
    """Every DHCPv6 lease dnsmasq recorded (IPv4 lines have a MAC where these have the IAID)."""
    found = []
    for line in _lines(paths.leases):
        parts = line.split()
        if len(parts) >= 5 and parts[1].removeprefix("T").isdigit() and ":" in parts[2]:
            try:
                ipaddress.IPv6Address(parts[2])
            except ValueError:
                continue
            found.append(Lease6(parts[1], parts[2], parts[4].lower()))
    return found


def host6_fields(value: str) -> tuple[str, str] | None:
    """(duid, ipv6) of a dhcp-host value that serves a DUID an IPv6 address:
    "id:<duid>,[<ipv6>],name,lease" or "mac,id:<duid>,ipv4,[<ipv6>],name,lease"."""
    fields = value.split(",")
    duid = next((f[3:].lower() for f in fields if f.startswith("id:")), None)
    ip6 = next((f[1:-1] for f in fields if f.startswith("[") and f.endswith("]")), None)
    if not duid or not ip6:
        return None
    try:
        return duid, str(ipaddress.IPv6Address(ip6))
    except ValueError:
        return None


def _host_values(paths: Paths) -> list[str]:
    values = [ln for ln in _lines(paths.hosts) if ln.strip() and not ln.startswith("#")]
    return values + [ln.removeprefix("dhcp-host=") for ln in _lines(paths.conf)
                     if ln.startswith("dhcp-host=")]


def _networks6(paths: Paths) -> list[tuple[str, ipaddress.IPv6Network]]:
    """(interface, prefix) of every DHCPv6 range, from the main file's
    "# DHCPv6 on <dev> <prefix>: …" comments (the dhcp feature's template)."""
    nets = []
    for line in _lines(paths.conf):
        if line.startswith("# DHCPv6 on "):
            parts = line.split()
            if len(parts) >= 5:
                try:
                    nets.append((parts[3], ipaddress.IPv6Network(parts[4].rstrip(":"))))
                except ValueError:
                    continue
    return nets


def release6_argv(dev: str, lease: Lease6, server: str) -> list[str]:
    """dhcp_release6's arguments: a RELEASE for the lease's IA_NA, sent from
    ``dev`` to the dnsmasq there as if the client had sent it."""
    return ["dhcp_release6", "--iface", dev, "--ip", lease.ip, "--server-id", server,
            "--client-id", lease.duid, "--iaid", lease.iaid]


def prune(paths: Paths, running: bool) -> list[str]:
    """Release every lease no static host in force holds any more; "ip (mac)"
    or "ip (duid)" of each.

    Hosts with options of their own are in the main file, not the hosts file:
    their leases are not stale."""
    values = _host_values(paths)
    wanted = {(mac, ip) for mac, ip, _ in (h for h in map(host_fields, values) if h)}
    wanted6 = {h for h in map(host6_fields, values) if h is not None}
    stale = [(mac, ip) for mac, ip in leases(paths) if (mac, ip) not in wanted]
    # A temporary address (IA_TA) is never given from a static range; and
    # dhcp_release6 releases an IA_NA only.
    stale6 = [lease for lease in leases6(paths)
              if lease.key not in wanted6 and not lease.iaid.startswith("T")]
    if not stale and not stale6:
        return []
    if running:
        nets = _networks(paths)
        done = []
        for mac, ip in stale:
            dev = next((n for n, net in nets if ipaddress.IPv4Address(ip) in net), None)
            if dev is not None and spawn(["dhcp_release", dev, ip, mac]).returncode == 0:
                done.append(f"{ip} ({mac})")
        nets6 = _networks6(paths)
        server = server_duid(paths)
        for lease in stale6:
            addr = ipaddress.IPv6Address(lease.ip)
            dev = next((n for n, net in nets6 if addr in net), None)
            if dev is None or server is None:
                continue  # its tier lost IPv6: dnsmasq forgets it at its next restart
            if spawn(release6_argv(dev, lease, server)).returncode == 0:
                done.append(f"{lease.ip} ({lease.duid})")
        return done
    drop = set(stale)
    drop6 = {(lease.iaid, lease.ip) for lease in stale6}
    kept = []
    for line in paths.leases.read_text().splitlines(keepends=True):
        parts = line.split()
        if len(parts) >= 3 and ((parts[1].lower(), parts[2]) in drop
                                or (parts[1], parts[2]) in drop6):
            continue
        kept.append(line)
    atomic_write(paths.leases, "".join(kept).encode(), 0o644)
    return ([f"{ip} ({mac})" for mac, ip in stale]
            + [f"{lease.ip} ({lease.duid})" for lease in stale6])
