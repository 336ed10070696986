"""Reachability by ICMP echo, with iputils' ping."""

from __future__ import annotations

import ipaddress

from .cmd import spawn


def reachable(address: str, deadline: int = 3) -> bool:
    """An echo reply came back from ``address`` within ``deadline`` seconds.

    ``address`` must be an IP address (it is never handed to ping otherwise:
    a name would mean a DNS lookup, and a leading "-" an option).
    """
    ip = ipaddress.ip_address(address)
    # With a deadline (-w, whole seconds), "-c 1" means: send every 0.2 s
    # until one reply comes back, then stop; none by the deadline is exit 1.
    # A lost first echo (while ARP resolves) is no failure that way.
    return spawn(["ping", "-n", "-q", "-c", "1", "-i", "0.2", "-w", str(deadline),
                  str(ip)]).returncode == 0
