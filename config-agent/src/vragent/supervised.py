"""Every daemon the router supervises, as the features declare them.

The config sync (``system.daemons``), the launcher (``vragent-launch``),
supervisord's program list (``programs``) and the resident agent (``ha``) all
work from these declarations (``feature.Daemon``); none of them branches on a
daemon's name. A daemon is added by the feature that runs it, in its
``daemon.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from .feature import REALTIME, ConfigFile, Daemon
from .features import daemons
from .settings import Settings

__all__ = ["REALTIME", "ConfigFile", "Daemon", "Registry", "registry"]


@dataclass(frozen=True)
class Registry:
    daemons: tuple[Daemon, ...] = field(default=())

    def __iter__(self) -> Iterator[Daemon]:
        return iter(self.daemons)

    def get(self, name: str) -> Daemon:
        for d in self.daemons:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.daemons)
        raise KeyError(f"unknown daemon {name!r} (known: {known})")

    @property
    def elector(self) -> Daemon | None:
        """The daemon that elects the pair's master (it owns the shared addresses)."""
        return next((d for d in self.daemons if d.owns_addresses), None)


@functools.lru_cache(maxsize=16)
def registry(s: Settings) -> Registry:
    """Every declared daemon, for these settings (immutable: built once per
    Settings, it is asked for several times by every command)."""
    found = daemons(s)
    # The daemon that elects starts after every daemon a takeover runs steps
    # of (conntrackd's commit): a takeover always has their state to act on.
    takeover = tuple(d.name for d in found if d.on_primary)
    return Registry(tuple(replace(d, needs=tuple(dict.fromkeys((*d.needs, *takeover))))
                          if d.owns_addresses else d for d in found))
