"""One module per subsystem, each implementing ``base.Subsystem``.

``REGISTRY`` is the one list of them, in the order they are applied:
filtering is in force before any address comes up, routes follow the
addresses they depend on, and daemons come last, conntrackd's configuration
before keepalived's (a takeover always has a state cache to commit). The CLI's
``render`` choices and the golden tests are derived from it.
"""

from __future__ import annotations

from . import conntrack, dhcp, interfaces, netfilter, routes, sysctl, vmdata, vrrp
from .base import Subsystem

REGISTRY: tuple[Subsystem, ...] = (sysctl, netfilter, interfaces, routes, conntrack, vrrp,
                                   dhcp, vmdata)
NAMES: tuple[str, ...] = tuple(m.NAME for m in REGISTRY)


def by_name(name: str) -> Subsystem:
    for module in REGISTRY:
        if module.NAME == name:
            return module
    raise KeyError(f"unknown subsystem {name!r} (known: {', '.join(NAMES)})")


__all__ = ["NAMES", "REGISTRY", "Subsystem", "by_name"]
