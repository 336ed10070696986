"""The features, each a package that declares everything about itself
(``vragent.feature``), and the one list of them.

``FEATURES`` is the only place a feature is named outside its own package:
the order in which their subsystems apply. Filtering is in force before any
address comes up, routes follow the addresses they depend on, and daemons
come last, conntrackd's configuration before keepalived's (a takeover always
has a state cache to commit).

A package holds ``feature.py`` (``FEATURE``: bag types, subsystem, traffic)
and, when it has them, a light ``daemon.py`` (``daemons(settings)``) that
supervisord's watchdog and ``vragent-launch`` import without the rest, and a
``checks.py`` (``CHECKS``, its health checks) that only a run of the checks
imports. More packages can be named, comma-separated, in ``$VRAGENT_FEATURES``
(a test's toy feature): they are registered exactly as these are.

Kept free of imports: the command line reads the names from here.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..feature import Check, Daemon, Feature
    from ..settings import Settings

FEATURES = ("sysctl", "netfilter", "interfaces", "routes", "conntrack", "vrrp", "dhcp",
            "ra", "vmdata", "control", "monitor", "loadbalancer", "vpn", "bgp", "diagnostics",
            "usage")
EXTRA = "VRAGENT_FEATURES"


def packages() -> tuple[str, ...]:
    extra = tuple(p.strip() for p in os.environ.get(EXTRA, "").split(",") if p.strip())
    return tuple(f"{__name__}.{name}" for name in FEATURES) + extra


@functools.lru_cache(maxsize=4)
def _features(pkgs: tuple[str, ...]) -> tuple[Feature, ...]:
    return tuple(importlib.import_module(f"{p}.feature").FEATURE for p in pkgs)


def features() -> tuple[Feature, ...]:
    """Every feature, in order (imports them all)."""
    return _features(packages())


def by_name(name: str) -> Feature:
    for f in features():
        if f.name == name:
            return f
    known = ", ".join(f.name for f in features())
    raise KeyError(f"unknown feature {name!r} (known: {known})")


def daemons_of(package: str, settings: Settings) -> tuple[Daemon, ...]:
    """The daemons feature ``package`` declares (none without a daemon module)."""
    if importlib.util.find_spec(f"{package}.daemon") is None:
        return ()
    found: tuple[Daemon, ...] = importlib.import_module(f"{package}.daemon").daemons(settings)
    return found


def checks_of(package: str) -> tuple[Check, ...]:
    """The health checks feature ``package`` declares (none without a checks module)."""
    if importlib.util.find_spec(f"{package}.checks") is None:
        return ()
    found: tuple[Check, ...] = importlib.import_module(f"{package}.checks").CHECKS
    return found


def checks() -> tuple[Check, ...]:
    """Every feature's health checks."""
    return tuple(c for p in packages() for c in checks_of(p))


@functools.lru_cache(maxsize=16)
def _daemons(pkgs: tuple[str, ...], settings: Settings) -> tuple[Daemon, ...]:
    found = [d for p in pkgs for d in daemons_of(p, settings)]
    return tuple(sorted(found, key=lambda d: (d.start_order, d.name)))


def daemons(settings: Settings) -> tuple[Daemon, ...]:
    """Every feature's daemons for these settings, in start order (imports only
    the features' daemon modules)."""
    return _daemons(packages(), settings)
