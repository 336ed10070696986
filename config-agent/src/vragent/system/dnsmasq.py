"""dnsmasq's lease database: releasing the leases of removed entries.

A removed entry must stop answering at once, and its address must be free
for the next VM: a running dnsmasq is told with ``dhcp_release`` (a
DHCPRELEASE on the client's behalf, as cs/CsDhcp.py does); a stopped one
(the backup of a pair) has its lease file edited, since nothing else writes it.
"""

from __future__ import annotations

import ipaddress
import os

from ..settings import Settings
from ..store.store import atomic_write
from .cmd import spawn


def leases(settings: Settings) -> list[tuple[str, str]]:
    """(mac, ip) of every lease dnsmasq recorded."""
    try:
        lines = settings.dnsmasq_leases.read_text().splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and ":" in parts[1]:
            found.append((parts[1].lower(), parts[2]))
    return found


def running(settings: Settings) -> bool:
    try:
        pid = int(settings.dnsmasq_pid.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def release_removed(settings: Settings, wanted: set[tuple[str, str]],
                    tiers: list[tuple[str, str]]) -> list[str]:
    """Release every lease whose (mac, ip) is not ``wanted``; returns "ip (mac)" of each.

    ``tiers`` are (ifname, network): where each address is served.
    """
    stale = [(mac, ip) for mac, ip in leases(settings) if (mac, ip) not in wanted]
    if not stale:
        return []
    nets = [(dev, ipaddress.IPv4Network(net)) for dev, net in tiers]
    if running(settings):
        done = []
        for mac, ip in stale:
            dev = next((n for n, net in nets if ipaddress.IPv4Address(ip) in net), None)
            if dev is not None and spawn(["dhcp_release", dev, ip, mac]).returncode == 0:
                done.append(f"{ip} ({mac})")
        return done
    drop = set(stale)
    kept = [ln for ln in settings.dnsmasq_leases.read_text().splitlines(keepends=True)
            if tuple(x.lower() if i == 0 else x for i, x in enumerate(ln.split()[1:3]))
            not in drop]
    atomic_write(settings.dnsmasq_leases, "".join(kept).encode(), 0o644)
    return [f"{ip} ({mac})" for mac, ip in stale]
