"""What a router does when the elector moves it to a new state (pure).

Assembled from what the daemons declare (``Daemon.on_primary``,
``on_backup``, ``on_fault``: conntrackd's primary-backup sequence, for one),
plus the pair's own steps. On becoming master: each daemon's critical steps,
forget the neighbours left unresolved where the backup had no address, the
daemons' other steps, then start the services only a master runs and
announce the addresses. On backup or fault: stop the master-only services,
then each daemon's steps.

Only the ``critical`` steps run before the new state is saved and reported:
on becoming master, those the daemons mark so (conntrackd's commit, without
which the connections the peer carried find no entry here; the elector has
already set the addresses and sent gratuitous ARP by then); on leaving it,
stopping the services that answer on addresses this router no longer holds.
The rest follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..feature import Daemon

# The pair's own steps.
SERVICES = "primary-services"
GARP = "garp"
COMMAND = "command"
# A new master's neighbour entries still unresolved at the takeover are
# forgotten. A backup in CloudStack mode has no address at all on the public
# NIC (no IPv6 link-local address of the shared MAC, see features/sysctl):
# an entry it began resolving there was never solicited (the kernel sends no
# solicitation without a source address; the backup routes router_ip6,
# which it does not hold, back out there by the default route, so a packet
# the upstream router sends to router_ip6 begins one), and it stays INCOMPLETE after
# keepalived adds the addresses, until the kernel's next retransmission
# (retrans_time, 1 s). The public IPv6 pair test saw the tiers' IPv6 to
# router_ip6_gateway wait so, about 1 s longer than IPv4, the packets queued
# on the entry leaving at once when the retransmission was answered.
# Forgotten, the next packet to each solicits at once from the addresses now
# held. Entries resolved (or permanent) are kept. Only on the links the
# elector names (Election.unsourced), and after conntrackd's commit, never
# before it: a flush drops the packets queued on an entry, and on a sync-link
# pair under load it delayed the commit by up to 54 ms, so a planned
# switchover lost probe packets.
NEIGHBOURS = "unresolved-neighbours"


@dataclass(frozen=True)
class Step:
    action: str  # COMMAND (a daemon's), SERVICES, GARP or NEIGHBOURS
    args: tuple[str, ...] = ()
    critical: bool = False  # before the state is announced
    daemon: str = ""  # whose command; it runs only while the daemon is configured
    label: str = ""

    def describe(self) -> str:
        if self.action == COMMAND:
            return self.label or " ".join(self.args)
        return " ".join((self.action, *self.args))


def _commands(daemons: Iterable[Daemon], status: str) -> list[Step]:
    return [Step(COMMAND, s.argv, s.critical, d.name, s.label)
            for d in daemons for s in d.steps(status)]


def steps(status: str, daemons: Iterable[Daemon] = ()) -> list[Step]:
    daemons = list(daemons)
    if status == "PRIMARY":
        # The flush is not critical: it runs right after the critical steps
        # (the commit), first of the rest.
        return [Step(NEIGHBOURS, ("flush",)), *_commands(daemons, status),
                Step(SERVICES, ("start",)), Step(GARP)]
    return [Step(SERVICES, ("stop",), critical=True), *_commands(daemons, status)]
