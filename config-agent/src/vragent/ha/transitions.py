"""What a router does when keepalived moves it to a new state (pure).

The steps follow conntrack-tools' primary-backup sequence. On becoming
master: commit the peer's connections from the external cache into the
kernel, flush both caches, resync the internal cache from the kernel and
send it all to the peer; then start the services only a master runs and
announce the addresses. On backup or fault: shorten the timers of entries
this router may hold from its time as master, ask the peer for a full
resync, and stop the master-only services.

Only the ``critical`` steps run before the new state is saved and reported:
on becoming master, the commit, without which the connections the peer
carried find no entry here (keepalived has already set the addresses and
sent gratuitous ARP by then); on leaving it, stopping the services that
answer on addresses this router no longer holds. The rest follows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    action: str  # "conntrackd", "primary-services", "garp"
    args: tuple[str, ...] = ()
    critical: bool = False  # before the state is announced

    def describe(self) -> str:
        return " ".join((self.action, *self.args))


def steps(status: str) -> list[Step]:
    if status == "PRIMARY":
        return [
            Step("conntrackd", ("-c",), critical=True),  # commit the external cache
            Step("conntrackd", ("-f",)),  # flush internal and external caches
            Step("conntrackd", ("-R",)),  # resync the internal cache with the kernel
            Step("conntrackd", ("-B",)),  # bulk-send it to the peer
            Step("primary-services", ("start",)),
            Step("garp"),
        ]
    if status == "BACKUP":
        return [
            Step("primary-services", ("stop",), critical=True),
            Step("conntrackd", ("-t",)),  # shorten kernel timers: entries age out
            Step("conntrackd", ("-n",)),  # request a resync from the master
        ]
    if status == "FAULT":
        return [
            Step("primary-services", ("stop",), critical=True),
            Step("conntrackd", ("-t",)),
        ]
    return [Step("primary-services", ("stop",), critical=True)]
